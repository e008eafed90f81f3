"""Who is calling: authentication by senderId + password, access rights, strict mode."""
from __future__ import annotations

from datetime import datetime

from gateway.context import MessageContext
from gateway.faults import Fault
from gateway.store.lockouts import in_force


def identify_sender(ctx: MessageContext) -> None:
    """Known, not locked out; a (sender, password) pair verified before authenticates here, for free.

    Nothing here hashes: an unknown or locked-out sender costs a registry and a store lookup (the emulator
    names an unknown sender anyway, so answering it faster than a wrong password reveals nothing more).
    """
    sender_id = ctx.info.sender_id
    if sender_id is None:
        raise Fault("SENDER_UNKNOWN", "the gateway requires sender (senderId and password) on every call")
    participant = ctx.env.registry.participant(sender_id)
    if participant is None:
        raise Fault("SENDER_UNKNOWN", f"senderId {sender_id!r}")
    state = ctx.env.lockouts.login_state(sender_id)
    if state is not None:
        _refuse_if_locked(ctx, state[1])
    password, encoded = ctx.info.password, participant.password_hash
    if password is None or encoded is None:
        return  # authenticate_sender refuses it
    if ctx.env.passwords.verified(password, encoded):
        if state is not None and state[0]:
            ctx.env.lockouts.login_succeeded(sender_id, ctx.env.clock())
        ctx.sender = participant
        ctx.note("verified before")
    else:
        # A locked-out address may try no new password (a pair verified before still passes, above).
        if ctx.client_address is not None:
            _refuse_if_address_locked(ctx, ctx.env.lockouts.address_locked_until(ctx.client_address))
        ctx.password_to_verify = (password, encoded)


def authenticate_sender(ctx: MessageContext) -> None:
    """The password check itself, for a pair identify_sender has not seen verified; failures lead to a lockout."""
    if ctx.sender is not None:
        return
    sender_id = ctx.info.sender_id
    participant = ctx.env.registry.participant(sender_id)
    if participant.password_hash is None:
        raise Fault("SENDER_PASSWORD_INVALID", f"participant {sender_id!r} is not allowed to send")
    if ctx.password_to_verify is not None and ctx.password_valid is None:
        # Not verified by the channel beforehand (checks run on their own): here, then.
        ctx.password_valid = ctx.env.passwords.verify(*ctx.password_to_verify)
    settings = ctx.env.settings
    if not ctx.password_valid:
        now = ctx.env.clock()
        locked_until = ctx.env.lockouts.login_failed(sender_id, now, settings.lockout_attempts,
                                                     settings.lockout_minutes)
        address_locked_until = None if ctx.client_address is None else ctx.env.lockouts.address_failed(
            ctx.client_address, now, settings.address_lockout_attempts, settings.address_lockout_minutes)
        _refuse_if_locked(ctx, locked_until)
        _refuse_if_address_locked(ctx, address_locked_until)
        raise Fault("SENDER_PASSWORD_INVALID", f"senderId {sender_id!r}")
    # Locked out while the password was being hashed: the right password waits for the end of it, too.
    _refuse_if_locked(ctx, ctx.env.lockouts.login_succeeded(sender_id, ctx.env.clock()))
    ctx.sender = participant


def _refuse_if_locked(ctx: MessageContext, locked_until: datetime | None) -> None:
    if in_force(locked_until, ctx.env.clock()):
        raise Fault("SENDER_LOCKED_OUT", f"senderId {ctx.info.sender_id!r}: {ctx.env.settings.lockout_attempts} "
                                         f"wrong passwords; locked until {locked_until.isoformat(timespec='seconds')}")


def _refuse_if_address_locked(ctx: MessageContext, locked_until: datetime | None) -> None:
    if in_force(locked_until, ctx.env.clock()):
        raise Fault("ADDRESS_LOCKED_OUT", f"{ctx.env.settings.address_lockout_attempts} wrong passwords from "
                                          f"{ctx.client_address}; no new password is tried from it until "
                                          f"{locked_until.isoformat(timespec='seconds')}")


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
