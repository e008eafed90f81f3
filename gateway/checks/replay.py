"""Freshness: messageDate within the allowed skew, and no messageId twice from one sender."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from gateway.context import MessageClaim, MessageContext
from gateway.faults import Fault


_END_OF_DAY = re.compile(r"T24:00:00(?:\.0+)?")
# A date without an offset is a day somewhere from UTC−14 to UTC+14 (XML Schema compares such values so).
_ZONES = timedelta(hours=14)


def parse_datetime(value: str) -> datetime:
    """xs:dateTime → aware datetime; a value without an offset is read as UTC."""
    text = value.strip()
    # xs:dateTime allows 24:00:00 for the midnight that ends a day; Python does not.
    end_of_day = _END_OF_DAY.search(text)
    if end_of_day:
        text = text[:end_of_day.start()] + "T00:00:00" + text[end_of_day.end():]
    parsed = datetime.fromisoformat(text)
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return parsed + timedelta(days=1) if end_of_day else parsed


def check_message_date(ctx: MessageContext) -> None:
    if ctx.info.message_date is None:
        ctx.note("no date in this request")
        return
    skew = timedelta(seconds=ctx.env.settings.clock_skew_seconds)
    now = ctx.env.clock()
    if ctx.message_day is not None:
        # A bare date (tolerate_client_variations) is fresh when it is today's date in some time zone.
        utc = now.astimezone(timezone.utc)
        if not (utc - skew - _ZONES).date() <= ctx.message_day <= (utc + skew + _ZONES).date():
            raise Fault("MESSAGE_DATE_SKEW",
                        f"the date {ctx.message_day} is not today in any time zone, give or take {skew}")
        return
    try:
        sent = parse_datetime(ctx.info.message_date)
    except ValueError:
        raise Fault("MESSAGE_DATE_SKEW", f"messageDate {ctx.info.message_date!r} is not a date and time") from None
    if sent < now - skew:
        raise Fault("MESSAGE_DATE_SKEW", f"messageDate {ctx.info.message_date} is more than {skew} in the past")
    if sent > now + skew:
        raise Fault("MESSAGE_DATE_SKEW", f"messageDate {ctx.info.message_date} is more than {skew} in the future")


def reject_replay(ctx: MessageContext) -> None:
    """A messageId seen from this sender within the window is a replay, unless its first copy was accepted and
    its sender never got an answer (SHEP-299): then the channel answers with that copy's recorded outcome,
    and nothing is forwarded or queued twice. A new pair is recorded when the message is accepted."""
    if not ctx.info.message_id:
        ctx.note("no messageId: the gateway assigns it")
        return
    window = timedelta(seconds=ctx.env.settings.replay_window_seconds)
    now = ctx.env.clock()
    sender, message_id = ctx.sender.id, ctx.info.message_id
    first = ctx.env.replay_guard.first_seen(sender, message_id, now, window)
    if first is None:
        ctx.replay_claim = MessageClaim(sender, message_id, ctx.session_id, now, now - window)
        return
    seen = f"messageId {message_id!r} from {sender!r} within {window}: accepted at {first.seen_at.isoformat()}"
    if first.answered or first.session_id is None:
        raise Fault("MESSAGE_REPLAYED", f"{seen} in session {first.session_id or '(unknown)'}")
    if not first.provider_answered:
        raise Fault("MESSAGE_REPLAYED", f"{seen} in session {first.session_id}, which was answered SHEP-299; it "
                                        "may have reached the provider, whose answer is not recorded: ask the "
                                        "provider, or send it again under a new messageId")
    ctx.resend_of = first
    ctx.replay_claim = MessageClaim(sender, message_id, ctx.session_id, first.seen_at, now - window,
                                    replaces=first.session_id)
    ctx.note(f"a resend of session {first.session_id}, answered SHEP-299: its recorded outcome is returned")
