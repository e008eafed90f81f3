"""The gateway console (/console/) over real HTTP with the form-submitting client (every page parsed strictly,
no inline code): sign-in with the operator API's credentials and lockout, roles, the journal's filters, one
real exchange as its timeline with the checks' verdicts and timings, the signature's coverage marked, the
stored bytes downloaded, a resend, the queue's stop and retry, a revocation in the CRL, the metrics."""
from __future__ import annotations

import base64
import json
import re
from urllib.parse import unquote

import pytest_twisted
import treq
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from prometheus_client import Counter

from gateway import client
from gateway.asyncchannel import wire
from gateway.operators import Operator
from gateway.passwords import hash_password
from tests.conftest import CONSUMER_BIN, PASSWORD, echo_request, send_message, start_harness, stop_harness
from tests.web_client import WebClient

AUDITOR_PASSWORD = "auditor-secret"
OPERATOR_PASSWORD = "operator-secret"
OPERATOR_TOKEN = "operator-token-5f2c"
OPERATORS = (Operator("audit", "auditor", password_hash=hash_password(AUDITOR_PASSWORD, iterations=1000)),
             Operator("ops", "operator", password_hash=hash_password(OPERATOR_PASSWORD, iterations=1000),
                      token_hash=hash_password(OPERATOR_TOKEN, iterations=1000)))


async def console_stand(tmp_path, pki, **overrides):
    harness = await start_harness(tmp_path, pki, operators=OPERATORS, **overrides)
    return harness, WebClient(harness.app.base_url + "/console")


@pytest_twisted.async_yield_fixture
async def stand(tmp_path, pki):
    harness, web = await console_stand(tmp_path, pki)
    yield harness, web
    await stop_harness(harness)


async def sign_in(web: WebClient, name: str, password: str):
    form = await web.get("/login")
    return await web.submit(form, "login", name=name, password=password)


def ids(page, cls: str) -> list[str]:
    return [el.get("id") for el in page.html.iter() if cls in (el.get("class") or "").split()]


def texts(page, cls: str) -> list[str]:
    return ["".join(el.itertext()).strip() for el in page.html.iter() if cls in (el.get("class") or "").split()]


@pytest_twisted.ensureDeferred
async def test_sign_in_is_the_operator_apis_with_a_strict_cookie(stand):
    _, web = stand
    page = await web.get("/?lang=kk")  # the console is English only: the switch changes nothing
    assert page.url.endswith("/console/login") and page.find("login") is not None
    assert page.html.get("lang") == "en" and "lang" not in web.cookies
    refused = await sign_in(web, "audit", "wrong")
    assert refused.status == 401 and "wrong name or password" in "".join(refused.find("refusal").itertext())
    assert "shep_console" not in web.cookies
    page = await sign_in(web, "audit", AUDITOR_PASSWORD)
    assert page.status == 200 and "audit (auditor)" in "".join(page.find("who").itertext())
    line = next(line for line in web.set_cookie_lines if line.startswith("shep_console="))
    assert "HttpOnly" in line and "SameSite=Strict" in line and "Path=/console/" in line
    # Tied to the browser session: with another shep_web cookie the console cookie is worthless.
    stolen = WebClient(web.base)
    stolen.cookies = {"shep_console": web.cookies["shep_console"], "shep_web": "another"}
    assert (await stolen.get("/journal")).url.endswith("/console/login?next=journal")
    signed_out = await web.submit(page, action="logout")
    assert signed_out.url.endswith("/console/login") and "shep_console" not in web.cookies
    token = await sign_in(web, "", OPERATOR_TOKEN)  # no name: a bearer token
    assert "ops (operator)" in "".join(token.find("who").itertext())


@pytest_twisted.ensureDeferred
async def test_wrong_passwords_lock_the_address_out_as_the_api_does(tmp_path, pki):
    harness, web = await console_stand(tmp_path, pki, address_lockout_attempts=2, lockout_delay_seconds=0.01)
    try:
        assert (await sign_in(web, "ops", "guess-1")).status == 401
        assert (await sign_in(web, "ops", "guess-2")).status == 401
        locked = await sign_in(web, "ops", OPERATOR_PASSWORD)
        assert locked.status == 429 and "too many wrong credentials" in locked.text
        # One lockout: the operator API refuses the same address now, as the console did.
        api = await treq.get(f"{harness.app.base_url}/api/journal", persistent=False,
                             headers={"Authorization": "Bearer " + OPERATOR_TOKEN + "-new"})
        assert api.code == 429
    finally:
        await stop_harness(harness)


@pytest_twisted.ensureDeferred
async def test_an_exchange_is_a_timeline_of_its_hops_with_checks_and_timings(stand):
    harness, web = stand
    reply = await harness.send(send_message(message_id="console-1"))
    assert reply.ok
    await sign_in(web, "audit", AUDITOR_PASSWORD)
    journal = await web.get("/journal?messageId=console-1")
    assert journal.status == 200
    links = [el.get("href") for el in journal.html.iter() if el.get("class") == "exchange"]
    assert links and all(reply.session_id in unquote(link) for link in links)
    page = await web.get(links[0])
    hops = [el.get("data-hop") for el in page.find("timeline")]
    assert hops == ["request-in", "request-out", "response-in", "response-out"]
    request_in = page.find(f"hop-{_seq(harness, reply.session_id, 'request-in')}")
    checks = "".join(request_in.itertext())
    assert "authenticate" in checks and "pass" in checks and " ms)" in checks
    assert re.search(r"\d+\.\d ms", checks)
    # The stored bytes, downloaded, are the journal's own.
    stored = _stored(harness, reply.session_id)
    for seq, body in stored.items():
        download = await web.get(f"/exchanges/{reply.session_id}/{seq}.xml")
        assert download.status == 200 and download.body == body
        assert download.header("content-type") == "application/xml"
    assert b"[redacted]" in stored[min(stored)]  # the sender's password never shows
    # What is not there is a 404 page.
    for path in ("/exchanges/no-such-session", f"/exchanges/{reply.session_id}/999999.xml",
                 f"/exchanges/{reply.session_id}/notes.txt", "/pki/crl/no-such-ca.crl", "/no-such-page"):
        assert (await web.get(path)).status == 404, path
    # An auditor sees no resend, and is refused one.
    assert page.find("resend") is None
    forged = await web.request("POST", f"/exchanges/{reply.session_id}/resend",
                               data={"csrf_token": _csrf(page)})
    assert forged.status == 403 and "audit is auditor: this needs operator" in forged.text


@pytest_twisted.ensureDeferred
async def test_the_journal_filters_by_service_sender_message_time_and_verdict(stand):
    harness, web = stand
    await harness.send(send_message(message_id="filter-ok"))
    refused = await harness.send(send_message(message_id="filter-bad", password="wrong"))
    assert not refused.ok
    await sign_in(web, "audit", AUDITOR_PASSWORD)

    async def message_ids(query: str) -> set[str]:
        page = await web.get("/journal?" + query)
        assert page.status == 200, page.text
        return {text for text in texts(page, "code") if text.startswith("filter-")}

    assert await message_ids("service=ECHO") == {"filter-ok", "filter-bad"}
    assert await message_ids("verdict=fail") == {"filter-bad"}
    assert await message_ids("sender=nobody") == set()
    assert await message_ids("messageId=filter-ok&verdict=pass") == {"filter-ok"}
    assert await message_ids("since=2000-01-01T00:00&until=2000-01-02T00:00") == set()
    assert await message_ids("since=2000-01-01T00:00") == {"filter-ok", "filter-bad"}
    bad = await web.get("/journal?since=yesterday&verdict=maybe")
    assert bad.status == 400 and bad.find("e-since") is not None and bad.find("e-verdict") is not None
    # The operator API's journal filters by verdict the same way.
    api = await treq.get(f"{harness.app.base_url}/api/journal?verdict=fail", persistent=False,
                         headers={"Authorization": "Bearer " + OPERATOR_TOKEN})
    assert {r["message_id"] for r in json.loads(await api.content())["records"]} == {"filter-bad"}


@pytest_twisted.ensureDeferred
async def test_after_sign_in_only_a_console_page_is_the_next_one(stand):
    _, web = stand
    form = await web.get("/login?next=//evil.example/x")
    page = await web.submit(form, "login", name="audit", password=AUDITOR_PASSWORD)
    assert page.status == 200 and page.url.endswith("/console/") and page.find("figures") is not None
    web.cookies.clear()
    form = await web.get("/login?next=queue%3Fstate%3DDELIVERED")
    page = await web.submit(form, "login", name="audit", password=AUDITOR_PASSWORD)
    assert page.url.endswith("/console/queue?state=DELIVERED") and page.find("state-filter") is not None
    signed_out = WebClient(web.base)
    form = await signed_out.get("/login")
    refused = await signed_out.request("POST", "/queue/x/stop", data={"csrf_token": _csrf(form)})
    assert refused.status == 401


@pytest_twisted.ensureDeferred
async def test_what_a_signature_covers_is_marked(stand, pki):
    harness, web = stand
    issued = pki.cert("consumer-rsa", bin=CONSUMER_BIN, alg="rsa")
    signed = client.sign_request(send_message(message_id="console-signed"), issued.key, issued.cert)
    status, raw = await harness.post(signed, url=harness.app.base_url + "/bip-sync-wss-gost/")
    session = client.read_reply(status, raw).session_id
    await sign_in(web, "audit", AUDITOR_PASSWORD)
    page = await web.get(f"/exchanges/{session}")
    request_in = page.find(f"hop-{_seq(harness, session, 'request-in')}")
    marks = [el for el in request_in.iter("{http://www.w3.org/1999/xhtml}mark")]
    assert marks, "the signed parts are marked"
    assert any("".join(mark.itertext()).lstrip().startswith("<soap:Body") for mark in marks)
    assert "covered by the signature reference #" in marks[0].get("title")
    listed = "".join(request_in.find(".//*[@class='covered-list']").itertext())
    assert "soap:Body" in listed
    # An EDS over the payload (enveloped, URI=""): the signed business document is marked.
    eds = client.sign_payload(echo_request("signed text"), issued.key, issued.cert)
    reply = await harness.send(send_message(service_id="ECHO_EDS", payload=eds, message_id="console-eds"))
    page = await web.get(f"/exchanges/{reply.session_id}")
    request_in = page.find(f"hop-{_seq(harness, reply.session_id, 'request-in')}")
    marks = [el for el in request_in.iter("{http://www.w3.org/1999/xhtml}mark")]
    assert [mark.get("title") for mark in marks] == ["covered by the signature reference (enveloped)"]
    assert "signed text" in "".join(marks[0].itertext())


@pytest_twisted.ensureDeferred
async def test_a_resend_shows_the_gateways_answer_as_it_was(stand):
    harness, web = stand
    reply = await harness.send(send_message(message_id="console-resend"))
    await sign_in(web, "ops", OPERATOR_PASSWORD)
    page = await web.get(f"/exchanges/{reply.session_id}")
    outcome_page = await web.submit(page, "resend")
    outcome = outcome_page.find("outcome")
    assert outcome_page.status == 200 and outcome is not None
    resent = unquote(outcome_page.find("resent").get("href").rsplit("/", 1)[1])
    assert resent != reply.session_id
    answered = [r for r in harness.app.journal.query(session_id=resent) if r["hop"] == "response-out"]
    # The stored password is "[redacted]", and the message was accepted before: the gateway refuses it.
    assert answered and answered[0]["fault_code"] in "".join(outcome.itertext())
    assert answered[0]["fault_code"] == "SHEP-141"  # the stored password is "[redacted]"


@pytest_twisted.ensureDeferred
async def test_the_queue_stops_and_retries_for_operators_only(stand):
    harness, web = stand
    _, answer = await harness.call_async(wire.send_message(service_id="ASYNC_PULL", sender_id="consumer",
                                                           password=PASSWORD, payload=echo_request()))
    message_id = answer.findtext("response/messageId")
    await sign_in(web, "audit", AUDITOR_PASSWORD)
    page = await web.get("/queue")
    assert page.find(f"q-{message_id}") is not None and not ids(page, "stop")
    web.cookies.clear()
    await sign_in(web, "ops", OPERATOR_PASSWORD)
    page = await web.get("/queue?state=ON_DELIVERY")
    stopped = await web.submit(page, action=f"queue/{message_id}/stop")
    assert "DELIVERY_STOPPED" in "".join(stopped.find("notice").itertext())
    assert harness.app.queue.list(state="DELIVERY_STOPPED")[0].message_id == message_id
    again = await web.request("POST", f"/queue/{message_id}/stop", data={"csrf_token": _csrf(stopped)})
    assert again.status == 409
    retried = await web.submit(stopped, action=f"queue/{message_id}/retry")
    assert "ON_DELIVERY" in "".join(retried.find("notice").itertext())
    assert (await web.get("/queue?state=bogus")).status == 400


@pytest_twisted.ensureDeferred
async def test_a_revoked_certificate_is_in_the_crl_and_posts_need_the_csrf_token(stand, pki):
    harness, web = stand
    serial = str(pki.cert("console-revoked").cert.serial_number)
    await sign_in(web, "ops", OPERATOR_PASSWORD)
    page = await web.get("/pki")
    assert page.find(f"cert-{serial}") is not None
    forged = await web.request("POST", f"/pki/{serial}/revoke", data={"csrf_token": "forged", "reason": "superseded"})
    assert forged.status == 403
    assert next(c for c in pki.pki.certificates() if c["serial"] == serial)["status"] == "good"
    revoked = await web.submit(page, action=f"pki/{serial}/revoke", reason="key_compromise")
    assert f"revoked {serial}" in "".join(revoked.find("notice").itertext())
    record = next(c for c in pki.pki.certificates() if c["serial"] == serial)
    crl_page = await web.get(f"/pki/crl/{record['issuer_slug']}.crl")
    crl = x509.load_der_x509_crl(crl_page.body)
    assert crl.get_revoked_certificate_by_serial_number(int(serial)) is not None
    again = await web.request("POST", f"/pki/{serial}/revoke", data={"csrf_token": _csrf(revoked)})
    assert again.status == 409 and "already revoked" in "".join(again.find("notice").itertext())


@pytest_twisted.ensureDeferred
async def test_the_figures_show_every_shep_family_and_the_catalogue(stand):
    harness, web = stand
    await harness.send(send_message(password="wrong"))
    # A family added later (another part of the gateway registers it) shows with no change to the console.
    later = Counter("shep_service_deadlines", "§14 quality indicators", ["clinic", "outcome"],
                    registry=harness.app.metrics.registry)
    later.labels("050640382083", "met").inc(3)
    await sign_in(web, "audit", AUDITOR_PASSWORD)
    overview = await web.get("/")
    assert "1 received in the last minute" in "".join(overview.find("rate").itertext())
    assert "SHEP-" in "".join(overview.find("faults").itertext())
    metrics = await web.get("/metrics")
    family = metrics.find("family-shep_service_deadlines")
    assert family is not None and "shep_service_deadlines" in "".join(family.find(".//*[@class='code']/..").itertext())
    cells = [("".join(el.itertext())) for el in family.iter("{http://www.w3.org/1999/xhtml}th")]
    assert cells[:2] == ["clinic", "outcome"]
    assert "050640382083" in "".join(family.itertext()) and "3" in "".join(family.itertext())
    assert metrics.find("family-shep_faults") is not None
    faults = await web.get("/faults")
    assert "MESSAGE_REPLAYED" in "".join(faults.find("fault-SHEP-160").itertext())


@pytest_twisted.ensureDeferred
async def test_without_operators_loopback_is_served_and_without_the_test_pki_the_page_says_so(tmp_path, pki):
    anchor = tmp_path / "anchor.pem"
    anchor.write_bytes(b"".join(cert.public_bytes(Encoding.PEM) for cert in pki.pki.trust_anchors()))
    harness = await start_harness(tmp_path, pki, trust_anchors=(anchor,))
    web = WebClient(harness.app.base_url + "/console")
    try:
        page = await web.get("/pki")
        assert page.status == 200 and "No test PKI is configured" in "".join(page.find("no-pki").itertext())
        assert "loopback client (operator)" in "".join(page.find("who").itertext())
        proxied = await web.get("/journal", headers={"X-Forwarded-For": "203.0.113.7"})
        assert proxied.status == 403
    finally:
        await stop_harness(harness)


def _seq(harness, session: str, hop: str) -> int:
    return next(r["seq"] for r in harness.app.journal.query(session_id=session) if r["hop"] == hop)


def _stored(harness, session: str) -> dict[int, bytes]:
    return {r["seq"]: base64.b64decode(r["body_base64"])
            for r in harness.app.journal.query(session_id=session, include_body=True) if r["body_base64"]}


def _csrf(page) -> str:
    return next(el.get("value") for el in page.html.iter() if el.get("name") == "csrf_token")

