"""AsyncChannel v10 envelopes, both directions: built by the gateway and by clients, read by both.

Element names and order follow xsd/AsyncChannel-v10-*.xsd (contract §7); children are unqualified.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from lxml import etree

from gateway import contract as c
from gateway.soap import add_text, now_iso, serialize

MESSAGE_TYPES = ("REQUEST", "NOTIFICATION", "UPDATE", "RESPONSE")
ACCEPTED, NOT_ACCEPTED = "MESSAGE_ACCEPTED", "MESSAGE_NOT_ACCTEPTED"  # sic: the contract's spelling
RESEND, NOT_RESEND = "RESEND", "NOT_RESEND"
# The HTTP header of a push carrying the receiving participant's `push_secret` (docs/async.md).
PUSH_SECRET_HEADER = b"X-Shep-Push-Secret"


def _envelope(wrapper: str, ns: str = c.ASYNC_NS) -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(c.ENVELOPE, nsmap={"soap": c.SOAP_NS})
    etree.SubElement(envelope, c.HEADER)
    body = etree.SubElement(envelope, c.BODY)
    op = etree.SubElement(body, c.q(ns, wrapper), nsmap={"async" if ns == c.ASYNC_NS else "asyncC": ns})
    return envelope, op


def _sender(parent: etree._Element, sender_id: str, password: str | None) -> None:
    sender = etree.SubElement(parent, "sender")
    add_text(sender, "senderId", sender_id)
    add_text(sender, "password", password)


# -- requests a participant sends to the gateway ----------------------------------------------

def send_message(*, service_id: str, sender_id: str, password: str | None, message_type: str = "REQUEST",
                 payload: etree._Element | None = None, correlation_id: str | None = None,
                 message_id: str | None = None, route_id: str | None = None,
                 properties: dict[str, str] | None = None, message_date: str | None = None) -> bytes:
    """`sendMessage`; the gateway assigns messageId (and correlationId for a REQUEST)."""
    envelope, op = _envelope("sendMessage")
    request = etree.SubElement(op, "request")
    info = etree.SubElement(request, "messageInfo")
    add_text(info, "messageId", message_id)
    add_text(info, "correlationId", correlation_id)
    add_text(info, "serviceId", service_id)
    add_text(info, "messageType", message_type)
    add_text(info, "routeId", route_id)
    add_text(info, "messageDate", message_date or now_iso())
    _sender(info, sender_id, password)
    for key, value in (properties or {}).items():
        prop = etree.SubElement(info, "properties")
        add_text(prop, "key", key)
        add_text(prop, "value", value)
    data = etree.SubElement(etree.SubElement(request, "messageData"), "data")
    if payload is not None:
        data.append(payload)
    return serialize(envelope)


def get_messages(*, service_id: str, sender_id: str, password: str | None, message_id: str | None = None,
                 correlation_id: str | None = None, amount: int | None = None) -> bytes:
    envelope, op = _envelope("getMessages")
    request = etree.SubElement(op, "request")
    add_text(request, "messageId", message_id)
    add_text(request, "correlationId", correlation_id)
    add_text(request, "requestDate", now_iso())
    add_text(request, "serviceId", service_id)
    _sender(request, sender_id, password)
    add_text(request, "amount", str(amount) if amount is not None else None)
    return serialize(envelope)


def get_message_status(*, message_id: str, sender_id: str, password: str | None) -> bytes:
    envelope, op = _envelope("getMessageStatus")
    request = etree.SubElement(op, "request")
    add_text(request, "messageId", message_id)
    add_text(request, "requestDate", now_iso())
    _sender(request, sender_id, password)
    return serialize(envelope)


def delivery_notification(*, message_id: str, service_id: str, sender_id: str, password: str | None,
                          accepted: bool = True, resend: bool = False,
                          error: tuple[str, str] | None = None) -> bytes:
    """`sendDeliveryNotification`: MESSAGE_ACCEPTED, or not accepted with RESEND / NOT_RESEND."""
    envelope, op = _envelope("sendDeliveryNotification")
    request = etree.SubElement(op, "request")
    notification = etree.SubElement(request, "notification")
    add_text(notification, "messageId", message_id)
    add_text(notification, "serviceId", service_id)
    add_text(notification, "notificationDate", now_iso())
    status = etree.SubElement(notification, "deliveryStatus")
    add_text(status, "receiveStatus", ACCEPTED if accepted else NOT_ACCEPTED)
    add_text(status, "statusDate", now_iso())
    add_text(status, "resendMessage", RESEND if resend else NOT_RESEND)
    if error is not None:
        _error_info(status, "error", error[0], error[1])
    add_text(request, "requestDate", now_iso())
    _sender(request, sender_id, password)
    return serialize(envelope)


def _error_info(parent: etree._Element, tag: str, code: str, message: str) -> None:
    error = etree.SubElement(parent, tag)
    add_text(error, "errorCode", code)
    add_text(error, "errorMessage", message)
    add_text(error, "errorDate", now_iso())


# -- the gateway's answers ----------------------------------------------------------------------

def send_message_response(*, message_id: str, correlation_id: str, session_id: str,
                          wrapper: str = "sendMessageResponse", ns: str = c.ASYNC_NS) -> bytes:
    envelope, op = _envelope(wrapper, ns)
    response = etree.SubElement(op, "response")
    add_text(response, "messageId", message_id)
    add_text(response, "correlationId", correlation_id)
    add_text(response, "responseDate", now_iso())
    add_text(response, "sessionId", session_id)
    return serialize(envelope)


def get_messages_response(*, session_id: str, messages: list[bytes]) -> bytes:
    """`messages` are stored AsyncMessage documents (see `stored_message`)."""
    envelope, op = _envelope("getMessagesResponse")
    response = etree.SubElement(op, "response")
    add_text(response, "responseDate", now_iso())
    add_text(response, "sessionId", session_id)
    for raw in messages:
        stored = c.PARSER.parse(raw).getroot()
        stored.tag = "messages"
        response.append(stored)
    return serialize(envelope)


def message_status_response(*, state: str, code: str, message: str, status_date: datetime,
                            session_id: str) -> bytes:
    envelope, op = _envelope("getMessageStatusResponse")
    response = etree.SubElement(op, "response")
    add_text(response, "messageState", state)
    status = etree.SubElement(response, "status")
    add_text(status, "statusCode", code)
    add_text(status, "statusMessage", message)
    add_text(status, "statusDate", status_date.isoformat(timespec="milliseconds"))
    add_text(response, "responseDate", now_iso())
    add_text(response, "sessionId", session_id)
    return serialize(envelope)


def delivery_notification_response(*, session_id: str) -> bytes:
    envelope, op = _envelope("sendDeliveryNotificationResponse")
    response = etree.SubElement(op, "response")
    add_text(response, "notificationId", str(uuid.uuid4()))
    add_text(response, "responseDate", now_iso())
    add_text(response, "sessionId", session_id)
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
    add_text(notification, "notificationId", str(uuid.uuid4()))
    add_text(notification, "messageId", message_id)
    add_text(notification, "notificationDate", now_iso())
    add_text(notification, "messageState", state)
    status = etree.SubElement(notification, "status")
    add_text(status, "statusCode", code)
    add_text(status, "statusMessage", message)
    add_text(status, "statusDate", now_iso())
    if error is not None:
        _error_info(notification, "error", *error)
    add_text(request, "requestDate", now_iso())
    add_text(request, "sessionId", session_id)
    return serialize(envelope)


def push_status_response(session_id: str) -> bytes:
    envelope, op = _envelope("changeMassageStatusNotificationResponse", c.ASYNC_CLIENT_NS)
    response = etree.SubElement(op, "response")
    add_text(response, "responseDate", now_iso())
    add_text(response, "sessionId", session_id)
    return serialize(envelope)


def operation_of(raw: bytes) -> etree._Element:
    """The element inside soap:Body (ValueError when there is none)."""
    body = c.PARSER.parse(raw).getroot().find(c.BODY)
    elements = [el for el in body if isinstance(el.tag, str)] if body is not None else []
    if not elements:
        raise ValueError("no operation in soap:Body")
    return elements[0]
