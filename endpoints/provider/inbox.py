"""Diagram 1 on the АЖО's side: the portal's signed AttachmentRequest arrives by AsyncChannel push
(the participant's `async_endpoint`); the АЖО registers it and answers in the same exchange with an
UPDATE `Registration` (process 6) and a RESPONSE coupon or refusal (processes 7–8).

Delivery is at least once. The request's messageId is kept in the АЖО's own table with what was
already sent, so a redelivered message resumes where the previous delivery stopped and nothing is
registered or decided twice. A failure (ЖТ ММБ or the gateway unreachable) raises: the push fails and
the gateway retries it with backoff.
"""
from __future__ import annotations

import logging

from gateway.asyncclient import AsyncGatewayClient, PushReceiver, ReceivedMessage, StatusNotification
from gateway.security import xmldsig
from endpoints.provider.office import AttachmentOffice, parse
from endpoints.provider.store import REGISTERED

log = logging.getLogger("shep.provider.inbox")


class PortalInbox:
    def __init__(self, office: AttachmentOffice, gateway: AsyncGatewayClient, service_id: str):
        self.office = office
        self.gateway = gateway
        self.service_id = service_id
        self.receiver: PushReceiver | None = None

    def resource(self) -> PushReceiver:
        """The IAsyncChannelClient to mount at the participant's async_endpoint."""
        self.receiver = PushReceiver(self.on_message, self.on_status)
        return self.receiver

    def connect(self, gateway: AsyncGatewayClient, gateway_certificate, *, verify_pushes: bool = True) -> None:
        """Answer through `gateway`; the push receiver signs its acknowledgements with the same credentials
        and takes only pushes signed by `gateway_certificate` (until connected, it refuses every push)."""
        self.gateway = gateway
        if self.receiver is not None:
            self.receiver.sign = gateway.sign
            self.receiver.gateway_certificate = gateway_certificate
            self.receiver.verify = verify_pushes

    def on_message(self, message: ReceivedMessage) -> None:
        if message.service_id != self.service_id or message.message_type != "REQUEST":
            log.warning("%s %s on %s is not for the АЖО: acknowledged and dropped", message.message_type,
                        message.message_id, message.service_id)
            return
        store = self.office.store
        row = store.by_message(message.message_id)
        if row is None:
            try:
                document = xmldsig.document_in_data(message.data) if message.data is not None else b""
                row = self.office.register_portal(document, message_id=message.message_id,
                                                  correlation_id=message.correlation_id)
            except ValueError as exc:
                # The gateway validated it against the service's schema: this is not ours to answer.
                log.error("message %s carries no AttachmentRequest, dropped: %s", message.message_id, exc)
                return
        if not row["update_sent"]:
            self._send(row, row["registration_xml"], "UPDATE")
            store.mark(row["id"], update_sent=True)
        if row["status"] == REGISTERED:
            row = self.office.decide(row)
        if not row["response_sent"]:
            self._send(row, row["result_xml"], "RESPONSE")
            store.mark(row["id"], response_sent=True)

    def _send(self, row: dict, document: bytes, message_type: str) -> None:
        sent = self.gateway.send(self.service_id, parse(document), message_type=message_type,
                                 correlation_id=row["correlation_id"])
        log.info("%s of %s sent as %s", message_type, row["registration_number"], sent.message_id)

    def on_status(self, notification: StatusNotification) -> None:
        log.info("message %s is %s (%s)", notification.message_id, notification.state, notification.code)
