"""AsyncChannel v10 envelopes, both directions: built by the gateway and by clients, read by both.

Element names and order follow xsd/AsyncChannel-v10-*.xsd (contract §7); children are unqualified.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from lxml import etree

from gateway import contract as c
from gateway.soap import serialize

MESSAGE_TYPES = ("REQUEST", "NOTIFICATION", "UPDATE", "RESPONSE")
ACCEPTED, NOT_ACCEPTED = "MESSAGE_ACCEPTED", "MESSAGE_NOT_ACCTEPTED"  # sic: the contract's spelling
RESEND, NOT_RESEND = "RESEND", "NOT_RESEND"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _text(parent: etree._Element, tag: str, value: str | None) -> etree._Element | None:
    if value is None:
        return None
    el = etree.SubElement(parent, tag)
    el.text = value
    return el


def _envelope(wrapper: str, ns: str = c.ASYNC_NS) -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(c.ENVELOPE, nsmap={"soap": c.SOAP_NS})
    etree.SubElement(envelope, c.HEADER)
    body = etree.SubElement(envelope, c.BODY)
    op = etree.SubElement(body, c.q(ns, wrapper), nsmap={"async" if ns == c.ASYNC_NS else "asyncC": ns})
    return envelope, op


def _sender(parent: etree._Element, sender_id: str, password: str | None) -> None:
    sender = etree.SubElement(parent, "sender")
    _text(sender, "senderId", sender_id)
    _text(sender, "password", password)


# -- requests a participant sends to the gateway ----------------------------------------------

def send_message(*, service_id: str, sender_id: str, password: str | None, message_type: str = "REQUEST",
                 payload: etree._Element | None = None, correlation_id: str | None = None,
                 message_id: str | None = None, route_id: str | None = None,
                 properties: dict[str, str] | None = None, message_date: str | None = None) -> bytes:
    """`sendMessage`; the gateway assigns messageId (and correlationId for a REQUEST)."""
    envelope, op = _envelope("sendMessage")
    request = etree.SubElement(op, "request")
    info = etree.SubElement(request, "messageInfo")
    _text(info, "messageId", message_id)
    _text(info, "correlationId", correlation_id)
    _text(info, "serviceId", service_id)
    _text(info, "messageType", message_type)
    _text(info, "routeId", route_id)
    _text(info, "messageDate", message_date or now_iso())
    _sender(info, sender_id, password)
    for key, value in (properties or {}).items():
        prop = etree.SubElement(info, "properties")
        _text(prop, "key", key)
        _text(prop, "value", value)
    data = etree.SubElement(etree.SubElement(request, "messageData"), "data")
    if payload is not None:
        data.append(payload)
    return serialize(envelope)


def get_messages(*, service_id: str, sender_id: str, password: str | None, message_id: str | None = None,
                 correlation_id: str | None = None, amount: int | None = None) -> bytes:
    envelope, op = _envelope("getMessages")
    request = etree.SubElement(op, "request")
    _text(request, "messageId", message_id)
    _text(request, "correlationId", correlation_id)
    _text(request, "requestDate", now_iso())
    _text(request, "serviceId", service_id)
    _sender(request, sender_id, password)
    _text(request, "amount", str(amount) if amount is not None else None)
    return serialize(envelope)


def get_message_status(*, message_id: str, sender_id: str, password: str | None) -> bytes:
    envelope, op = _envelope("getMessageStatus")
    request = etree.SubElement(op, "request")
    _text(request, "messageId", message_id)
    _text(request, "requestDate", now_iso())
    _sender(request, sender_id, password)
    return serialize(envelope)


def delivery_notification(*, message_id: str, service_id: str, sender_id: str, password: str | None,
                          accepted: bool = True, resend: bool = False,
                          error: tuple[str, str] | None = None) -> bytes:
    """`sendDeliveryNotification`: MESSAGE_ACCEPTED, or not accepted with RESEND / NOT_RESEND."""
    envelope, op = _envelope("sendDeliveryNotification")
    request = etree.SubElement(op, "request")
    notification = etree.SubElement(request, "notification")
    _text(notification, "messageId", message_id)
    _text(notification, "serviceId", service_id)
    _text(notification, "notificationDate", now_iso())
    status = etree.SubElement(notification, "deliveryStatus")
    _text(status, "receiveStatus", ACCEPTED if accepted else NOT_ACCEPTED)
    _text(status, "statusDate", now_iso())
    _text(status, "resendMessage", RESEND if resend else NOT_RESEND)
    if error is not None:
        _error_info(status, "error", error[0], error[1])
    _text(request, "requestDate", now_iso())
    _sender(request, sender_id, password)
    return serialize(envelope)


def _error_info(parent: etree._Element, tag: str, code: str, message: str) -> None:
    error = etree.SubElement(parent, tag)
    _text(error, "errorCode", code)
    _text(error, "errorMessage", message)
    _text(error, "errorDate", now_iso())


# -- the gateway's answers ----------------------------------------------------------------------

def send_message_response(*, message_id: str, correlation_id: str, session_id: str,
                          wrapper: str = "sendMessageResponse", ns: str = c.ASYNC_NS) -> bytes:
    envelope, op = _envelope(wrapper, ns)
    response = etree.SubElement(op, "response")
    _text(response, "messageId", message_id)
    _text(response, "correlationId", correlation_id)
    _text(response, "responseDate", now_iso())
    _text(response, "sessionId", session_id)
    return serialize(envelope)


def get_messages_response(*, session_id: str, messages: list[bytes]) -> bytes:
    """`messages` are stored AsyncMessage documents (see `stored_message`)."""
    envelope, op = _envelope("getMessagesResponse")
    response = etree.SubElement(op, "response")
    _text(response, "responseDate", now_iso())
    _text(response, "sessionId", session_id)
    for raw in messages:
        stored = c.PARSER.parse(raw).getroot()
        stored.tag = "messages"
        response.append(stored)
    return serialize(envelope)


def message_status_response(*, state: str, code: str, message: str, status_date: datetime,
                            session_id: str) -> bytes:
    envelope, op = _envelope("getMessageStatusResponse")
    response = etree.SubElement(op, "response")
    _text(response, "messageState", state)
    status = etree.SubElement(response, "status")
    _text(status, "statusCode", code)
    _text(status, "statusMessage", message)
    _text(status, "statusDate", status_date.isoformat(timespec="milliseconds"))
    _text(response, "responseDate", now_iso())
    _text(response, "sessionId", session_id)
    return serialize(envelope)


def delivery_notification_response(*, session_id: str) -> bytes:
    envelope, op = _envelope("sendDeliveryNotificationResponse")
    response = etree.SubElement(op, "response")
    _text(response, "notificationId", str(uuid.uuid4()))
    _text(response, "responseDate", now_iso())
    _text(response, "sessionId", session_id)
    return serialize(envelope)


# -- the stored message and push delivery -------------------------------------------------------

def stored_message(operation: etree._Element, *, message_id: str, correlation_id: str,
                   session_id: str) -> bytes:
    """The AsyncMessage (messageInfo + messageData) as recipients get it: gateway ids set, no password."""
    request = operation.find("request")
    message = etree.Element("message")
    info = etree.fromstring(etree.tostring(request.find("messageInfo")))
    data = etree.fromstring(etree.tostring(request.find("messageData")))
    for name in ("messageId", "correlationId", "sessionId"):
        for old in info.findall(name):
            info.remove(old)
    for position, (name, value) in enumerate((("messageId", message_id), ("correlationId", correlation_id))):
        element = etree.Element(name)
        element.text = value
        info.insert(position, element)
    for password in info.findall("sender/password"):
        password.getparent().remove(password)
    etree.SubElement(info, "sessionId").text = session_id
    message.append(info)
    message.append(data)
    return etree.tostring(message)


def push_send_message(stored: bytes) -> bytes:
    """IAsyncChannelClient `sendMessage` carrying a stored message (push delivery)."""
    envelope, op = _envelope("sendMessage", c.ASYNC_CLIENT_NS)
    request = etree.SubElement(op, "request")
    for part in c.PARSER.parse(stored).getroot():
        request.append(part)
    return serialize(envelope)


def push_status_notification(*, message_id: str, state: str, code: str, message: str,
                             session_id: str, error: tuple[str, str] | None = None) -> bytes:
    """IAsyncChannelClient `changeMassageStatusNotification` (sic) telling a sender its message's state."""
    envelope, op = _envelope("changeMassageStatusNotification", c.ASYNC_CLIENT_NS)
    request = etree.SubElement(op, "request")
    notification = etree.SubElement(request, "notification")
    _text(notification, "notificationId", str(uuid.uuid4()))
    _text(notification, "messageId", message_id)
    _text(notification, "notificationDate", now_iso())
    _text(notification, "messageState", state)
    status = etree.SubElement(notification, "status")
    _text(status, "statusCode", code)
    _text(status, "statusMessage", message)
    _text(status, "statusDate", now_iso())
    if error is not None:
        _error_info(notification, "error", *error)
    _text(request, "requestDate", now_iso())
    _text(request, "sessionId", session_id)
    return serialize(envelope)


def push_status_response(session_id: str) -> bytes:
    envelope, op = _envelope("changeMassageStatusNotificationResponse", c.ASYNC_CLIENT_NS)
    response = etree.SubElement(op, "response")
    _text(response, "responseDate", now_iso())
    _text(response, "sessionId", session_id)
    return serialize(envelope)


def operation_of(raw: bytes) -> etree._Element:
    """The element inside soap:Body (ValueError when there is none)."""
    body = c.PARSER.parse(raw).getroot().find(c.BODY)
    elements = [el for el in body if isinstance(el.tag, str)] if body is not None else []
    if not elements:
        raise ValueError("no operation in soap:Body")
    return elements[0]
