"""Freshness: messageDate within the allowed skew, and no messageId twice from one sender."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gateway.context import MessageContext
from gateway.faults import Fault


def parse_datetime(value: str) -> datetime:
    """xs:dateTime → aware datetime; a value without an offset is read as UTC."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def check_message_date(ctx: MessageContext) -> None:
    try:
        sent = parse_datetime(ctx.info.message_date)
    except ValueError:
        raise Fault("MESSAGE_DATE_SKEW", f"messageDate {ctx.info.message_date!r} is not a date and time") from None
    skew = timedelta(seconds=ctx.env.settings.clock_skew_seconds)
    now = ctx.env.clock()
    if sent < now - skew:
        raise Fault("MESSAGE_DATE_SKEW", f"messageDate {ctx.info.message_date} is more than {skew} in the past")
    if sent > now + skew:
        raise Fault("MESSAGE_DATE_SKEW", f"messageDate {ctx.info.message_date} is more than {skew} in the future")


def reject_replay(ctx: MessageContext) -> None:
    window = timedelta(seconds=ctx.env.settings.replay_window_seconds)
    if not ctx.env.replay_guard.remember_message(ctx.sender.id, ctx.info.message_id, ctx.env.clock(), window):
        raise Fault("MESSAGE_REPLAYED", f"messageId {ctx.info.message_id!r} from {ctx.sender.id!r} within {window}")
