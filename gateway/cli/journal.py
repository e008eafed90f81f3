"""`shep journal show | verify`: the hash-chained journal (журнал) as the operator reads it."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from gateway.cli import common


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def cmd_show(args) -> int:
    from gateway.journal import Journal

    store = common.open_store(args)
    try:
        records = Journal(store).query(message_id=args.message_id, session_id=args.session_id,
                                       service_id=args.service_id, sender=args.sender,
                                       since=args.since, until=args.until, limit=args.limit,
                                       include_body=args.body)
    finally:
        store.close()
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=1))
        return 0
    for r in records:
        verdicts = ", ".join(f"{v['check']}:{v['verdict']}" for v in r["verdicts"])
        print(f"#{r['seq']} {r['started_at']} {r['hop']:<12} {r['from_party'] or '-'} → {r['to_party'] or '-'} "
              f"service={r['service_id'] or '-'} messageId={r['message_id'] or '-'} session={r['session_id']} "
              f"fault={r['fault_code'] or '-'} bytes={r['body_size']} sha256={r['body_sha256'][:16]}…")
        if verdicts:
            print(f"    checks: {verdicts}")
        if r.get("deviations"):
            print(f"    tolerated: {'; '.join(r['deviations'])}")
        if args.body and r.get("body_base64"):
            import base64
            print("    " + base64.b64decode(r["body_base64"]).decode("utf-8", "replace"))
    print(f"{len(records)} record(s)")
    return 0


def _gateway_certificates(args, state_dir: Path) -> list:
    """Every certificate the gateway may have signed checkpoints with: the configured one and the test PKI's."""
    from cryptography import x509

    signing_cert = common.settings(args).gateway.signing_cert
    paths = [signing_cert] if signing_cert else []
    paths += sorted((state_dir / "pki").glob("gateway*/cert.pem"))
    return [x509.load_pem_x509_certificate(path.read_bytes()) for path in paths if path.is_file()]


def cmd_verify(args) -> int:
    from gateway import checkpoints
    from gateway.journal import Journal

    # The checkpoints and the gateway's certificates are in the state dir, whichever store holds the journal.
    state_dir = common.state(args, must_exist=True).path
    path = Path(args.checkpoints) if args.checkpoints else state_dir / checkpoints.FILE_NAME
    store = common.open_store(args)
    try:
        journal = Journal(store)
        result = journal.verify()
        against = None
        if result.ok:
            try:
                against = checkpoints.verify(journal, path, _gateway_certificates(args, state_dir))
            except ValueError as exc:
                raise common.CommandError(str(exc)) from None
    finally:
        store.close()
    for outcome in (result, against):
        if outcome is not None and not outcome.ok:
            print(f"journal BROKEN at record {outcome.broken_seq}: {outcome.reason}")
            return 1
    print(f"journal OK: {result.checked} record(s), chain intact")
    if against.checkpoints:
        print(f"checkpoints OK: {against.checked} record(s) match {against.checkpoints} signed checkpoint(s) "
              f"in {path}")
    else:
        print(f"no signed checkpoints in {path}: only the chain was checked")
    return 0


def register(sub) -> None:
    journal = sub.add_parser("journal", help="read or verify the hash-chained journal")
    jsub = journal.add_subparsers(dest="journal_command", required=True)
    show = jsub.add_parser("show", help="records by messageId, sessionId, serviceId, sender, time")
    common.add_common(show)
    show.add_argument("--message-id")
    show.add_argument("--session-id")
    show.add_argument("--service-id")
    show.add_argument("--sender")
    show.add_argument("--since", type=_moment, help="ISO-8601 date-time (inclusive)")
    show.add_argument("--until", type=_moment, help="ISO-8601 date-time (exclusive)")
    show.add_argument("--limit", type=int, default=100)
    show.add_argument("--body", action="store_true", help="include the message bytes")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)
    verify = jsub.add_parser("verify", help="check the hash chain and the gateway's signed checkpoints; exit 1 "
                                            "naming the first broken record")
    common.add_common(verify)
    verify.add_argument("--checkpoints", help="the checkpoint file (default: <state_dir>/journal-checkpoints.jsonl)")
    verify.set_defaults(func=cmd_verify)
