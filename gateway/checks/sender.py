"""Who is calling: authentication by senderId + password, access rights, strict mode."""
from __future__ import annotations

from gateway.context import MessageContext
from gateway.faults import Fault


def authenticate_sender(ctx: MessageContext) -> None:
    sender_id = ctx.info.sender_id
    if sender_id is None:
        raise Fault("SENDER_UNKNOWN", "the gateway requires sender (senderId and password) on every call")
    participant = ctx.env.registry.participant(sender_id)
    if participant is None:
        raise Fault("SENDER_UNKNOWN", f"senderId {sender_id!r}")
    if participant.password_hash is None:
        raise Fault("SENDER_PASSWORD_INVALID", f"participant {sender_id!r} is not allowed to send")
    if ctx.info.password is None or not ctx.env.passwords.verify(ctx.info.password, participant.password_hash):
        raise Fault("SENDER_PASSWORD_INVALID", f"senderId {sender_id!r}")
    ctx.sender = participant


def authorize_sender(ctx: MessageContext) -> None:
    # The provider answers on its own service (async UPDATE/NOTIFICATION/RESPONSE); allowed_senders is about
    # who may open an exchange.
    answering = ctx.sender.id == ctx.service.provider and ctx.info.message_type not in (None, "REQUEST")
    if not answering and not ctx.service.allows(ctx.sender.id):
        raise Fault("ACCESS_DENIED", f"{ctx.sender.id!r} may not call {ctx.service.id!r}")


def enforce_strict_mode(ctx: MessageContext) -> None:
    # The first deviation names the fault; errorData lists them all, so one round trip shows every fix.
    if ctx.service.strict and ctx.deviations:
        raise Fault(ctx.deviations[0].fault, "; ".join(d.what for d in ctx.deviations))
