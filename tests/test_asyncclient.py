"""`gateway.asyncclient` against a running gateway on loopback: the blocking client (run in a thread so
the reactor keeps serving) over pull delivery, and PushReceiver on its own port for push delivery."""
from __future__ import annotations

import uuid

import pytest
import pytest_twisted
import treq
from lxml import etree
from twisted.internet import reactor, task, threads
from twisted.web import resource, server

from gateway import contract as c
from gateway.asyncchannel import wire
from gateway.asyncchannel.queue import DELIVERED, DELIVERY_STOPPED, ON_DELIVERY, RetryPolicy
from gateway.asyncclient import AsyncFault, AsyncGatewayClient, PushReceiver, ReceivedMessage, StatusNotification
from gateway.security import wss
from gateway.security.algorithms import AlgorithmPolicy
from tests.conftest import CONSUMER_BIN, ECHO_NS, PASSWORD, echo_request, echo_response, utc_now

FAST = RetryPolicy(max_attempts=5, base=0.05, cap=0.2)
SESSION = "{6f0b0d49-7a1c-4c5e-9a31-0f2b8d7e5a10}"


def call(func, *args, **kwargs):
    """The blocking client in a thread: the gateway shares this reactor."""
    return threads.deferToThread(func, *args, **kwargs)


async def eventually(condition, timeout: float = 10.0) -> None:
    waited = 0.0
    while not condition():
        if waited >= timeout:
            pytest.fail(f"not within {timeout} s: {condition.__doc__ or condition}")
        await task.deferLater(reactor, 0.05, lambda: None)
        waited += 0.05


def text(message: ReceivedMessage) -> str:
    return message.payload.findtext("text")


class Inbox:
    """What a participant's PushReceiver was given; `failure`, when set, is raised by on_message."""

    def __init__(self):
        self.messages: list[ReceivedMessage] = []
        self.statuses: list[StatusNotification] = []
        self.calls = 0
        self.failure: Exception | None = None

    def on_message(self, message: ReceivedMessage) -> None:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        self.messages.append(message)

    def on_status(self, notification: StatusNotification) -> None:
        self.statuses.append(notification)


class Receivers:
    """PushReceivers on one loopback port of their own, each set as a participant's async_endpoint."""

    def __init__(self, harness):
        self.harness = harness
        self.root = resource.Resource()
        self.port = reactor.listenTCP(0, server.Site(self.root), interface="127.0.0.1")

    def mount(self, participant_id: str, receiver: PushReceiver) -> str:
        self.root.putChild(participant_id.encode(), receiver)
        url = f"http://127.0.0.1:{self.port.getHost().port}/{participant_id}/"
        participant = self.harness.app.env.registry.participant(participant_id)
        object.__setattr__(participant, "async_endpoint", url)
        return url


@pytest_twisted.async_yield_fixture
async def receivers(harness):
    mounted = Receivers(harness)
    yield mounted
    await mounted.port.stopListening()


def trusting(*callbacks) -> PushReceiver:
    """A receiver that takes unsigned pushes: ASYNC_PUSH is not a signed service, and these tests are about
    delivery; the origin checks have tests of their own below."""
    return PushReceiver(*callbacks, verify=False)


def clients(harness):
    return (AsyncGatewayClient(harness.app.base_url, "consumer", PASSWORD),
            AsyncGatewayClient(harness.async_url, "clinic", PASSWORD))


# -- pull ---------------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_pull_exchange_request_update_response(harness):
    consumer, clinic = clients(harness)
    sent = await call(consumer.send, "ASYNC_PULL", echo_request("запрос"))
    assert sent.session_id.startswith("{") and sent.message_id != sent.correlation_id
    assert (await call(consumer.status, sent.message_id)).state == ON_DELIVERY

    [request] = await call(clinic.pull, "ASYNC_PULL")
    assert (request.message_id, request.correlation_id) == (sent.message_id, sent.correlation_id)
    assert (request.service_id, request.message_type, request.sender_id) == ("ASYNC_PULL", "REQUEST", "consumer")
    assert text(request) == "запрос" and request.session_id == sent.session_id
    assert request.info.find("sender/password") is None
    # Handed out is not delivered: only the acknowledgement delivers.
    assert (await call(consumer.status, sent.message_id)).state == ON_DELIVERY
    await call(clinic.acknowledge, request)
    for party in (consumer, clinic):
        status = await call(party.status, sent.message_id)
        assert (status.state, status.code) == (DELIVERED, "ASYNC-200")
        assert status.date.tzinfo is not None

    update = await call(clinic.send, "ASYNC_PULL", echo_response("в работе"), message_type="UPDATE",
                        correlation_id=sent.correlation_id)
    response = await call(clinic.send, "ASYNC_PULL", echo_response("готово"), message_type="RESPONSE",
                          correlation_id=sent.correlation_id)
    assert update.correlation_id == response.correlation_id == sent.correlation_id
    assert (await call(clinic.status, update.message_id)).state == ON_DELIVERY

    answers = await call(consumer.pull, "ASYNC_PULL", correlation_id=sent.correlation_id)
    assert [(m.message_type, text(m), m.sender_id) for m in answers] == [
        ("UPDATE", "в работе", "clinic"), ("RESPONSE", "готово", "clinic")]
    assert {m.correlation_id for m in answers} == {sent.correlation_id}
    for message in answers:
        await call(consumer.acknowledge, message)
        assert (await call(clinic.status, message.message_id)).state == DELIVERED
    assert await call(consumer.pull, "ASYNC_PULL") == []
    assert await call(clinic.pull, "ASYNC_PULL") == []


@pytest_twisted.ensureDeferred
async def test_refused_and_resend_acknowledgements(harness):
    consumer, clinic = clients(harness)
    sent = await call(consumer.send, "ASYNC_PULL", echo_request("1"))
    [first] = await call(clinic.pull, "ASYNC_PULL")
    await call(clinic.acknowledge, first, accepted=False, resend=True, error=("BUSY", "try later"))
    [again] = await call(clinic.pull, "ASYNC_PULL")  # visible again at once
    assert again.message_id == sent.message_id
    await call(clinic.acknowledge, again, accepted=False, error=("BAD", "unreadable"))
    status = await call(consumer.status, sent.message_id)
    assert (status.state, status.code) == ("NOT_DELIVERED", "ASYNC-400")


@pytest_twisted.ensureDeferred
async def test_faults_raise_async_fault(harness):
    consumer, clinic = clients(harness)
    with pytest.raises(AsyncFault) as unknown:
        await call(consumer.status, str(uuid.uuid4()))
    assert (unknown.value.code, unknown.value.http_status) == ("SHEP-213", 500)
    assert unknown.value.error_info["sessionId"].startswith("{")

    with pytest.raises(AsyncFault) as uncorrelated:
        await call(consumer.send, "ASYNC_PULL", echo_request(), message_type="UPDATE")
    assert uncorrelated.value.code == "SHEP-210"

    with pytest.raises(AsyncFault) as wrong_password:
        await call(AsyncGatewayClient(harness.app.base_url, "consumer", "wrong").pull, "ASYNC_PULL")
    assert wrong_password.value.code == "SHEP-141"

    await call(consumer.send, "ASYNC_PULL", echo_request())
    [message] = await call(clinic.pull, "ASYNC_PULL")
    await call(clinic.acknowledge, message)
    with pytest.raises(AsyncFault) as twice:
        await call(clinic.acknowledge, message)
    assert twice.value.code == "SHEP-214"


@pytest_twisted.ensureDeferred
async def test_signed_requests(harness, pki):
    issued = pki.cert("consumer-rsa", bin=CONSUMER_BIN)
    consumer = AsyncGatewayClient(harness.app.base_url, "consumer", PASSWORD, sign=(issued.key, issued.cert))
    sent = await call(consumer.send, "ASYNC_PULL", echo_request("signed"))
    assert (await call(consumer.status, sent.message_id)).state == ON_DELIVERY
    # The first request-in of the message is its sendMessage (getMessageStatus is journalled under it too).
    request_in = next(r for r in harness.app.journal.query(message_id=sent.message_id) if r["hop"] == "request-in")
    assert ("verify_transport_signature", "pass") in {(v["check"], v["verdict"]) for v in request_in["verdicts"]}


# -- push ---------------------------------------------------------------------------------------

def _row(harness, message_id: str):
    return harness.app.queue.status(message_id, "consumer")


@pytest_twisted.ensureDeferred
async def test_push_delivery_and_sender_notification(harness, receivers):
    pusher, sender = Inbox(), Inbox()
    receivers.mount("pusher", trusting(pusher.on_message))
    receivers.mount("consumer", trusting(sender.on_message, sender.on_status))
    consumer, _ = clients(harness)
    sent = await call(consumer.send, "ASYNC_PUSH", echo_request("push"), properties={"priority": "high"})

    await eventually(lambda: sender.statuses)
    [message] = pusher.messages
    assert (message.message_id, message.correlation_id, message.sender_id) == (
        sent.message_id, sent.correlation_id, "consumer")
    assert text(message) == "push"
    assert message.info.findtext("properties/value") == "high"
    [note] = sender.statuses
    assert (note.message_id, note.state, note.code, note.error) == (sent.message_id, DELIVERED, "ASYNC-200", None)
    assert (await call(consumer.status, sent.message_id)).state == DELIVERED


@pytest_twisted.ensureDeferred
async def test_a_duplicate_push_is_acknowledged_without_handling_it_again(harness, receivers):
    pusher = Inbox()
    receivers.mount("pusher", trusting(pusher.on_message))
    queue = harness.app.queue
    record_outcome = queue.push_outcomes

    def crash(*args, **kwargs):
        """The gateway dies after the push, before recording it: the message stays leased, ON_DELIVERY."""
        queue.push_outcomes = record_outcome
        raise RuntimeError("crash (test)")

    queue.push_outcomes = crash
    consumer, _ = clients(harness)
    sent = await call(consumer.send, "ASYNC_PUSH", echo_request("once"))
    await eventually(lambda: queue.push_outcomes is record_outcome)
    assert pusher.calls == 1 and _row(harness, sent.message_id).state == ON_DELIVERY

    # The lease lapsing would push it again; an operator's retry does it at once.
    await call(queue.retry, sent.message_id, utc_now())
    harness.app.push.wake()
    await eventually(lambda: _row(harness, sent.message_id).state == DELIVERED)
    assert pusher.calls == 1 and [text(m) for m in pusher.messages] == ["once"]
    # The crashed attempt left no record (its hops are journalled with its outcome); the second is acknowledged.
    [answer] = [r for r in harness.app.journal.query(message_id=sent.message_id)
                if r["hop"] == "response-in" and r["from_party"] == "pusher"]
    assert answer["fault_code"] is None and answer["http_status"] == 200


@pytest_twisted.ensureDeferred
async def test_failing_receiver_is_retried_until_it_accepts(harness, receivers):
    harness.app.push.policy = FAST
    pusher, sender = Inbox(), Inbox()
    pusher.failure = RuntimeError("disk full")
    receivers.mount("pusher", trusting(pusher.on_message))
    receivers.mount("consumer", trusting(sender.on_message, sender.on_status))
    consumer, _ = clients(harness)
    sent = await call(consumer.send, "ASYNC_PUSH", echo_request("retry me"))

    # Two refused pushes seen by the receiver itself (the row's attempts count a push when it is claimed).
    await eventually(lambda: pusher.calls >= 2 and _row(harness, sent.message_id).last_error)
    row = _row(harness, sent.message_id)
    assert row.state == ON_DELIVERY and "fault" in row.last_error
    assert pusher.messages == [] and sender.statuses == []

    pusher.failure = None
    await eventually(lambda: _row(harness, sent.message_id).state == DELIVERED)
    assert [text(m) for m in pusher.messages] == ["retry me"] and pusher.calls >= 3
    await eventually(lambda: sender.statuses)
    assert [n.state for n in sender.statuses] == [DELIVERED]


@pytest_twisted.ensureDeferred
async def test_exhausted_attempts_stop_delivery_and_tell_the_sender(harness, receivers):
    harness.app.push.policy = RetryPolicy(max_attempts=2, base=0.05, cap=0.2)
    pusher, sender = Inbox(), Inbox()
    pusher.failure = RuntimeError("disk full")
    receivers.mount("pusher", trusting(pusher.on_message))
    receivers.mount("consumer", trusting(sender.on_message, sender.on_status))
    consumer, _ = clients(harness)
    sent = await call(consumer.send, "ASYNC_PUSH", echo_request())

    await eventually(lambda: sender.statuses)
    [note] = sender.statuses
    assert (note.state, note.code) == (DELIVERY_STOPPED, "ASYNC-500")
    assert note.error["errorCode"] == "ASYNC-500" and "fault" in note.error["errorMessage"]
    assert pusher.calls == 2 and _row(harness, sent.message_id).attempts == 2


# -- PushReceiver on its own ------------------------------------------------------------------------

def _pushed(message_id: str = "m-1") -> bytes:
    """What the gateway POSTs to a push client: a stored AsyncMessage in asyncC:sendMessage."""
    operation = wire.operation_of(wire.send_message(service_id="ASYNC_PUSH", sender_id="consumer",
                                                    password="secret", payload=echo_request("direct")))
    return wire.push_send_message(wire.stored_message(operation, message_id=message_id, correlation_id="c-1",
                                                      session_id=SESSION))


async def _post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, etree._Element]:
    response = await treq.post(url, data=body, headers={"Content-Type": "text/xml; charset=utf-8", **(headers or {})},
                               persistent=False)
    raw = await response.content()
    document = etree.fromstring(raw)
    c.async_schema().assertValid(document)  # every answer is a contract message
    return response.code, document.find(f"{c.BODY}/*")


@pytest_twisted.ensureDeferred
async def test_receiver_answers_by_the_contract(harness, receivers):
    inbox = Inbox()
    url = receivers.mount("pusher", trusting(inbox.on_message, inbox.on_status))

    status, answer = await _post(url, _pushed())
    assert status == 200 and answer.tag == c.q(c.ASYNC_CLIENT_NS, "sendMessageResponse")
    assert (answer.findtext("response/messageId"), answer.findtext("response/correlationId")) == ("m-1", "c-1")
    assert (await _post(url, _pushed()))[0] == 200 and inbox.calls == 1  # the duplicate

    inbox.failure = ValueError("no room")
    status, fault = await _post(url, _pushed("m-2"))
    assert status == 500 and fault.tag == c.FAULT
    info = fault.find(f"detail/{c.q(c.ASYNC_CLIENT_NS, 'sendMessageFault1_sendMessageFault')}")
    assert "no room" in info.findtext("errorData")
    inbox.failure = None
    assert (await _post(url, _pushed("m-2")))[0] == 200 and [m.message_id for m in inbox.messages] == ["m-1", "m-2"]

    notification = wire.push_status_notification(message_id="m-1", state=DELIVERED, code="ASYNC-200",
                                                 message="delivered", session_id=SESSION)
    status, answer = await _post(url, notification)
    assert status == 200 and answer.findtext("response/sessionId") == SESSION
    assert [(n.message_id, n.state) for n in inbox.statuses] == [("m-1", DELIVERED)]

    for garbage, code in ((b"<not xml", "SHEP-110"), (wire.get_messages(service_id="X", sender_id="a", password=None),
                                                      "SHEP-123")):
        status, fault = await _post(url, garbage)
        assert status == 500 and fault.findtext(".//errorCode") == code


def _refused(status: int, fault: etree._Element, code: str, element: str = "sendMessageFault1_sendMessageFault"):
    assert status == 500 and fault.tag == c.FAULT
    assert fault.find(f"detail/{c.q(c.ASYNC_CLIENT_NS, element)}/errorCode").text == code, etree.tostring(fault)


def _status_notification() -> bytes:
    return wire.push_status_notification(message_id="m-1", state=DELIVERED, code="ASYNC-200", message="delivered",
                                         session_id=SESSION)


@pytest_twisted.ensureDeferred
async def test_receiver_takes_only_what_the_gateway_signed(harness, receivers, pki):
    signing = harness.app.env.security.signing
    inbox = Inbox()
    url = receivers.mount("pusher", PushReceiver(inbox.on_message, inbox.on_status,
                                                 gateway_certificate=signing.certificate))
    intruder = pki.cert("push-intruder")
    by_gateway = wss.sign_envelope(_pushed("genuine"), signing.key, signing.certificate, key_info=signing.key_info)

    _refused(*await _post(url, _pushed("forged")), "SHEP-180")  # unsigned
    _refused(*await _post(url, wss.sign_envelope(_pushed("forged"), intruder.key, intruder.cert)), "SHEP-199")
    # A genuine push whose messageId was changed: the gateway's signature no longer verifies.
    _refused(*await _post(url, by_gateway.replace(b">genuine<", b">forged<")), "SHEP-185")
    for forged, code in ((_status_notification(), "SHEP-180"),
                         (wss.sign_envelope(_status_notification(), intruder.key, intruder.cert), "SHEP-199")):
        _refused(*await _post(url, forged), code,
                 "changeMassageStatusNotificationFault1_changeMassageStatusNotificationFault")
    assert inbox.calls == 0 and inbox.statuses == []

    status, answer = await _post(url, by_gateway)
    assert status == 200 and answer.findtext("response/messageId") == "genuine"
    assert (await _post(url, by_gateway))[0] == 200  # replayed: acknowledged, not handled again
    signed_note = wss.sign_envelope(_status_notification(), signing.key, signing.certificate)
    assert (await _post(url, signed_note))[0] == 200
    assert [m.message_id for m in inbox.messages] == ["genuine"] and len(inbox.statuses) == 1


@pytest_twisted.ensureDeferred
async def test_receiver_without_a_certificate_or_secret_refuses_every_push(harness, receivers):
    inbox = Inbox()
    url = receivers.mount("pusher", PushReceiver(inbox.on_message))
    signing = harness.app.env.security.signing
    status, fault = await _post(url, wss.sign_envelope(_pushed(), signing.key, signing.certificate))
    _refused(status, fault, "SHEP-199")
    assert "neither" in fault.findtext(".//errorData") and inbox.calls == 0


@pytest_twisted.ensureDeferred
async def test_shared_secret_proves_unsigned_pushes(harness, receivers):
    pusher, sender = Inbox(), Inbox()
    for participant_id, inbox in (("pusher", pusher), ("consumer", sender)):
        secret = "s3cret-" + participant_id
        object.__setattr__(harness.app.env.registry.participant(participant_id), "push_secret", secret)
        url = receivers.mount(participant_id, PushReceiver(inbox.on_message, inbox.on_status, shared_secret=secret))
    consumer, _ = clients(harness)
    sent = await call(consumer.send, "ASYNC_PUSH", echo_request("with secret"))
    await eventually(lambda: sender.statuses)
    assert [m.message_id for m in pusher.messages] == [sent.message_id]
    assert [n.state for n in sender.statuses] == [DELIVERED]

    for headers in ({}, {"X-Shep-Push-Secret": "guess"}, {"X-Shep-Push-Secret": "s3cret-pusher"}):
        _refused(*await _post(url, _pushed("forged"), headers), "SHEP-199")  # `url` is the consumer's
    assert [m.message_id for m in sender.messages] == []


@pytest_twisted.ensureDeferred
async def test_receiver_serves_its_wsdl_at_the_url_used(harness, receivers):
    url = receivers.mount("pusher", trusting(Inbox().on_message))
    response = await treq.get(url + "?wsdl", persistent=False)
    assert response.code == 200
    wsdl = etree.fromstring(await response.content())
    assert wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location") == url
    imported = wsdl.find("{http://schemas.xmlsoap.org/wsdl/}import").get("location")
    assert imported.startswith(url + "?wsdl=")
    interfaces = await treq.get(imported, persistent=False)
    assert interfaces.code == 200
    schema_url = etree.fromstring(await interfaces.content()).find(f".//{{{c.XS_NS}}}import").get("schemaLocation")
    schema = await treq.get(schema_url, persistent=False)
    assert schema.code == 200 and etree.fromstring(await schema.content()).tag == f"{{{c.XS_NS}}}schema"
    bare = await treq.get(url, persistent=False)
    assert bare.code == 404 and b"?wsdl" in await bare.content()


def test_received_message_reads_ids_and_payload():
    message = ReceivedMessage.read(wire.operation_of(_pushed()).find("request"))
    assert (message.message_id, message.correlation_id, message.message_type) == ("m-1", "c-1", "REQUEST")
    assert message.payload.tag == f"{{{ECHO_NS}}}EchoRequest"
    with pytest.raises(ValueError, match="messageId"):
        ReceivedMessage.read(etree.fromstring(b"<request><messageInfo/></request>"))


@pytest_twisted.ensureDeferred
async def test_a_signing_receiver_signs_its_faults_too(harness, receivers, pki):
    """A service requiring transport signatures checks the receiver's answers, faults included: an unsigned
    fault would reach the sender as the receiver's missing signature instead of its reason."""
    inbox = Inbox()
    own = pki.cert("push-receiver")
    url = receivers.mount("pusher", PushReceiver(inbox.on_message, verify=False, sign=(own.key, own.cert)))
    inbox.failure = ValueError("no room")
    for refused in (_pushed("m-9"), b"<not xml"):
        status, fault = await _post(url, refused)
        assert status == 500 and fault.tag == c.FAULT
        answer = await treq.post(url, refused, headers={"Content-Type": "text/xml"})
        verified = wss.verify_signed_by(await answer.content(), own.cert, policy=AlgorithmPolicy(), now=utc_now())
        assert verified.certificate == own.cert
