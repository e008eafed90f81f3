"""`shep`: serve, send, journal, queue, db, config, pki, demo, conformance, faults, hash-password; one module per
command group."""
from __future__ import annotations

import argparse
import signal
import sys
from importlib.metadata import PackageNotFoundError, version

from gateway.cli import common, conformance, config, db, journal, queue, send, serve, tools
from gateway.config import SIGNING_ALGS, ConfigError


def _version() -> str:
    try:
        return version("shep-emulator")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _demo(sub) -> None:
    demo = sub.add_parser("demo", help="walk both diagrams of the regulation over HTTP and print a trace; "
                                       "exit 1 when a step behaves unexpectedly")
    demo.add_argument("--url", default="http://127.0.0.1:8080",
                      help="a running server (default http://127.0.0.1:8080); none there: one is started on port 0")
    demo.add_argument("--state-dir", help="the running server's state dir (else SHEP_STATE_DIR), to issue a PKI "
                                          "certificate for condition 2 (otherwise a self-signed one is used)")
    demo.add_argument("--store", type=common.store_argument,
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


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="shep", description="ShEP (ЭҮШ / ШЭП) gateway emulator")
    top.add_argument("--version", action="version", version=f"shep-emulator {_version()}")
    sub = top.add_subparsers(dest="command", required=True)
    serve.register(sub)
    send.register(sub)
    journal.register(sub)
    queue.register(sub)
    db.register(sub)
    config.register(sub)
    tools.register(sub)
    conformance.register(sub)

    from simulators.pki.cli import register as register_pki

    register_pki(sub, common.add_common)
    _demo(sub)
    return top


def _command(args) -> str:
    """`shep journal verify`, `shep pki trust add`: the words the user typed, for error lines."""
    words = [args.command]
    for name in (f"{args.command}_command", "trust_command"):
        if getattr(args, name, None):
            words.append(getattr(args, name))
    return "shep " + " ".join(words)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        return args.func(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{_command(args)}: configuration error: {problem}", file=sys.stderr)
        return 2
    except common.CommandError as exc:
        print(f"{_command(args)}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if "sqlalchemy" in sys.modules:  # a store that cannot be reached or read: one line, not a traceback
            from sqlalchemy.exc import SQLAlchemyError

            if isinstance(exc, SQLAlchemyError):
                print(f"{_command(args)}: {serve.startup_problem(exc, None)}", file=sys.stderr)
                return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
