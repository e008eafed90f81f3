"""The operator API over real HTTP: /api/journal, /api/queue and (optionally) /metrics need an operator's
credentials once [operators.*] are configured, and answer only loopback clients while none is."""
from __future__ import annotations

import base64
import json
import logging
import socket

import pytest
import pytest_twisted
import treq

from gateway.asyncchannel import wire
from gateway.operators import Operator
from gateway.passwords import hash_password
from tests.conftest import PASSWORD, echo_request, send_message, start_harness, stop_harness

AUDITOR_PASSWORD = "auditor-secret"
OPERATOR_TOKEN = "operator-token-5f2c"
# Few iterations: the stored form is the production one.
OPERATORS = (Operator("audit", "auditor", password_hash=hash_password(AUDITOR_PASSWORD, iterations=1000)),
             Operator("ops", "operator", token_hash=hash_password(OPERATOR_TOKEN, iterations=1000)))


def basic(name: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


BEARER = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


async def request(harness, method: str, path: str, headers: dict | None = None, base: str | None = None):
    response = await treq.request(method, f"{base or harness.app.base_url}{path}", headers=headers,
                                  persistent=False)
    return response.code, response.headers, await response.content()


@pytest_twisted.async_yield_fixture
async def guarded(tmp_path, pki):
    h = await start_harness(tmp_path, pki, operators=OPERATORS)
    yield h
    await stop_harness(h)


@pytest_twisted.ensureDeferred
async def test_journal_needs_credentials_even_on_loopback_once_operators_are_configured(guarded, caplog):
    caplog.set_level(logging.WARNING, logger="shep.operators")
    for headers in (None, basic("audit", "wrong"), basic("nobody", AUDITOR_PASSWORD), {"Authorization": "Bearer nope"},
                    {"Authorization": "Basic !!!"}, {"Authorization": "Digest x"}):
        status, response_headers, raw = await request(guarded, "GET", "/api/journal?body=1", headers)
        assert status == 401, headers
        assert response_headers.getRawHeaders("www-authenticate")[0].startswith("Basic realm="), headers
        assert "error" in json.loads(raw) and "records" not in json.loads(raw), headers
    refusals = [r.getMessage() for r in caplog.records if r.name == "shep.operators"]
    assert len(refusals) == 6 and all("/api/journal" in line for line in refusals)
    assert not any(AUDITOR_PASSWORD in line or "nope" in line for line in refusals)


@pytest_twisted.ensureDeferred
async def test_an_auditor_reads_the_journal_with_bodies_by_password_or_token(guarded):
    reply = await guarded.send(send_message(message_id="op-1"))
    for headers in (basic("audit", AUDITOR_PASSWORD), basic("audit", AUDITOR_PASSWORD), BEARER):
        status, _, raw = await request(guarded, "GET", "/api/journal?messageId=op-1&body=1", headers)
        records = json.loads(raw)["records"]
        assert status == 200 and {r["session_id"] for r in records} == {reply.session_id}
        bodies = [base64.b64decode(r["body_base64"]) for r in records if r["body_base64"]]
        assert any(b"op-1" in body for body in bodies)


@pytest_twisted.ensureDeferred
async def test_queue_actions_need_the_operator_role(guarded):
    sent = await guarded.call_async(wire.send_message(service_id="ASYNC_PULL", sender_id="consumer",
                                                      password=PASSWORD, payload=echo_request()))
    message_id = sent[1].findtext("response/messageId")
    status, _, raw = await request(guarded, "POST", f"/api/queue/{message_id}/stop",
                                   basic("audit", AUDITOR_PASSWORD))
    assert status == 403 and "auditor" in json.loads(raw)["error"]
    status, _, raw = await request(guarded, "POST", f"/api/queue/{message_id}/stop?reason=held", BEARER)
    assert status == 200 and json.loads(raw)["state"] == "DELIVERY_STOPPED"
    status, _, raw = await request(guarded, "POST", f"/api/queue/{message_id}/stop", BEARER)
    assert status == 409 and "DELIVERY_STOPPED" in json.loads(raw)["error"]
    status, _, raw = await request(guarded, "POST", f"/api/queue/{message_id}/retry", BEARER)
    assert status == 200 and json.loads(raw)["state"] == "ON_DELIVERY"
    for path, expected in (("/api/queue/no-such-id/retry", 404), (f"/api/queue/{message_id}/bogus", 404)):
        status, _, raw = await request(guarded, "POST", path, BEARER)
        assert status == expected and json.loads(raw)["error"], path
    status, headers, raw = await request(guarded, "GET", f"/api/queue/{message_id}/stop", BEARER)
    assert status == 405 and "POST" in headers.getRawHeaders("allow")[0] and json.loads(raw)["error"]


@pytest_twisted.ensureDeferred
async def test_public_resources_stay_public_with_operators(guarded):
    for path in ("/api/faults", "/api/certificate", "/health", "/metrics", "/pki/crl/nca_rsa_test.crl",
                 "/pki/ca/nca_rsa_test.cer"):
        status, _, _ = await request(guarded, "GET", path)
        assert status == 200, path


@pytest_twisted.ensureDeferred
async def test_metrics_can_require_an_operator(tmp_path, pki):
    harness = await start_harness(tmp_path, pki, operators=OPERATORS, metrics_require_auth=True)
    try:
        status, _, _ = await request(harness, "GET", "/metrics")
        assert status == 401
        status, _, raw = await request(harness, "GET", "/metrics", basic("audit", AUDITOR_PASSWORD))
        assert status == 200 and b"shep_request_duration_seconds" in raw
    finally:
        await stop_harness(harness)


@pytest_twisted.ensureDeferred
async def test_without_operators_loopback_is_served_and_a_proxied_request_is_not(harness):
    status, _, raw = await request(harness, "GET", "/api/journal?body=1")
    assert status == 200 and "records" in json.loads(raw)
    for header in ({"X-Forwarded-For": "203.0.113.7"}, {"Forwarded": "for=203.0.113.7"}):
        status, _, raw = await request(harness, "GET", "/api/journal", header)
        assert status == 403 and "loopback" in json.loads(raw)["error"], header


def _own_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest_twisted.ensureDeferred
async def test_without_operators_a_non_loopback_client_is_refused(tmp_path, pki, caplog):
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    caplog.set_level(logging.WARNING, logger="shep")
    harness = await start_harness(tmp_path, pki, host="0.0.0.0")
    try:
        assert any("no [operators.*] configured" in r.getMessage() for r in caplog.records if r.name == "shep.app")
        remote = f"http://{address}:{harness.app.port.getHost().port}"
        status, _, raw = await request(harness, "GET", "/api/journal?body=1", base=remote)
        assert status == 403 and "loopback" in json.loads(raw)["error"]
        status, _, _ = await request(harness, "POST", "/api/queue/x/stop", base=remote)
        assert status == 403
        status, _, _ = await request(harness, "GET", "/api/faults", base=remote)
        assert status == 200
        status, _, _ = await request(harness, "GET", "/api/journal")
        assert status == 200
    finally:
        await stop_harness(harness)


@pytest_twisted.ensureDeferred
async def test_a_successful_password_check_is_cached(guarded, monkeypatch):
    from gateway import passwords

    calls = []
    real = passwords.verify_password
    monkeypatch.setattr(passwords, "verify_password", lambda *args: calls.append(1) or real(*args))
    for _ in range(3):
        status, _, _ = await request(guarded, "GET", "/api/journal?limit=1", basic("audit", AUDITOR_PASSWORD))
        assert status == 200
    assert len(calls) == 1


@pytest_twisted.ensureDeferred
async def test_shep_demo_reads_the_journal_with_an_operator_token(guarded):
    from twisted.internet import threads

    from gateway.demo import Http

    await guarded.send(send_message(message_id="demo-1"))
    records = await threads.deferToThread(Http(guarded.app.base_url, OPERATOR_TOKEN).journal, messageId="demo-1")
    assert records and {r["message_id"] for r in records} == {"demo-1"}
    with pytest.raises(RuntimeError, match="--operator-token or SHEP_OPERATOR_TOKEN"):
        await threads.deferToThread(Http(guarded.app.base_url).journal, messageId="demo-1")


@pytest_twisted.ensureDeferred
async def test_wrong_operator_credentials_lock_out_the_address_but_not_credentials_verified_before(tmp_path, pki):
    """Operator guesses count against the client's address, with the participants' wrong passwords: at the
    limit, new credentials get 429 untried; credentials verified before still pass."""
    harness = await start_harness(tmp_path, pki, operators=OPERATORS, address_lockout_attempts=3,
                                  lockout_delay_seconds=0.01)
    try:
        status, _, _ = await request(harness, "GET", "/api/journal", BEARER)
        assert status == 200  # the operator's token: verified before from now on
        reply = await harness.send(send_message(password="wrong"))  # a participant's guess counts too
        assert reply.fault["errorCode"] == "SHEP-141"
        for attempt in range(2):
            status, _, _ = await request(harness, "GET", "/api/journal", basic("audit", f"guess-{attempt}"))
            assert status == 401, attempt
        status, _, raw = await request(harness, "GET", "/api/journal", basic("audit", AUDITOR_PASSWORD))
        assert status == 429 and "127.0.0.1" in json.loads(raw)["error"]
        status, _, _ = await request(harness, "GET", "/api/journal", BEARER)
        assert status == 200
    finally:
        await stop_harness(harness)
