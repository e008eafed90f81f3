"""Where things sit in each operation of the contract: the one table checks read paths from.

A `Shape` names, for one SOAP operation, the paths (relative to the operation element in the Body)
of the fields the checks need, the schema set that validates it, and the answer it expects. The
channel modules pick the shape by the operation found in the Body; the checks stay generic.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from lxml import etree

from gateway import contract as c


@dataclass(frozen=True)
class Shape:
    channel: str  # sync | async
    operation: str  # Clark name of the wrapper element
    schema: Callable[[], etree.XMLSchema]
    fault: str  # the operation's fault element (contract §4)
    # Paths relative to the operation element; None where the operation has no such thing.
    info: str | None  # the element carrying ids, sender, properties, sessionId
    data: str | None  # the business payload (`data`, xs:anyType)
    fields: dict[str, str] = field(default_factory=dict)  # message_id, service_id, sender_id, … → path
    # The contract's xs:dateTime values the sender writes (not the payload's): a colon-less offset is tolerated.
    dates: tuple[str, ...] = ()
    # A bare date (no time) is tolerated in message_date: set where that is the request's own date, answered
    # by the gateway itself and never forwarded, so no time of day has to be made up for anyone.
    bare_date: bool = False
    # What the other side answers with (provider or push receiver), and where its parts are.
    answer: str | None = None
    answer_info: str | None = None
    answer_data: str | None = None

    @property
    def name(self) -> str:
        return etree.QName(self.operation).localname


def _async_fault(operation: str) -> str:
    return c.q(c.ASYNC_NS, f"{operation}Fault1_{operation}Fault")


def _sender(prefix: str) -> dict[str, str]:
    return {"sender_id": f"{prefix}/sender/senderId", "password": f"{prefix}/sender/password"}


SYNC_SEND = Shape(
    "sync", c.SEND_MESSAGE, c.sync_schema, c.SYNC_FAULT, info="request/requestInfo", data="request/requestData/data",
    fields={"message_id": "request/requestInfo/messageId", "correlation_id": "request/requestInfo/correlationId",
            "service_id": "request/requestInfo/serviceId", "message_date": "request/requestInfo/messageDate",
            "route_id": "request/requestInfo/routeId", **_sender("request/requestInfo")},
    dates=("request/requestInfo/messageDate",),
    answer=c.SEND_MESSAGE_RESPONSE, answer_info="response/responseInfo", answer_data="response/responseData/data")

SYNC_SHAPES = {SYNC_SEND.operation: SYNC_SEND}

ASYNC_SEND = Shape(
    "async", c.q(c.ASYNC_NS, "sendMessage"), c.async_schema, _async_fault("sendMessage"), info="request/messageInfo",
    data="request/messageData/data",
    fields={"message_id": "request/messageInfo/messageId", "correlation_id": "request/messageInfo/correlationId",
            "service_id": "request/messageInfo/serviceId", "message_date": "request/messageInfo/messageDate",
            "route_id": "request/messageInfo/routeId", "message_type": "request/messageInfo/messageType",
            **_sender("request/messageInfo")},
    dates=("request/messageInfo/messageDate",))

ASYNC_GET_MESSAGES = Shape(
    "async", c.q(c.ASYNC_NS, "getMessages"), c.async_schema, _async_fault("getMessages"), info="request", data=None,
    fields={"message_id": "request/messageId", "correlation_id": "request/correlationId",
            "service_id": "request/serviceId", "message_date": "request/requestDate", **_sender("request")},
    dates=("request/requestDate",), bare_date=True)

ASYNC_GET_STATUS = Shape(
    "async", c.q(c.ASYNC_NS, "getMessageStatus"), c.async_schema, _async_fault("getMessageStatus"),
    info="request", data=None,
    fields={"message_id": "request/messageId", "message_date": "request/requestDate", **_sender("request")},
    dates=("request/requestDate",), bare_date=True)

ASYNC_NOTIFY = Shape(
    "async", c.q(c.ASYNC_NS, "sendDeliveryNotification"), c.async_schema, _async_fault("sendDeliveryNotification"),
    info="request", data=None,
    fields={"message_id": "request/notification/messageId", "service_id": "request/notification/serviceId",
            "message_date": "request/requestDate", **_sender("request")},
    dates=("request/requestDate", "request/notification/notificationDate",
           "request/notification/deliveryStatus/statusDate", "request/notification/deliveryStatus/error/errorDate"),
    bare_date=True)

ASYNC_SHAPES = {shape.operation: shape for shape in (ASYNC_SEND, ASYNC_GET_MESSAGES, ASYNC_GET_STATUS,
                                                     ASYNC_NOTIFY)}

# The gateway as a client of a participant's IAsyncChannelClient (push delivery).
PUSH_SEND = Shape("async", c.q(c.ASYNC_CLIENT_NS, "sendMessage"), c.async_schema,
                  c.q(c.ASYNC_CLIENT_NS, "sendMessageFault1_sendMessageFault"), info=None, data=None,
                  answer=c.q(c.ASYNC_CLIENT_NS, "sendMessageResponse"), answer_info="response")
PUSH_STATUS = Shape("async", c.q(c.ASYNC_CLIENT_NS, "changeMassageStatusNotification"), c.async_schema,
                    c.q(c.ASYNC_CLIENT_NS,
                        "changeMassageStatusNotificationFault1_changeMassageStatusNotificationFault"),
                    info=None, data=None,
                    answer=c.q(c.ASYNC_CLIENT_NS, "changeMassageStatusNotificationResponse"),
                    answer_info="response")
