"""AsyncChannel routing: which exchange a message belongs to, who receives it, until when."""
from __future__ import annotations

import uuid

from gateway.checks.replay import parse_datetime
from gateway.context import MessageContext
from gateway.faults import Fault

EXPIRY_PROPERTY = "expiresAt"


def resolve_exchange(ctx: MessageContext) -> None:
    """A REQUEST opens an exchange with the service's provider; the other types continue one, back to the
    other party (РЕQUEST → UPDATE/NOTIFICATION/RESPONSE return to the originator)."""
    info = ctx.info
    if info.message_type == "REQUEST":
        if info.correlation_id:
            ctx.note(f"client correlationId {info.correlation_id!r} replaced: the gateway assigns it for a REQUEST")
        ctx.correlation_id = str(uuid.uuid4())
        ctx.recipient_id = ctx.service.provider
        return
    if not info.correlation_id:
        raise Fault("ASYNC_CORRELATION_REQUIRED", f"a {info.message_type} without correlationId")
    opening = ctx.env.exchanges.exchange(info.correlation_id)
    if opening is None or opening.service_id != ctx.service.id:
        raise Fault("ASYNC_CORRELATION_UNKNOWN", f"correlationId {info.correlation_id!r} for {ctx.service.id!r}")
    parties = {opening.sender_id, opening.recipient_id}
    if ctx.sender.id not in parties:
        raise Fault("ASYNC_NOT_A_PARTY", f"{ctx.sender.id!r} is not a party to exchange {info.correlation_id!r}")
    ctx.correlation_id = info.correlation_id
    ctx.recipient_id = opening.sender_id if ctx.sender.id == opening.recipient_id else opening.recipient_id
    ctx.note(f"{info.message_type} in exchange {info.correlation_id} → {ctx.recipient_id}")


def read_expiry(ctx: MessageContext) -> None:
    """Optional property expiresAt: after it the message is not delivered."""
    for prop in ctx.operation.findall(f"{ctx.shape.info}/properties"):
        if prop.findtext("key") == EXPIRY_PROPERTY:
            value = prop.findtext("value") or ""
            try:
                expires = parse_datetime(value)
            except ValueError:
                raise Fault("ASYNC_EXPIRY_INVALID", f"expiresAt {value!r} is not a date and time") from None
            if expires <= ctx.received_at:
                raise Fault("ASYNC_EXPIRY_INVALID", f"expiresAt {value} is already past")
            ctx.expires_at = expires
            ctx.note(f"expires at {expires.isoformat()}")
