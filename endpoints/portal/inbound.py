"""«мәртебені жаңарту» / «refresh status»: the exchange's messages pulled from the gateway, each applied once
(its messageId remembered) and acknowledged, then the delivery of the request's own message. A mixin of
`Portal`."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy import insert, select, update

from endpoints.portal import attachment
from endpoints.portal.model import COMPLETED, IN_PROGRESS, OPEN, REFUSED, SENT, SERVICE, PortalError
from endpoints.portal.quality import record_answer
from endpoints.portal.tables import inbox, requests
from gateway.asyncclient import AsyncFault, ReceivedMessage

log = logging.getLogger("shep.portal")
# getMessageStatus / sendDeliveryNotification for a message already acknowledged (docs/async.md).
NOT_PENDING = "SHEP-214"
_PULL_ROUNDS = 20


class InboundCases:
    """Over `self.gateway`, `self.engine`, `self.settings`, `self.clock`, `self._own`, `self._view`, `self._set`
    and `self.get_request` of `Portal`."""

    def refresh(self, iin: str, number: str) -> dict:
        """Pull this exchange's messages (acknowledging each), apply them, and ask for the REQUEST's delivery."""
        with self.engine.begin() as conn:
            row = self._own(conn, iin, number)
        if row.correlation_id is None:
            return self._view(row)
        try:
            for _ in range(_PULL_ROUNDS):
                messages = self.gateway.pull(self.settings.service_id, correlation_id=row.correlation_id,
                                             amount=self.settings.pull_amount)
                for message in messages:
                    self._receive(message)
                if len(messages) < self.settings.pull_amount:
                    break
            status = self.gateway.status(row.message_id)
        except AsyncFault as fault:
            raise PortalError(502, "GATEWAY_REFUSED", "Шлюз отказал в запросе статуса",
                              reasons=[{"code": fault.code, "message": fault.error_info.get("errorMessage")}],
                              request=self.get_request(iin, number)) from None
        except (OSError, ValueError) as exc:
            raise PortalError(503, "GATEWAY_UNAVAILABLE", "Шлюз недоступен, повторите позже",
                              detail=str(exc), request=self.get_request(iin, number)) from None
        self._set(row.id, delivery={"state": status.state, "code": status.code, "message": status.message,
                                    "date": status.date.isoformat()})
        return self.get_request(iin, number)

    def refresh_all(self, iin: str) -> list[dict]:
        with self.engine.begin() as conn:
            numbers = conn.execute(select(requests.c.number).where(requests.c.owner_iin == iin,
                                                                   requests.c.status.in_(OPEN))).scalars().all()
        for number in numbers:
            self.refresh(iin, number)
        return self.list_requests(iin)

    def _receive(self, message: ReceivedMessage) -> None:
        """Apply once (messageId), then acknowledge; a document that is not this service's is refused."""
        with self.engine.begin() as conn:
            seen = conn.execute(select(inbox.c.outcome).where(inbox.c.message_id == message.message_id)).first()
            if seen is None:
                outcome, document = self._apply(conn, message)
                conn.execute(insert(inbox).values(
                    message_id=message.message_id, correlation_id=message.correlation_id,
                    message_type=message.message_type, document=document, received_at=self.clock(),
                    outcome=outcome))
            else:
                outcome = seen.outcome
                log.info("duplicate %s (%s) acknowledged again", message.message_id, outcome)
        try:
            if outcome.startswith("rejected"):
                self.gateway.acknowledge(message, accepted=False, error=("PORTAL_REJECTED", outcome))
            else:
                self.gateway.acknowledge(message)
        except AsyncFault as fault:
            if fault.code != NOT_PENDING:  # already acknowledged: a repeat after a lost answer
                raise

    def _apply(self, conn, message: ReceivedMessage) -> tuple[str, str | None]:
        """The status change one message makes: (outcome recorded in the inbox, document name)."""
        payload = message.payload
        name = _localname(payload)
        row = conn.execute(select(requests).where(requests.c.correlation_id == message.correlation_id)
                           .with_for_update()).first()
        if row is None:
            return "rejected: no request of this portal has this correlationId", name
        now = self.clock()
        if message.message_type == "UPDATE" and payload is not None and payload.tag == attachment.REGISTRATION:
            registration = attachment.read_registration(payload)
            values = {"registration_number": registration.get("registrationNumber"),
                      "registered_at": _instant(registration.get("registeredAt"))}
            if row.status == SENT:
                values["status"] = IN_PROGRESS
            conn.execute(update(requests).where(requests.c.id == row.id).values(updated_at=now, **values))
            return f"{row.status} → {values.get('status', row.status)}", name
        if message.message_type == "RESPONSE" and payload is not None and payload.tag in (attachment.COUPON,
                                                                                        attachment.REFUSAL):
            if row.status not in OPEN:
                return f"ignored: the request is already {row.status}", name
            document = attachment.standalone(payload)
            if payload.tag == attachment.COUPON:
                coupon = attachment.read_coupon(payload)
                values = {"status": COMPLETED, "result_type": "COUPON",
                          "registration_number": coupon.get("registrationNumber") or row.registration_number}
            else:
                refusal = attachment.read_refusal(payload)
                values = {"status": REFUSED, "result_type": "REFUSAL", "reasons": refusal["reasons"],
                          "registration_number": refusal.get("registrationNumber") or row.registration_number}
            conn.execute(update(requests).where(requests.c.id == row.id)
                         .values(updated_at=now, result_document=document, **values))
            # The clinic's own time: the portal pulls only when the citizen refreshes, its receipt would count
            # the citizen's delay against the clinic.
            answered = payload.findtext("issuedAt" if payload.tag == attachment.COUPON else "refusedAt")
            record_answer(conn, row.id, _instant(answered) or now)
            return f"{row.status} → {values['status']}", name
        if message.message_type == "NOTIFICATION":
            return "noted", name
        return f"rejected: {message.message_type} {name or 'without a document'} is not part of {SERVICE}", name


def _localname(element) -> str | None:
    return None if element is None else element.tag.rpartition("}")[2]


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
