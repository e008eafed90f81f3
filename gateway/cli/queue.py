"""`shep queue list | stop | retry`: the AsyncChannel queue (очередь сообщений) in the store."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

from gateway.cli import common


def _queue(args):
    from gateway.asyncchannel.queue import AsyncQueue
    from gateway.journal import Journal

    store = common.open_store(args)
    return store, AsyncQueue(store, Journal(store))


def cmd_list(args) -> int:
    from gateway.asyncchannel.queue import STATES

    if args.state and args.state not in STATES:
        print(f"shep queue list: --state must be one of {', '.join(STATES)}", file=sys.stderr)
        return 2
    store, queue = _queue(args)
    try:
        messages = queue.list(state=args.state, service_id=args.service_id, participant=args.participant,
                              limit=args.limit)
    finally:
        store.close()
    if args.json:
        print(json.dumps([m.as_dict() for m in messages], ensure_ascii=False, indent=1))
        return 0
    for m in messages:
        print(f"{m.message_id} {m.state:<16} {m.message_type:<12} service={m.service_id} "
              f"{m.sender_id} → {m.recipient_id} ({m.delivery}) attempts={m.attempts} "
              f"due={m.due_at.isoformat()} created={m.created_at.isoformat()}")
        if m.last_error:
            print(f"    last error: {m.last_error}")
    print(f"{len(messages)} message(s)")
    return 0


def cmd_change(args) -> int:
    """stop | retry: the store holds the state, so a running server sees the change at its next round."""
    from gateway.asyncchannel.queue import NotPending, NotYours

    store, queue = _queue(args)
    now = datetime.now(timezone.utc)
    try:
        if args.queue_command == "stop":
            message = queue.stop(args.message_id, now, args.reason)
        else:
            message = queue.retry(args.message_id, now)
    except NotYours:
        raise common.CommandError(f"no message {args.message_id} in the queue") from None
    except NotPending as exc:
        raise common.CommandError(str(exc)) from None
    finally:
        store.close()
    print(f"{message.message_id} {message.state} ({message.status_code} {message.status_message})")
    return 0


def register(sub) -> None:
    queue = sub.add_parser("queue", help="list the AsyncChannel queue; stop or retry a message's delivery")
    qsub = queue.add_subparsers(dest="queue_command", required=True)
    qlist = qsub.add_parser("list", help="queued messages, oldest first")
    common.add_common(qlist)
    # Checked by the command: importing the queue (SQLAlchemy) here would slow every shep command.
    qlist.add_argument("--state", help="ON_DELIVERY, DELIVERED, NOT_DELIVERED or DELIVERY_STOPPED")
    qlist.add_argument("--service-id")
    qlist.add_argument("--participant", help="sender or recipient")
    qlist.add_argument("--limit", type=int, default=100)
    qlist.add_argument("--json", action="store_true")
    qlist.set_defaults(func=cmd_list)
    stop = qsub.add_parser("stop", help="ON_DELIVERY → DELIVERY_STOPPED")
    common.add_common(stop)
    stop.add_argument("message_id", metavar="MESSAGE_ID")
    stop.add_argument("--reason", default="stopped with shep queue stop")
    stop.set_defaults(func=cmd_change)
    retry = qsub.add_parser("retry", help="back to ON_DELIVERY now, attempts reset (any state but DELIVERED)")
    common.add_common(retry)
    retry.add_argument("message_id", metavar="MESSAGE_ID")
    retry.set_defaults(func=cmd_change)
