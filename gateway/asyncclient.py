"""Public AsyncChannel client pieces: a blocking client of the gateway's IAsyncChannel (`/bip-async/`)
and `PushReceiver`, the IAsyncChannelClient a participant serves for push delivery (docs/async.md).

Envelopes are built and read with `gateway.asyncchannel.wire`; faults are decoded by
`gateway.client.read_reply`, the same as on the SyncChannel.
"""
from __future__ import annotations

import hmac
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from cryptography import x509
from lxml import etree
from twisted.internet import threads
from twisted.web import resource, server

from gateway import client
from gateway import contract as c
from gateway.asyncchannel import wire
from gateway.faults import Fault
from gateway.security.algorithms import AlgorithmPolicy, SignatureError
from gateway.security.wss import verify_signed_by
from gateway.soap import fault_envelope
from gateway.web import contract_files
from gateway.web.body import read_body

log = logging.getLogger("shep.asyncclient")

CLIENT_WSDL = "AsyncChannelClient-v10.wsdl"
PUSH_MESSAGE = c.q(c.ASYNC_CLIENT_NS, "sendMessage")
PUSH_STATUS = c.q(c.ASYNC_CLIENT_NS, "changeMassageStatusNotification")
PUSH_MESSAGE_FAULT = c.q(c.ASYNC_CLIENT_NS, "sendMessageFault1_sendMessageFault")
PUSH_STATUS_FAULT = c.q(c.ASYNC_CLIENT_NS,
                        "changeMassageStatusNotificationFault1_changeMassageStatusNotificationFault")


def _required(parent: etree._Element, path: str) -> str:
    """The text at `path`; ValueError names what is missing (a malformed message, not a crash)."""
    value = parent.findtext(path)
    if not value:
        raise ValueError(f"{path} is missing")
    return value


def _moment(parent: etree._Element, path: str) -> datetime:
    return datetime.fromisoformat(_required(parent, path))


@dataclass(frozen=True)
class Sent:
    """The gateway's answer to sendMessage: the ids it assigned."""
    message_id: str
    correlation_id: str
    session_id: str | None


@dataclass(frozen=True)
class ReceivedMessage:
    """An AsyncMessage as a recipient gets it, pulled or pushed."""
    message_id: str
    correlation_id: str
    service_id: str
    message_type: str
    sender_id: str
    session_id: str | None
    data: etree._Element | None
    info: etree._Element  # messageInfo as received: routeId, messageDate, properties

    @property
    def payload(self) -> etree._Element | None:
        """The business document inside `data` (inline style), if any."""
        return next((child for child in self.data if isinstance(child.tag, str)), None) \
            if self.data is not None else None

    @classmethod
    def read(cls, message: etree._Element) -> ReceivedMessage:
        """From an element holding messageInfo + messageData (`messages`, or a pushed `request`)."""
        return cls(message_id=_required(message, "messageInfo/messageId"),
                   correlation_id=_required(message, "messageInfo/correlationId"),
                   service_id=_required(message, "messageInfo/serviceId"),
                   message_type=_required(message, "messageInfo/messageType"),
                   sender_id=_required(message, "messageInfo/sender/senderId"),
                   session_id=message.findtext("messageInfo/sessionId"),
                   data=message.find("messageData/data"), info=message.find("messageInfo"))


@dataclass(frozen=True)
class MessageStatus:
    state: str  # ON_DELIVERY | DELIVERED | NOT_DELIVERED | DELIVERY_STOPPED
    code: str
    message: str
    date: datetime


@dataclass(frozen=True)
class StatusNotification:
    """changeMassageStatusNotification: the gateway tells a sender where its message stands."""
    notification_id: str
    message_id: str
    state: str
    code: str
    message: str
    date: datetime
    error: dict | None  # ErrorInfo fields (errorCode, errorMessage, errorDate)
    session_id: str | None

    @classmethod
    def read(cls, request: etree._Element) -> StatusNotification:
        error = request.find("notification/error")
        return cls(notification_id=_required(request, "notification/notificationId"),
                   message_id=_required(request, "notification/messageId"),
                   state=_required(request, "notification/messageState"),
                   code=_required(request, "notification/status/statusCode"),
                   message=_required(request, "notification/status/statusMessage"),
                   date=_moment(request, "notification/status/statusDate"),
                   error=client.read_error_info(error) if error is not None else None,
                   session_id=request.findtext("sessionId"))


class AsyncFault(Exception):
    """The gateway refused the call: its ErrorInfo (errorCode, errorMessage, errorData, …) and HTTP status."""

    def __init__(self, error_info: dict, http_status: int):
        self.error_info = error_info
        self.http_status = http_status
        super().__init__(f"{error_info.get('errorCode')}: {error_info.get('errorMessage')} "
                         f"({error_info.get('errorData') or '-'}), HTTP {http_status}")

    @property
    def code(self) -> str | None:
        return self.error_info.get("errorCode")


class AsyncGatewayClient:
    """One participant's blocking client of the AsyncChannel.

    It blocks its thread (urllib): a twisted program calls it through `deferToThread`.
    `base_url` is the gateway's base URL or its `/bip-async/` address; with `sign=(key, cert)`
    every request carries a WS-Security transport signature.
    """

    def __init__(self, base_url: str, sender_id: str, password: str | None, *, sign: tuple | None = None,
                 timeout: float = 30):
        base = base_url.rstrip("/")
        self.url = base + "/" if "/bip-async" in base else base + "/bip-async/"
        self.sender_id = sender_id
        self.password = password
        self.sign = sign
        self.timeout = timeout

    def send(self, service_id: str, payload: etree._Element, *, message_type: str = "REQUEST",
             correlation_id: str | None = None, properties: dict[str, str] | None = None) -> Sent:
        """A REQUEST opens an exchange; UPDATE, NOTIFICATION and RESPONSE carry its correlationId."""
        response = self._call(wire.send_message(
            service_id=service_id, sender_id=self.sender_id, password=self.password, message_type=message_type,
            payload=payload, correlation_id=correlation_id, properties=properties), "sendMessageResponse")
        return Sent(_required(response, "messageId"), _required(response, "correlationId"),
                    response.findtext("sessionId"))

    def pull(self, service_id: str, *, message_id: str | None = None, correlation_id: str | None = None,
             amount: int | None = None) -> list[ReceivedMessage]:
        """Messages waiting for this participant; unacknowledged, they come back after the visibility timeout."""
        response = self._call(wire.get_messages(
            service_id=service_id, sender_id=self.sender_id, password=self.password, message_id=message_id,
            correlation_id=correlation_id, amount=amount), "getMessagesResponse")
        return [ReceivedMessage.read(message) for message in response.findall("messages")]

    def acknowledge(self, message: ReceivedMessage, *, accepted: bool = True, resend: bool = False,
                    error: tuple[str, str] | None = None) -> str:
        """sendDeliveryNotification; `error` is (code, message). Returns the notificationId."""
        response = self._call(wire.delivery_notification(
            message_id=message.message_id, service_id=message.service_id, sender_id=self.sender_id,
            password=self.password, accepted=accepted, resend=resend, error=error),
            "sendDeliveryNotificationResponse")
        return _required(response, "notificationId")

    def status(self, message_id: str) -> MessageStatus:
        response = self._call(wire.get_message_status(message_id=message_id, sender_id=self.sender_id,
                                                      password=self.password), "getMessageStatusResponse")
        return MessageStatus(_required(response, "messageState"), _required(response, "status/statusCode"),
                             _required(response, "status/statusMessage"), _moment(response, "status/statusDate"))

    def _call(self, body: bytes, answer: str) -> etree._Element:
        """POST one operation: the `response` of its answer, or AsyncFault; ValueError for anything else."""
        if self.sign is not None:
            body = client.sign_request(body, *self.sign)
        status, raw = client.post(self.url, body, timeout=self.timeout)
        try:
            operation = wire.operation_of(raw)
        except (ValueError, etree.XMLSyntaxError) as exc:
            raise ValueError(f"HTTP {status}, not a SOAP answer: {exc}") from None
        if operation.tag == c.FAULT:
            raise AsyncFault(client.read_reply(status, raw).fault, status)
        response = operation.find("response")
        if operation.tag != c.q(c.ASYNC_NS, answer) or response is None:
            raise ValueError(f"HTTP {status}, expected {answer}, got {etree.QName(operation).localname}")
        return response


class PushReceiver(resource.Resource):
    """A participant's IAsyncChannelClient: the gateway POSTs `sendMessage` and
    `changeMassageStatusNotification` here; `GET ?wsdl` serves the contract at the URL used.

    Callbacks run in the reactor's thread pool, so they may block (answer through
    `AsyncGatewayClient`, say). One that raises gets a SOAP fault back and the gateway retries.
    Delivery is at least once: a messageId already handled is acknowledged again without
    calling `on_message` (the last `remember` ids are kept). With `sign=(key, cert)` the answers carry
    a WS-Security signature, as a service requiring transport signatures wants of its receiver.

    Anyone can POST here, so a push is taken only when proven the gateway's: WS-Security signed by
    `gateway_certificate` (the gateway signs pushes of services with `require_transport_signature`),
    or, for unsigned deployments without a certificate, carrying `shared_secret` in the
    X-Shep-Push-Secret header (the participant's `push_secret` in the gateway's configuration).
    With neither every push is refused (NOT_FROM_GATEWAY), unless `verify=False` says that this
    receiver trusts its network (tests, demos). A forged push with a new messageId fails the check;
    a replayed genuine one is acknowledged as a duplicate.
    """

    isLeaf = True

    def __init__(self, on_message: Callable[[ReceivedMessage], None],
                 on_status: Callable[[StatusNotification], None] | None = None, *, remember: int = 10_000,
                 sign: tuple | None = None, gateway_certificate: x509.Certificate | None = None,
                 shared_secret: str | None = None, verify: bool = True, policy: AlgorithmPolicy | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        super().__init__()
        self.sign = sign
        self.gateway_certificate = gateway_certificate
        self.shared_secret = shared_secret
        self.verify = verify
        self.policy = policy or AlgorithmPolicy()
        self.clock = clock
        self.on_message = on_message
        self.on_status = on_status
        self.remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()

    def render_GET(self, request: server.Request):
        return contract_files.serve_here(request, CLIENT_WSDL, "IAsyncChannelClient")

    def render_POST(self, request: server.Request):
        raw = read_body(request)
        if raw is None:
            return self._fault(request, Fault("BODY_TOO_LARGE", "larger than this site accepts"), PUSH_MESSAGE_FAULT)
        try:
            operation = wire.operation_of(raw)
        except (ValueError, etree.XMLSyntaxError) as exc:
            return self._fault(request, Fault("XML_MALFORMED", str(exc)), PUSH_MESSAGE_FAULT)
        handlers = {PUSH_MESSAGE: (ReceivedMessage.read, self._message, PUSH_MESSAGE_FAULT),
                    PUSH_STATUS: (StatusNotification.read, self._status, PUSH_STATUS_FAULT)}
        if operation.tag not in handlers:
            return self._fault(request, Fault("UNKNOWN_OPERATION", f"{operation.tag}: IAsyncChannelClient has "
                                                              "sendMessage and changeMassageStatusNotification"),
                          PUSH_MESSAGE_FAULT)
        read, handle, fault_element = handlers[operation.tag]
        refused = self._refusal(request, raw)
        if refused is not None:
            log.warning("push refused: %s", refused.data)
            return self._fault(request, refused, fault_element)
        body = operation.find("request")
        try:
            if body is None:
                raise ValueError("request is missing")
            item = read(body)
        except ValueError as exc:
            return self._fault(request, Fault("SCHEMA_INVALID", str(exc)), fault_element)
        return handle(request, item)

    def _refusal(self, request: server.Request, raw: bytes) -> Fault | None:
        """Why this POST is not proven to come from the gateway, or None."""
        if not self.verify:
            return None
        if self.gateway_certificate is None:
            if self.shared_secret is None:
                return Fault("NOT_FROM_GATEWAY", "this receiver knows neither the gateway's certificate nor a "
                                                 "shared secret to verify pushes with")
            given = request.getHeader(wire.PUSH_SECRET_HEADER) or b""
            # Constant time: the comparison must not tell how much of a guess was right.
            if hmac.compare_digest(given, self.shared_secret.encode()):
                return None
            return Fault("NOT_FROM_GATEWAY", f"the {wire.PUSH_SECRET_HEADER.decode()} header is "
                                             f"{'wrong' if given else 'missing'}")
        try:
            verify_signed_by(raw, self.gateway_certificate, policy=self.policy, now=self.clock())
        except SignatureError as error:
            return Fault(error.name, error.detail)
        return None

    def _signed(self, body: bytes) -> bytes:
        return body if self.sign is None else client.sign_request(body, *self.sign)

    def _fault(self, request: server.Request, fault: Fault, element: str) -> bytes:
        """Signed as the receiver's answers are: a gateway that requires signatures reads the reason, not a
        missing signature."""
        return _xml(request, fault.spec.http_status, self._signed(fault_envelope(fault, None, element)))

    def _message(self, request: server.Request, message: ReceivedMessage):
        answer = self._signed(wire.send_message_response(
            message_id=message.message_id, correlation_id=message.correlation_id, session_id=message.session_id,
            wrapper="sendMessageResponse", ns=c.ASYNC_CLIENT_NS))
        if message.message_id in self._seen:
            log.info("duplicate push of %s acknowledged again", message.message_id)
            return _xml(request, 200, answer)

        def handled(_):
            self._seen[message.message_id] = None
            while len(self._seen) > self.remember:
                self._seen.popitem(last=False)
            return answer

        return _run(request, self.on_message, message, handled, PUSH_MESSAGE_FAULT, self._fault)

    def _status(self, request: server.Request, notification: StatusNotification):
        answer = self._signed(wire.push_status_response(notification.session_id))
        if self.on_status is None:
            return _xml(request, 200, answer)
        return _run(request, self.on_status, notification, lambda _: answer, PUSH_STATUS_FAULT, self._fault)


def _xml(request: server.Request, status: int, body: bytes) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"text/xml; charset=utf-8")
    return body


def _run(request: server.Request, callback: Callable, argument, answer: Callable[[object], bytes],
         fault_element: str, fault: Callable[[server.Request, Fault, str], bytes]) -> int:
    """`callback(argument)` in a pool thread, then the answer, or a SOAP fault when it raised."""
    def failed(failure):
        log.error("%s failed: %s", getattr(callback, "__name__", callback), failure.getTraceback())
        # SOAP 1.1 wants a fault for a failed operation; the catalogue's INTERNAL_ERROR carries the cause.
        return fault(request, Fault("INTERNAL_ERROR", f"{failure.type.__name__}: {failure.value}"),
                     fault_element)

    def write(body: bytes) -> None:
        if not request._disconnected:  # the gateway gave up waiting: nothing to answer
            request.write(body)
            request.finish()

    deferred = threads.deferToThread(callback, argument)
    deferred.addCallbacks(lambda result: _xml(request, 200, answer(result)), failed).addCallback(write)
    return server.NOT_DONE_YET
