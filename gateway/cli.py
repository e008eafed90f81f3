"""`shep`: serve, send, journal show|verify|export, queue list|stop|retry, db upgrade|current, faults, hash-password."""
from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path

from gateway.config import SIGNING_ALGS, ConfigError, Settings, default_config_path, load_config


def _settings(path: str | None) -> Settings:
    return load_config(Path(path) if path else default_config_path())


def _store_argument(value: str) -> str:
    """`postgresql://…` means the psycopg driver the project ships with; other URLs pass as given."""
    for plain in ("postgresql://", "postgres://"):
        if value.startswith(plain):
            return "postgresql+psycopg://" + value[len(plain):]
    return value


def _store_url(args, settings: Settings) -> str:
    from gateway.store import sqlite_url

    return args.store_url or settings.gateway.store_url or sqlite_url(
        Path(args.state_dir or settings.gateway.state_dir))


def cmd_serve(args) -> int:
    if args.workers > 1:
        return _serve_workers(args)
    from twisted.internet import defer, reactor

    from gateway import logs
    from gateway.app import GatewayApp

    logs.configure(args.log_level)
    settings = _settings(args.config)
    if args.signing_alg:
        settings = dataclasses.replace(settings, gateway=dataclasses.replace(settings.gateway,
                                                                             signing_alg=args.signing_alg))
    app = GatewayApp(settings, reactor=reactor, state_dir=Path(args.state_dir or settings.gateway.state_dir),
                     store_url=_store_url(args, settings))
    try:
        app.listen(port=args.port, host=args.host, shared=args.shared_port)
    except ConfigError:
        app.store.close()
        raise
    except Exception as exc:  # a port in use or a bad address: say so, no traceback
        print(f"shep serve: cannot listen: {exc}", file=sys.stderr)
        app.store.close()
        return 2
    reactor.addSystemEventTrigger("before", "shutdown", lambda: defer.Deferred.fromCoroutine(app.stop()))
    base = app.base_url
    print(f"shep-emulator gateway listening on {base}  (config {settings.source})", flush=True)
    for label, path in (("WSDL", "/bip-sync/?wsdl"), ("SyncChannel", "/bip-sync/"),
                        ("WS-Security", "/bip-sync-wss-gost/"), ("AsyncChannel", "/bip-async/"),
                        ("faults", "/api/faults"),
                        ("journal", "/api/journal"), ("certificate", "/api/certificate"), ("PKI OCSP", "/pki/ocsp"),
                        ("health", "/health"), ("metrics", "/metrics"), ("demo provider", "/demo/echo"),
                        *((("portal", "/portal/api/"),) if "portal" in settings.endpoints else ()),
                        *((("clinic АЖО", "/clinic/api/"),) if "clinic" in settings.endpoints else ()),
                        ("ЖТ ММБ", "/sim/gbdfl")):
        print(f"  {label:<14} {base}{path}", flush=True)
    # SIGTERM and Ctrl-C both stop the reactor, which runs app.stop() before exiting.
    reactor.run()
    return 0


def _serve_workers(args) -> int:
    """`--workers N`: N processes, each with its own reactor, bound to one port with SO_REUSEPORT.

    The first worker starts alone (it initialises the PKI and issues the parties' certificates); the
    others join once it listens. State is in the store, so any worker can answer any request.
    """
    import os
    import socket
    import subprocess

    settings = _settings(args.config)
    host = args.host or settings.gateway.host
    # Holding the port (bound, not listening) picks it when --port 0 and keeps it until the workers listen.
    holder = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    # SO_REUSEADDR as Twisted sets it: a restart must not wait for the last run's TIME_WAIT connections.
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((host, settings.gateway.port if args.port is None else args.port))
    except OSError as exc:
        print(f"shep serve: cannot listen: {exc}", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "gateway.cli", "serve", "--shared-port", "--host", host,
               "--port", str(holder.getsockname()[1]), "--log-level", args.log_level]
    for flag, value in (("--config", args.config), ("--state-dir", args.state_dir), ("--store-url", args.store_url),
                        ("--signing-alg", args.signing_alg)):
        if value:
            command += [flag, value]
    workers: list[subprocess.Popen] = []

    def stop(signum, frame):
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start() -> subprocess.Popen:
        worker = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        workers.append(worker)
        for line in worker.stdout:  # its banner; the line after the URLs' last one ends it
            if worker is workers[0]:
                sys.stdout.write(line)
            if line.startswith("  ЖТ ММБ"):
                break
        return worker

    for _ in range(args.workers):
        if start().poll() is not None:
            stop(None, None)
            return workers[-1].wait() or 2
    holder.close()
    print(f"  workers        {args.workers} (pids {', '.join(str(w.pid) for w in workers)}; parent {os.getpid()})",
          flush=True)
    return max(worker.wait() for worker in workers)


def cmd_send(args) -> int:
    from lxml import etree

    from gateway import client, contract

    payload = None
    if args.data:
        try:
            payload = contract.PARSER.parse(Path(args.data).read_bytes()).getroot()
        except OSError as exc:
            print(f"shep send: cannot read {args.data}: {exc.strerror}", file=sys.stderr)
            return 2
        except (ValueError, etree.XMLSyntaxError) as exc:
            print(f"shep send: {args.data} is not an XML document: {exc}", file=sys.stderr)
            return 2
    properties = dict(p.split("=", 1) for p in args.property or [])
    credentials = None
    if args.cert or args.key or args.p12:
        try:
            credentials = client.load_credentials(cert=args.cert, key=args.key, p12=args.p12,
                                                  password=args.key_password)
        except (OSError, ValueError) as exc:
            print(f"shep send: cannot load the signing key: {exc}", file=sys.stderr)
            return 2
    if args.sign_payload:
        if credentials is None or payload is None:
            print("shep send: --sign-payload needs --data and a key (--cert/--key or --p12)", file=sys.stderr)
            return 2
        payload = client.sign_payload(payload, *credentials)
    body = client.build_send_message(
        service_id=args.service, sender_id=args.sender, password=args.password, payload=payload,
        style=args.style, xsi_type=args.xsi_type, message_id=args.message_id,
        correlation_id=args.correlation_id, route_id=args.route_id, properties=properties)
    if credentials is not None:
        body = client.sign_request(body, *credentials)
    base = args.url.rstrip("/")
    url = base + "/" if "/bip-sync" in base else base + "/bip-sync/"
    try:
        status, raw = client.post(url, body, timeout=args.timeout)
    except OSError as exc:
        print(f"shep send: cannot reach {url}: {exc}", file=sys.stderr)
        return 2
    try:
        reply = client.read_reply(status, raw)
    except ValueError as exc:
        print(f"shep send: {exc}", file=sys.stderr)
        sys.stderr.write(raw.decode("utf-8", "replace")[:2000] + "\n")
        return 2
    if args.raw:
        sys.stdout.write(raw.decode("utf-8") + "\n")
    if credentials is not None and reply.ok:
        try:
            signer = _verify_answer(args, url, raw)
        except Exception as exc:  # any failure to verify is reported, never a traceback
            print(f"shep send: the answer's signature does not verify: {exc}", file=sys.stderr)
            return 3
        if not args.raw:
            print(f"signed   {signer}")
    if reply.ok:
        if not args.raw:
            print(f"status   {reply.status_code} {reply.status_message}")
            print(f"session  {reply.session_id}")
            if reply.data is not None:
                print(etree.tostring(reply.data, pretty_print=True, encoding="unicode").rstrip())
        return 0 if reply.status_code == contract.SUCCESS_STATUS else 1
    if not args.raw:
        print(f"fault    {reply.fault.get('errorCode')} ({reply.fault.get('faultcode')}, HTTP {status})")
        print(f"message  {reply.fault.get('errorMessage')}")
        if reply.fault.get("errorData"):
            print(f"data     {reply.fault['errorData']}")
        if reply.fault.get("subError"):
            print(f"cause    {reply.fault['subError'].get('errorCode')}: {reply.fault['subError'].get('errorData')}")
        print(f"session  {reply.session_id}")
    return 1


def _verify_answer(args, url: str, raw: bytes) -> str:
    """A signed request gets a signed answer: check it with the gateway's certificate."""
    from gateway import client
    from gateway.security.certs import load_certificates

    if args.gateway_cert:
        data = Path(args.gateway_cert).read_bytes()
    else:
        data = client.fetch(url.split("/bip-sync", 1)[0] + "/api/certificate")
    return client.verify_reply_signature(raw, load_certificates(data)[0])


def _journal(args):
    from gateway.journal import Journal
    from gateway.store import Store

    settings = _settings(args.config)
    store = Store(_store_url(args, settings))
    store.create_schema()
    return store, Journal(store)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def cmd_journal_show(args) -> int:
    store, journal = _journal(args)
    try:
        records = journal.query(message_id=args.message_id, session_id=args.session_id,
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


def _gateway_certificates(settings: Settings, state_dir: Path) -> list:
    """Every certificate the gateway may have signed checkpoints with: the configured one and the test PKI's."""
    from cryptography import x509

    paths = [settings.gateway.signing_cert] if settings.gateway.signing_cert else []
    paths += sorted((state_dir / "pki").glob("gateway*/cert.pem"))
    return [x509.load_pem_x509_certificate(path.read_bytes()) for path in paths if path.is_file()]


def cmd_journal_verify(args) -> int:
    from gateway import checkpoints, journal_export

    settings = _settings(args.config)
    state_dir = Path(args.state_dir or settings.gateway.state_dir)
    if args.bundle:
        return _verify_bundle(args, settings, state_dir)
    path = Path(args.checkpoints) if args.checkpoints else state_dir / checkpoints.FILE_NAME
    store, journal = _journal(args)
    try:
        result = journal.verify()
        against = None
        if result.ok:
            try:
                trust = checkpoints.TokenTrust(*journal_export.offline_trust(settings, state_dir))
                against = checkpoints.verify(journal, path, _gateway_certificates(settings, state_dir), trust)
            except ValueError as exc:
                print(f"shep journal verify: {exc}", file=sys.stderr)
                return 2
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


def _verify_bundle(args, settings: Settings, state_dir: Path) -> int:
    from gateway import journal_export
    from gateway.security.certs import load_certificates

    try:
        if args.ca:
            given = load_certificates(Path(args.ca).read_bytes())
            anchors = [cert for cert in given if cert.issuer == cert.subject]
            intermediates = [cert for cert in given if cert.issuer != cert.subject]
        else:
            anchors, intermediates = journal_export.offline_trust(settings, state_dir)
        described = journal_export.verify_bundle(Path(args.bundle), anchors, intermediates)
    except journal_export.BundleError as exc:
        print(f"bundle BROKEN: {exc}")
        return 1
    except (OSError, ValueError) as exc:
        print(f"shep journal verify: {exc}", file=sys.stderr)
        return 2
    print(f"bundle OK: records {described['from']}-{described['to']} ({described['records']}), "
          f"{described['checkpoints']} signed checkpoint(s), {len(described['uncovered'])} record(s) signed by the "
          "bundle only")
    return 0


def cmd_journal_export(args) -> int:
    from gateway import checkpoints, journal_export

    settings = _settings(args.config)
    state_dir = Path(args.state_dir or settings.gateway.state_dir)
    path = Path(args.checkpoints) if args.checkpoints else state_dir / checkpoints.FILE_NAME
    store, journal = _journal(args)
    try:
        first, last = journal_export.seq_range(journal, args.first, args.last, args.since, args.until)
        out = Path(args.out or f"journal-{first}-{last}.tar")
        described = journal_export.export(journal, first, last, path, journal_export.gateway_signer(
            settings, state_dir), out, datetime.now(timezone.utc), tuple(_gateway_certificates(settings, state_dir)))
    except (journal_export.BundleError, OSError, ValueError) as exc:
        print(f"shep journal export: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"{out}: records {first}-{last} ({described['records']}), {described['checkpoints']} signed "
          f"checkpoint(s); {len(described['uncovered'])} record(s) no checkpoint signs yet")
    return 0


def _queue(args):
    from gateway.asyncchannel.queue import AsyncQueue

    store, journal = _journal(args)
    return store, AsyncQueue(store, journal)


def cmd_queue_list(args) -> int:
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


def cmd_queue_change(args) -> int:
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
        print(f"shep queue {args.queue_command}: no message {args.message_id} in the queue", file=sys.stderr)
        return 2
    except NotPending as exc:
        print(f"shep queue {args.queue_command}: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"{message.message_id} {message.state} ({message.status_code} {message.status_message})")
    return 0


def _databases(args) -> dict[str, list[str]]:
    """The components this configuration runs, by store URL: the parties share the gateway's store unless
    `[portal]` names its own, as `shep serve` wires them."""
    settings = _settings(args.config)
    url = _store_url(args, settings)
    databases = {url: ["gateway"]}
    if "portal" in settings.endpoints:
        databases.setdefault(settings.endpoints["portal"].get("store_url") or url, []).append("portal")
    if "clinic" in settings.endpoints:
        databases[url].append("clinic")
    return databases


def cmd_db_upgrade(args) -> int:
    from gateway.store import Store, migrations

    for url, components in _databases(args).items():
        store = Store(url)
        try:
            for name in components:
                try:
                    done = migrations.upgrade(store.engine, name)
                except migrations.MigrationError as exc:
                    print(f"shep db upgrade: {exc}", file=sys.stderr)
                    return 2
                if done.stamped:
                    print(f"{name:<8} tables from before migrations, stamped {done.stamped}")
                print(f"{name:<8} {done.before or 'none'} → {done.after}" if done.before != done.after
                      else f"{name:<8} {done.after} (already at head)")
        finally:
            store.close()
    return 0


def cmd_db_current(args) -> int:
    """Read-only: each component's revision; exit 1 when one is not at this version's head."""
    from gateway.store import Store, migrations

    behind = False
    for url, components in _databases(args).items():
        store = Store(url)
        try:
            with store.snapshot() as conn:
                for name in components:
                    try:
                        now = migrations.state(conn, name)
                    except migrations.MigrationError as exc:
                        print(f"shep db current: {exc}", file=sys.stderr)
                        return 2
                    if now.at_head:
                        note = "head"
                    elif not now.known:
                        note = f"unknown to this version, whose head is {now.head}"
                    elif now.predates:
                        note = f"tables from before migrations; shep db upgrade stamps them at {now.baseline}"
                    else:
                        note = f"head is {now.head}: run shep db upgrade"
                    behind = behind or not now.at_head
                    print(f"{name:<8} {now.revision or 'none'} ({note})")
        finally:
            store.close()
    return 1 if behind else 0


def cmd_faults(args) -> int:
    from gateway.faults import catalogue_json, render_markdown

    if args.json:
        print(json.dumps(catalogue_json(), ensure_ascii=False, indent=1))
    else:
        sys.stdout.write(render_markdown())
    return 0


def cmd_hash_password(args) -> int:
    from gateway.passwords import hash_password

    plain = args.password if args.password is not None else getpass.getpass("password: ")
    print(hash_password(plain))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML configuration (default: the shipped gateway/defaults/shep.toml)")
    p.add_argument("--state-dir", help="where the SQLite store lives (default: gateway.state_dir, ./var)")
    p.add_argument("--store", "--store-url", dest="store_url", type=_store_argument,
                   help="the store: postgresql://user@host/db or an SQLAlchemy URL (default: SQLite in --state-dir)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="shep", description="ShEP (ЭҮШ / ШЭП) gateway emulator")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (and the demo provider)")
    _common(serve)
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8080; 0 picks a free one)")
    serve.add_argument("--signing-alg", choices=SIGNING_ALGS,
                       help="the algorithm of the gateway's and the simulated parties' certificates "
                            "(default: gateway.signing_alg, rsa)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_argument("--workers", type=int, default=1,
                       help="processes serving the port (one per core; state is shared through the store)")
    serve.add_argument("--shared-port", action="store_true", help=argparse.SUPPRESS)  # a worker of --workers
    serve.set_defaults(func=cmd_serve)

    send = sub.add_parser("send", help="send one SendMessage and print the answer; exit 1 on a fault")
    send.add_argument("--url", default="http://127.0.0.1:8080", help="gateway base URL or its /bip-sync/ URL")
    send.add_argument("--service", required=True, help="serviceId")
    send.add_argument("--sender", required=True, help="senderId")
    send.add_argument("--password", help="sender password")
    send.add_argument("--data", help="file with the payload XML document")
    send.add_argument("--style", choices=["inline", "typed", "escaped"], default="inline",
                      help="how data carries the payload (contract §6)")
    send.add_argument("--xsi-type", help="{namespace}Type for --style typed (default: the root element's name)")
    send.add_argument("--message-id")
    send.add_argument("--correlation-id")
    send.add_argument("--route-id")
    send.add_argument("--property", action="append", metavar="KEY=VALUE")
    send.add_argument("--timeout", type=float, default=60)
    send.add_argument("--raw", action="store_true", help="print the answer's XML as received")
    send.add_argument("--cert", help="signing certificate (PEM); with --key, signs the request (WS-Security)")
    send.add_argument("--key", help="signing private key (PEM)")
    send.add_argument("--p12", help="PKCS#12 container with the key and certificate, instead of --cert/--key")
    send.add_argument("--key-password", help="password of the .p12 (or of an encrypted --key)")
    send.add_argument("--sign-payload", action="store_true",
                      help="also put an enveloped EDS on the --data document (contract §9)")
    send.add_argument("--gateway-cert", help="the gateway's certificate, to verify its signed answer "
                                             "(default: fetched from <url>/api/certificate)")
    send.set_defaults(func=cmd_send)

    journal = sub.add_parser("journal", help="read or verify the hash-chained journal")
    jsub = journal.add_subparsers(dest="journal_command", required=True)
    show = jsub.add_parser("show", help="records by messageId, sessionId, serviceId, sender, time")
    _common(show)
    show.add_argument("--message-id")
    show.add_argument("--session-id")
    show.add_argument("--service-id")
    show.add_argument("--sender")
    show.add_argument("--since", type=_moment, help="ISO-8601 date-time (inclusive)")
    show.add_argument("--until", type=_moment, help="ISO-8601 date-time (exclusive)")
    show.add_argument("--limit", type=int, default=100)
    show.add_argument("--body", action="store_true", help="include the message bytes")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_journal_show)
    verify = jsub.add_parser("verify", help="check the hash chain and the gateway's signed checkpoints; exit 1 "
                                            "naming the first broken record")
    _common(verify)
    verify.add_argument("--checkpoints", help="the checkpoint file (default: <state_dir>/journal-checkpoints.jsonl)")
    verify.add_argument("--bundle", help="check an exported bundle (tar file or its unpacked folder) instead")
    verify.add_argument("--ca", help="with --bundle: the CA certificates (PEM) to trust, instead of the gateway's")
    verify.set_defaults(func=cmd_journal_verify)
    export = jsub.add_parser("export", help="write records, their checkpoints and certificates as a signed "
                                            "bundle that openssl verifies (docs/security.md)")
    _common(export)
    export.add_argument("--from", dest="first", type=int, help="the first seq (default: the first record)")
    export.add_argument("--to", dest="last", type=int, help="the last seq (default: the last record)")
    export.add_argument("--since", type=_moment, help="only records started at or after (ISO-8601)")
    export.add_argument("--until", type=_moment, help="only records started before (ISO-8601)")
    export.add_argument("--checkpoints", help="the checkpoint file (default: <state_dir>/journal-checkpoints.jsonl)")
    export.add_argument("--out", help="the bundle's tar file (default: journal-<from>-<to>.tar)")
    export.set_defaults(func=cmd_journal_export)

    queue = sub.add_parser("queue", help="list the AsyncChannel queue; stop or retry a message's delivery")
    qsub = queue.add_subparsers(dest="queue_command", required=True)
    qlist = qsub.add_parser("list", help="queued messages, oldest first")
    _common(qlist)
    # Checked by the command: importing the queue (SQLAlchemy) here would slow every shep command.
    qlist.add_argument("--state", help="ON_DELIVERY, DELIVERED, NOT_DELIVERED or DELIVERY_STOPPED")
    qlist.add_argument("--service-id")
    qlist.add_argument("--participant", help="sender or recipient")
    qlist.add_argument("--limit", type=int, default=100)
    qlist.add_argument("--json", action="store_true")
    qlist.set_defaults(func=cmd_queue_list)
    stop = qsub.add_parser("stop", help="ON_DELIVERY → DELIVERY_STOPPED")
    _common(stop)
    stop.add_argument("message_id", metavar="MESSAGE_ID")
    stop.add_argument("--reason", default="stopped with shep queue stop")
    stop.set_defaults(func=cmd_queue_change)
    retry = qsub.add_parser("retry", help="back to ON_DELIVERY now, attempts reset (any state but DELIVERED)")
    _common(retry)
    retry.add_argument("message_id", metavar="MESSAGE_ID")
    retry.set_defaults(func=cmd_queue_change)

    db = sub.add_parser("db", help="the store's schema: apply migrations, or show where each component stands")
    dsub = db.add_subparsers(dest="db_command", required=True)
    upgrade = dsub.add_parser("upgrade", help="apply pending migrations (shep serve also does at start)")
    _common(upgrade)
    upgrade.set_defaults(func=cmd_db_upgrade)
    current = dsub.add_parser("current", help="each component's revision; exit 1 when one is not at head")
    _common(current)
    current.set_defaults(func=cmd_db_current)

    faults = sub.add_parser("faults", help="print the fault catalogue (markdown, or --json)")
    faults.add_argument("--json", action="store_true")
    faults.set_defaults(func=cmd_faults)

    from simulators.pki.cli import register as register_pki

    register_pki(sub, _common)

    demo = sub.add_parser("demo", help="walk both diagrams of the regulation over HTTP and print a trace; "
                                       "exit 1 when a step behaves unexpectedly")
    demo.add_argument("--url", default="http://127.0.0.1:8080",
                      help="a running server (default http://127.0.0.1:8080); none there: one is started on port 0")
    demo.add_argument("--state-dir", help="the running server's state dir, to issue a PKI certificate for "
                                          "condition 2 (otherwise a self-signed one is used)")
    demo.add_argument("--store", type=_store_argument,
                      help="the store of the server it starts when none answers at --url "
                           "(default: SQLite in that server's temporary state dir)")
    demo.add_argument("--alg", choices=SIGNING_ALGS, default="rsa",
                      help="the signature algorithm of every party (a server it starts itself signs with it; "
                           "a running one must already)")
    demo.add_argument("--operator-token", help="bearer token of an [operators.*] entry, when the server has "
                                               "operators configured (default: $SHEP_OPERATOR_TOKEN)")
    demo.add_argument("--verbose", "-v", action="store_true",
                      help="show every step's gateway hops as a timeline (always shown for a failing step)")
    demo.add_argument("--json", action="store_true",
                      help="print one JSON document on stdout (every step, its verdict and hops) instead of text")
    demo.set_defaults(func=lambda args: __import__("gateway.demo", fromlist=["cmd_demo"]).cmd_demo(args))

    hashpw = sub.add_parser("hash-password", help="hash a participant password for the config file")
    hashpw.add_argument("password", nargs="?", help="the password (asked for when omitted)")
    hashpw.set_defaults(func=cmd_hash_password)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"shep: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
