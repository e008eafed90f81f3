"""`shep journal show | verify | export`: the hash-chained journal (журнал) as the operator reads, checks and
hands it over."""
from __future__ import annotations

import json
import sys
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


def _gateway_certificates(settings, state_dir: Path) -> list:
    """Every certificate the gateway may have signed checkpoints with: the configured one and the test PKI's."""
    from cryptography import x509

    paths = [settings.gateway.signing_cert] if settings.gateway.signing_cert else []
    paths += sorted((state_dir / "pki").glob("gateway*/cert.pem"))
    return [x509.load_pem_x509_certificate(path.read_bytes()) for path in paths if path.is_file()]


def cmd_verify(args) -> int:
    from gateway import checkpoints, journal_export
    from gateway.journal import Journal

    settings = common.settings(args)
    if args.bundle:
        return _verify_bundle(args, settings)
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
                trust = checkpoints.TokenTrust(*journal_export.offline_trust(settings, state_dir))
                against = checkpoints.verify(journal, path, _gateway_certificates(settings, state_dir), trust)
            except ValueError as exc:
                raise common.CommandError(str(exc)) from None
    finally:
        store.close()
    for outcome in (result, against):
        if outcome is not None and not outcome.ok:
            print(f"journal BROKEN at record {outcome.broken_seq}: {outcome.reason}")
            return 1
    print(f"journal OK: {result.checked} record(s), chain intact")
    for line in checkpoints.summary(against, path, settings.gateway.checkpoint_tsa_url is not None):
        print(line)
    return 0


def _verify_bundle(args, settings) -> int:
    """A bundle checked against --ca, or against the CAs of the state dir's test PKI."""
    from gateway import journal_export
    from gateway.security.certs import load_certificates

    try:
        if args.ca:
            given = load_certificates(Path(args.ca).read_bytes())
            anchors = [cert for cert in given if cert.issuer == cert.subject]
            intermediates = [cert for cert in given if cert.issuer != cert.subject]
        elif (found := common.state(args)).missing():  # the bundle's integrity is still checked, trusting no CA
            print(f"no state dir at {found.path}: no CA is trusted (--ca names one)", file=sys.stderr)
            anchors, intermediates = [], []
        else:
            anchors, intermediates = journal_export.offline_trust(settings, found.path)
        described = journal_export.verify_bundle(Path(args.bundle), anchors, intermediates)
    except journal_export.BundleError as exc:
        print(f"bundle BROKEN: {exc}")
        return 1
    except (OSError, ValueError) as exc:
        raise common.CommandError(str(exc)) from None
    print(f"bundle OK: records {described['from']}-{described['to']} ({described['records']}), "
          f"{described['checkpoints']} signed checkpoint(s), {len(described['uncovered'])} record(s) signed by the "
          "bundle only")
    return 0


def cmd_export(args) -> int:
    from gateway import checkpoints, journal_export
    from gateway.journal import Journal

    settings = common.settings(args)
    state_dir = common.state(args, must_exist=True).path
    path = Path(args.checkpoints) if args.checkpoints else state_dir / checkpoints.FILE_NAME
    store = common.open_store(args)
    try:
        journal = Journal(store)
        first, last = journal_export.seq_range(journal, args.first, args.last, args.since, args.until)
        out = Path(args.out or f"journal-{first}-{last}.tar")
        described = journal_export.export(journal, first, last, path, journal_export.gateway_signer(
            settings, state_dir), out, datetime.now(timezone.utc), tuple(_gateway_certificates(settings, state_dir)))
    except (journal_export.BundleError, OSError, ValueError) as exc:
        raise common.CommandError(str(exc)) from None
    finally:
        store.close()
    print(f"{out}: records {first}-{last} ({described['records']}), {described['checkpoints']} signed "
          f"checkpoint(s); {len(described['uncovered'])} record(s) no checkpoint signs yet")
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
    verify.add_argument("--bundle", help="check an exported bundle (tar file or its unpacked folder) instead")
    verify.add_argument("--ca", help="with --bundle: the CA certificates (PEM) to trust, instead of the gateway's")
    verify.set_defaults(func=cmd_verify)
    export = jsub.add_parser("export", help="write records, their checkpoints and certificates as a signed "
                                            "bundle that openssl verifies (docs/security.md)")
    common.add_common(export)
    export.add_argument("--from", dest="first", type=int, help="the first seq (default: the first record)")
    export.add_argument("--to", dest="last", type=int, help="the last seq (default: the last record)")
    export.add_argument("--since", type=_moment, help="only records started at or after (ISO-8601)")
    export.add_argument("--until", type=_moment, help="only records started before (ISO-8601)")
    export.add_argument("--checkpoints", help="the checkpoint file (default: <state_dir>/journal-checkpoints.jsonl)")
    export.add_argument("--out", help="the bundle's tar file (default: journal-<from>-<to>.tar)")
    export.set_defaults(func=cmd_export)
