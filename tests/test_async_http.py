"""AsyncChannel over real HTTP: pull and push round trips, correlation, retries, redelivery, isolation."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import pytest_twisted
from lxml import etree
from twisted.internet import reactor, task

from gateway import client
from gateway import contract as c
from gateway.asyncchannel import wire
from gateway.asyncchannel.queue import RetryPolicy
from gateway.asyncclient import PushReceiver
from gateway.registry import Participant, Service
from tests.conftest import (BULK_NS, ECHO_NS, KAZAKHSTAN, PASSWORD, bulk_document, echo_request, java_date,
                            start_harness, stop_harness, utc_now)


def _send(service="ASYNC_PULL", sender="consumer", **fields) -> bytes:
    return wire.send_message(service_id=service, sender_id=sender, password=PASSWORD,
                             payload=fields.pop("payload", echo_request()), **fields)


async def _call(harness, body: bytes) -> etree._Element:
    status, answer = await harness.call_async(body)
    assert status == 200, etree.tostring(answer)
    return answer


async def _pull(harness, participant: str, service="ASYNC_PULL", **options) -> list[etree._Element]:
    answer = await _call(harness, wire.get_messages(service_id=service, sender_id=participant, password=PASSWORD,
                                                    **options))
    return answer.findall("response/messages")


async def _status(harness, participant: str, message_id: str) -> str:
    answer = await _call(harness, wire.get_message_status(message_id=message_id, sender_id=participant,
                                                          password=PASSWORD))
    return answer.findtext("response/messageState")


async def _ack(harness, participant: str, message_id: str, service="ASYNC_PULL", **options) -> None:
    await _call(harness, wire.delivery_notification(message_id=message_id, service_id=service,
                                                    sender_id=participant, password=PASSWORD, **options))


async def _eventually(check, seconds: float = 5.0):
    """Poll `check` (a coroutine function returning a truthy value when done), bounded in time."""
    for _ in range(int(seconds / 0.05)):
        result = await check()
        if result:
            return result
        await task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"not done within {seconds} s")


@pytest_twisted.ensureDeferred
async def test_pull_round_trip_request_update_response(harness):
    sent = await _call(harness, _send(payload=echo_request("запрос")))
    message_id = sent.findtext("response/messageId")
    correlation = sent.findtext("response/correlationId")
    assert message_id and correlation and sent.findtext("response/sessionId").startswith("{")
    assert await _status(harness, "consumer", message_id) == "ON_DELIVERY"

    pulled = await _pull(harness, "clinic")
    assert [m.findtext("messageInfo/messageId") for m in pulled] == [message_id]
    assert pulled[0].findtext("messageInfo/correlationId") == correlation
    assert pulled[0].find("messageInfo/sender/password") is None
    assert pulled[0].findtext(f"messageData/data/{{{ECHO_NS}}}EchoRequest/text") == "запрос"
    await _ack(harness, "clinic", message_id)
    assert await _status(harness, "consumer", message_id) == "DELIVERED"
    assert await _status(harness, "clinic", message_id) == "DELIVERED"

    # The provider answers in the same exchange; both go back to the originator.
    for kind in ("UPDATE", "RESPONSE"):
        answer = await _call(harness, _send(sender="clinic", message_type=kind, correlation_id=correlation,
                                            payload=echo_request(kind)))
        assert answer.findtext("response/correlationId") == correlation
    back = await _pull(harness, "consumer", correlation_id=correlation)
    assert [m.findtext("messageInfo/messageType") for m in back] == ["UPDATE", "RESPONSE"]
    for message in back:
        await _ack(harness, "consumer", message.findtext("messageInfo/messageId"))
    assert await _pull(harness, "consumer") == []

    records = await harness.app.run_in_pool(lambda: harness.app.journal.query(message_id=message_id, limit=50))
    transitions = [v["detail"] for r in records if r["hop"] == "state" for v in r["verdicts"]]
    assert transitions[0].startswith("- → ON_DELIVERY") and transitions[-1].startswith("ON_DELIVERY → DELIVERED")


@pytest_twisted.ensureDeferred
async def test_unacknowledged_pull_comes_back_after_the_visibility_timeout(harness):
    sent = await _call(harness, _send())
    message_id = sent.findtext("response/messageId")
    assert len(await _pull(harness, "clinic")) == 1
    assert await _pull(harness, "clinic") == []  # handed out, hidden while unacknowledged
    later = harness.app.env.settings.async_visibility_seconds + 1
    harness.app.env.clock = lambda: utc_now() + timedelta(seconds=later)
    again = await _pull(harness, "clinic")
    assert [m.findtext("messageInfo/messageId") for m in again] == [message_id]


@pytest_twisted.ensureDeferred
async def test_refusal_with_resend_makes_the_message_visible_again(harness):
    message_id = (await _call(harness, _send())).findtext("response/messageId")
    await _pull(harness, "clinic")
    await _ack(harness, "clinic", message_id, accepted=False, resend=True, error=("E-1", "busy"))
    assert [m.findtext("messageInfo/messageId") for m in await _pull(harness, "clinic")] == [message_id]
    await _ack(harness, "clinic", message_id, accepted=False, resend=False)
    assert await _status(harness, "consumer", message_id) == "NOT_DELIVERED"


@pytest_twisted.ensureDeferred
async def test_other_participants_messages_stay_invisible(harness):
    message_id = (await _call(harness, _send())).findtext("response/messageId")
    assert await _pull(harness, "outsider") == []
    status, answer = await harness.call_async(wire.get_message_status(message_id=message_id, sender_id="outsider",
                                                                      password=PASSWORD))
    assert client.read_reply(status, etree.tostring(answer.getparent().getparent())).fault["errorCode"] == "SHEP-213"
    status, answer = await harness.call_async(_send(service="NO_SUCH_SERVICE"))
    assert answer.findtext(".//errorCode") == "SHEP-150"


@pytest_twisted.ensureDeferred
async def test_expired_message_is_not_delivered(harness):
    expires = (utc_now() + timedelta(seconds=30)).isoformat()
    message_id = (await _call(harness, _send(properties={"expiresAt": expires}))).findtext("response/messageId")
    harness.app.env.clock = lambda: utc_now() + timedelta(minutes=1)
    assert await _pull(harness, "clinic") == []
    assert await _status(harness, "consumer", message_id) == "DELIVERY_STOPPED"


def _push_answer(raw: bytes) -> tuple[int, bytes]:
    info = wire.operation_of(raw).find("request/messageInfo")
    return 200, wire.send_message_response(message_id=info.findtext("messageId"),
                                           correlation_id=info.findtext("correlationId"),
                                           session_id=info.findtext("sessionId"), wrapper="sendMessageResponse",
                                           ns=c.ASYNC_CLIENT_NS)


async def _push_harness(tmp_path, pki, attempts: int):
    harness = await start_harness(tmp_path, pki, async_push_interval_seconds=0.05)
    harness.app.push.policy = RetryPolicy(max_attempts=attempts, base=0.05, cap=0.1)
    return harness


@pytest_twisted.ensureDeferred
async def test_push_receiver_failing_twice_then_accepting(tmp_path, pki):
    harness = await _push_harness(tmp_path, pki, attempts=5)
    calls = []

    def flaky(raw):
        calls.append(raw)
        return (503, b"try later") if len(calls) <= 2 else _push_answer(raw)

    harness.stub.answer = flaky
    try:
        message_id = (await _call(harness, _send(service="ASYNC_PUSH"))).findtext("response/messageId")

        async def delivered():
            return await _status(harness, "consumer", message_id) == "DELIVERED"
        await _eventually(delivered)
        assert len(calls) == 3
        pushed = wire.operation_of(calls[-1])
        assert pushed.tag == c.q(c.ASYNC_CLIENT_NS, "sendMessage")
        assert pushed.findtext("request/messageInfo/messageId") == message_id
        c.async_schema().assertValid(etree.ElementTree(etree.fromstring(calls[-1])))
        message = (await harness.app.run_in_pool(lambda: harness.app.queue.list(service_id="ASYNC_PUSH")))[0]
        assert message.attempts == 3 and message.last_error is None
    finally:
        await stop_harness(harness)


@pytest_twisted.ensureDeferred
async def test_push_receiver_that_never_accepts_ends_in_delivery_stopped(tmp_path, pki):
    harness = await _push_harness(tmp_path, pki, attempts=3)
    harness.stub.answer = lambda raw: (500, b"<html>down</html>")
    try:
        message_id = (await _call(harness, _send(service="ASYNC_PUSH"))).findtext("response/messageId")

        async def stopped():
            return await _status(harness, "consumer", message_id) == "DELIVERY_STOPPED"
        await _eventually(stopped)
        assert len(harness.stub.received) == 3
        message = (await harness.app.run_in_pool(lambda: harness.app.queue.list(service_id="ASYNC_PUSH")))[0]
        assert "SHEP-203" in message.last_error
    finally:
        await stop_harness(harness)


@pytest_twisted.ensureDeferred
async def test_async_wsdl_is_served_with_the_callers_address(harness):
    status, raw = await harness.get("/bip-async/?wsdl")
    assert status == 200
    doc = etree.fromstring(raw)
    assert doc.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location") == harness.async_url


@pytest_twisted.ensureDeferred
async def test_a_provider_cannot_open_an_exchange_with_itself(harness):
    status, answer = await harness.call_async(_send(sender="clinic"))
    assert answer.findtext(".//errorCode") == "SHEP-153"


# -- real clients' shapes (docs/architecture.md, "Tolerated client shapes") --------------------------------

SOAP12_MEDIA = "application/soap+xml; charset=utf-8"
CLIENT_SESSION = "{0b5c5a34-2f6e-4c1d-9a51-7f3e2d1c0b9a}"


def _with_client_session(raw: bytes) -> bytes:
    return raw.replace(b"</messageInfo>", f"<sessionId>{CLIENT_SESSION}</sessionId></messageInfo>".encode())


def _dated(raw: bytes, tag: str, value: str) -> bytes:
    return re.sub(f"<{tag}>[^<]*</{tag}>".encode(), f"<{tag}>{value}</{tag}>".encode(), raw)


def _today() -> str:
    return utc_now().astimezone(KAZAKHSTAN).date().isoformat()


async def _post(harness, body: bytes, content_type: str = "text/xml; charset=utf-8") -> tuple[int, etree._Element]:
    status, raw = await harness.post(body, content_type=content_type, url=harness.async_url)
    return status, wire.operation_of(raw)


async def _deviations(harness, session_id: str) -> list[str]:
    records = await harness.app.run_in_pool(lambda: harness.app.journal.query(session_id=session_id))
    return next(r for r in records if r["hop"] == "request-in")["deviations"]


@pytest_twisted.ensureDeferred
async def test_real_clients_shapes_are_noted_and_the_recipient_gets_the_contracts(harness):
    # A Java client: SOAP 1.2's media type, SimpleDateFormat's offset, a sessionId of its own.
    status, sent = await _post(harness, _with_client_session(_send(message_date=java_date())), SOAP12_MEDIA)
    assert status == 200, etree.tostring(sent)
    session = sent.findtext("response/sessionId")
    assert session != CLIENT_SESSION
    noted = await _deviations(harness, session)
    assert len(noted) == 3 and any(CLIENT_SESSION in d for d in noted) and any("+0500" in d for d in noted)

    # It polls with a bare requestDate, and acknowledges with its kind of dates.
    poll = _dated(wire.get_messages(service_id="ASYNC_PULL", sender_id="clinic", password=PASSWORD), "requestDate",
                  _today())
    pulled = (await _call(harness, poll)).find("response/messages/messageInfo")
    assert pulled.findtext("sessionId") == session and pulled.findtext("messageDate")[-3] == ":"
    ack = wire.delivery_notification(message_id=pulled.findtext("messageId"), service_id="ASYNC_PULL",
                                     sender_id="clinic", password=PASSWORD)
    for tag in ("notificationDate", "statusDate"):
        ack = _dated(ack, tag, java_date())
    answer = await _call(harness, _dated(ack, "requestDate", _today()))
    assert len(await _deviations(harness, answer.findtext("response/sessionId"))) == 3
    assert await _status(harness, "consumer", pulled.findtext("messageId")) == "DELIVERED"


@pytest_twisted.ensureDeferred
async def test_a_bare_request_date_must_be_today(harness):
    week_ago = (utc_now() - timedelta(days=7)).date().isoformat()
    poll = wire.get_messages(service_id="ASYNC_PULL", sender_id="clinic", password=PASSWORD)
    status, answer = await _post(harness, _dated(poll, "requestDate", week_ago))
    assert answer.findtext(".//errorCode") == "SHEP-161" and week_ago in answer.findtext(".//errorData")


ASYNC_STRICT_CASES = {
    "SOAP 1.2 media type": (lambda: _send(service="ASYNC_STRICT"), SOAP12_MEDIA, "SHEP-102"),
    "offset without a colon": (lambda: _send(service="ASYNC_STRICT", message_date=java_date()), None, "SHEP-132"),
    "client sessionId": (lambda: _with_client_session(_send(service="ASYNC_STRICT")), None, "SHEP-133"),
    "bare requestDate": (lambda: _dated(wire.get_messages(service_id="ASYNC_STRICT", sender_id="clinic",
                                                          password=PASSWORD), "requestDate", _today()),
                         None, "SHEP-132"),
}


@pytest.mark.parametrize("shape", ASYNC_STRICT_CASES)
@pytest_twisted.ensureDeferred
async def test_strict_async_service_refuses_each_shape_with_its_own_code(harness, shape):
    build, content_type, code = ASYNC_STRICT_CASES[shape]
    status, answer = await _post(harness, build(), content_type or "text/xml; charset=utf-8")
    assert answer.findtext(".//errorCode") == code
    assert await harness.app.run_in_pool(lambda: harness.app.queue.list(service_id="ASYNC_STRICT")) == []


def _opaque(service_id: str, provider: str) -> Service:
    return Service(service_id, provider=provider, channel="async", payload_schema=None, timeout_seconds=5.0,
                   allowed_senders=frozenset({"consumer"}), routes=frozenset(), strict=False)


@pytest_twisted.ensureDeferred
async def test_a_large_chunked_message_is_pulled_and_pushed_whole(tmp_path, pki):
    # /bip-async/ reads bodies as /bip-sync/ does: a spooled (chunked, 1 MB) one is queued whole and leaves whole.
    harness = await start_harness(tmp_path, pki,
                                  participants=[Participant("receiver", None, None, async_endpoint="/receiver")],
                                  services=[_opaque("BULK_PULL", "clinic"), _opaque("BULK_PUSH", "receiver")],
                                  async_push_interval_seconds=0.05)
    received = []
    harness.app.site.resource.putChild(b"receiver", PushReceiver(received.append, verify=False))
    padding = 1_000_000
    try:
        for service in ("BULK_PULL", "BULK_PUSH"):
            status, raw = await harness.post_chunked(_send(service=service, payload=bulk_document(padding)),
                                                     url=harness.async_url)
            assert status == 200, raw
        [pulled] = await _pull(harness, "clinic", service="BULK_PULL")
        assert len(pulled.findtext(f"messageData/data/{{{BULK_NS}}}Document/content")) == padding

        async def pushed():
            return received
        await _eventually(pushed)
        assert len(received[0].payload.findtext("content")) == padding
    finally:
        await stop_harness(harness)
