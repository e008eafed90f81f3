"""`shep faults` and `shep hash-password`: the fault catalogue, and password hashes for the config file."""
from __future__ import annotations

import getpass
import json
import sys

from gateway.cli.common import CommandError


def cmd_faults(args) -> int:
    from gateway.faults import catalogue_json, render_markdown

    if args.json:
        print(json.dumps(catalogue_json(), ensure_ascii=False, indent=1))
    else:
        sys.stdout.write(render_markdown())
    return 0


def read_password(stdin=None) -> str:
    """From a prompt, asked twice, on a terminal; else the first line of stdin. Never from an argument: the
    shell's history and `ps` would show it."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        plain = getpass.getpass("password: ")
        if getpass.getpass("again: ") != plain:
            raise CommandError("the two passwords differ")
    else:
        plain = stdin.readline().removesuffix("\n").removesuffix("\r")
    if not plain:
        raise CommandError("empty password")
    return plain


def cmd_hash_password(args) -> int:
    from gateway.passwords import hash_password

    print(hash_password(read_password()))
    return 0


def register(sub) -> None:
    faults = sub.add_parser("faults", help="print the fault catalogue (markdown, or --json)")
    faults.add_argument("--json", action="store_true")
    faults.set_defaults(func=cmd_faults)

    hashpw = sub.add_parser("hash-password", help="hash a participant's or operator's password for the config file; "
                                                  "asked for on a terminal (twice), else read as one line of stdin")
    hashpw.set_defaults(func=cmd_hash_password)
