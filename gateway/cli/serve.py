"""`shep serve`: the gateway and the parties of the e-service in one process (or `--workers N` processes).

A person reads stderr: a short banner (the URLs first) or one line saying why the server could not start, exit
status 2. The logs go to stdout or `--log-file`, as JSON lines or text; start-up lines are held until the banner
is out.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading

from gateway.cli import common
from gateway.config import SIGNING_ALGS, ConfigError

log = logging.getLogger("shep.cli")

# The banner's last line: `--workers` reads each worker's banner up to it.
_LAST = "  logs"


def _urls(settings) -> tuple[tuple[str, str], ...]:
    return (("WSDL", "/bip-sync/?wsdl"), ("SyncChannel", "/bip-sync/"), ("WS-Security", "/bip-sync-wss-gost/"),
            ("AsyncChannel", "/bip-async/"), ("faults", "/api/faults"), ("journal", "/api/journal"),
            ("certificate", "/api/certificate"), ("PKI OCSP", "/pki/ocsp"), ("health", "/health"),
            ("metrics", "/metrics"), ("demo provider", "/demo/echo"),
            *((("portal", "/portal/"),) if "portal" in settings.endpoints else ()),
            *((("clinic АЖО", "/clinic/api/"),) if "clinic" in settings.endpoints else ()),
            ("ЖТ ММБ", "/sim/gbdfl"))


def banner(base: str, settings, found, args) -> str:
    from importlib.metadata import version

    lines = [f"shep-emulator {version('shep-emulator')} listening on {base}"]
    lines += [f"  {label:<14} {base}{path}" for label, path in _urls(settings)]
    lines.append(f"  {'config':<14} {settings.source}")
    lines.append(f"  {'state dir':<14} {found.path} (from {found.source})")
    where = args.log_file or "stdout"
    lines.append(f"{_LAST:<16} {args.log_format} to {where}, level {_level(args)}")
    return "\n".join(lines) + "\n"


def _level(args) -> str:
    return "DEBUG" if args.verbose else args.log_level


def prepare_state_dir(found) -> None:
    """The state dir made (0700) if missing, and usable: else one line saying what is wrong with it."""
    path = found.path
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise common.CommandError(f"state dir {path} (from {found.source}) is not a directory") from None
    except OSError as exc:
        raise common.CommandError(f"cannot create the state dir {path} (from {found.source}): "
                                  f"{exc.strerror}") from None
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise common.CommandError(f"state dir {path} (from {found.source}) is not writable by this user")


def startup_problem(exc: BaseException, store_url: str | None) -> str:
    """One line for what stopped the start: a port, a file of the state dir or PKI, the store."""
    from sqlalchemy.exc import SQLAlchemyError
    from twisted.internet.error import CannotListenError

    from simulators.pki.ca import BrokenPKI, NotInitialised

    if isinstance(exc, CannotListenError):
        reason = getattr(exc.socketError, "strerror", None) or exc.socketError
        return f"cannot listen on {exc.interface or '*'}:{exc.port}: {reason}"
    if isinstance(exc, SQLAlchemyError):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return f"cannot use the store{' ' + common.shown_url(store_url) if store_url else ''}: {reason}"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    if isinstance(exc, NotInitialised | BrokenPKI):
        return str(exc)
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"cannot start: {type(exc).__name__}: {first} (--verbose logs the traceback)"


def cmd_serve(args) -> int:
    if args.workers > 1:
        return _serve_workers(args)
    from twisted.internet import defer, reactor

    from gateway import logs
    from gateway.app import GatewayApp
    from gateway.store import sqlite_url

    logs.configure(_level(args), args.log_format, args.log_file, hold=True)
    url = None
    try:
        settings = common.settings(args)
        if args.signing_alg:
            settings = dataclasses.replace(settings, gateway=dataclasses.replace(settings.gateway,
                                                                                 signing_alg=args.signing_alg))
        found = common.state(args, announce=False)
        prepare_state_dir(found)
        url = args.store_url or settings.gateway.store_url or sqlite_url(found.path)
        app = GatewayApp(settings, reactor=reactor, state_dir=found.path, store_url=url)
        try:
            app.listen(port=args.port, host=args.host, shared=args.shared_port)
        except BaseException:
            app.store.close()
            raise
    except (ConfigError, common.CommandError):
        logs.release()
        raise
    except Exception as exc:  # whatever stops the start is one line, never a traceback
        log.debug("start-up failed", exc_info=True)
        logs.release()
        raise common.CommandError(startup_problem(exc, url)) from None
    reactor.addSystemEventTrigger("before", "shutdown", lambda: defer.Deferred.fromCoroutine(app.stop()))
    sys.stderr.write(banner(app.base_url, settings, found, args))
    sys.stderr.flush()
    logs.release()
    # SIGTERM and Ctrl-C both stop the reactor, which runs app.stop() before exiting.
    reactor.run()
    return 0


def _serve_workers(args) -> int:
    """`--workers N`: N processes, each with its own reactor, bound to one port with SO_REUSEPORT.

    The first worker starts alone (it initialises the PKI and issues the parties' certificates); the
    others join once it listens. State is in the store, so any worker can answer any request.
    """
    import socket
    import subprocess

    settings = common.settings(args)
    host = args.host or settings.gateway.host
    # Holding the port (bound, not listening) picks it when --port 0 and keeps it until the workers listen.
    holder = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    # SO_REUSEADDR as Twisted sets it: a restart must not wait for the last run's TIME_WAIT connections.
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    port = settings.gateway.port if args.port is None else args.port
    try:
        holder.bind((host, port))
    except OSError as exc:
        raise common.CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # The workers find the same state dir: the parent's, passed on explicitly.
    command = [sys.executable, "-m", "gateway.cli", "serve", "--shared-port", "--host", host,
               "--port", str(holder.getsockname()[1]), "--log-level", args.log_level,
               "--log-format", args.log_format, "--state-dir", str(common.state(args, announce=False).path)]
    for flag, value in (("--config", args.config), ("--store-url", args.store_url),
                        ("--signing-alg", args.signing_alg), ("--log-file", args.log_file)):
        if value:
            command += [flag, value]
    if args.verbose:
        command.append("--verbose")
    workers: list[subprocess.Popen] = []

    def stop(signum, frame):
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start() -> subprocess.Popen:
        worker = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        workers.append(worker)
        seen = []
        for line in worker.stderr:  # its banner, shown for the first worker only
            seen.append(line)
            if line.startswith(_LAST):
                break
        else:  # it stopped before serving: say why
            sys.stderr.writelines(line for line in seen if not line.startswith("  "))
            return worker
        if worker is workers[0]:
            sys.stderr.writelines(seen)
        # Whatever else it has to say, a person reads too (and its pipe never fills).
        threading.Thread(target=lambda: sys.stderr.writelines(worker.stderr), daemon=True).start()
        return worker

    for _ in range(args.workers):
        if start().poll() is not None:
            stop(None, None)
            return workers[-1].wait() or 2
    holder.close()
    print(f"  workers        {args.workers} (pids {', '.join(str(w.pid) for w in workers)}; parent {os.getpid()})",
          file=sys.stderr, flush=True)
    return max(worker.wait() for worker in workers)


def register(sub) -> None:
    serve = sub.add_parser("serve", help="run the gateway (and the demo provider)")
    common.add_common(serve)
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8080; 0 picks a free one)")
    serve.add_argument("--signing-alg", choices=SIGNING_ALGS,
                       help="the algorithm of the gateway's and the simulated parties' certificates "
                            "(default: gateway.signing_alg, rsa)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_argument("--log-format", default="json", choices=["json", "text"],
                       help="the logs as JSON lines (default) or text lines")
    serve.add_argument("--log-file", help="append the logs to this file (default: stdout)")
    serve.add_argument("--verbose", "-v", action="store_true",
                       help="log at DEBUG (the parties' certificates issued at the first start among others)")
    serve.add_argument("--workers", type=int, default=1,
                       help="processes serving the port (one per core; state is shared through the store)")
    serve.add_argument("--shared-port", action="store_true", help=argparse.SUPPRESS)  # a worker of --workers
    serve.set_defaults(func=cmd_serve)
