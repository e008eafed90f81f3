"""`shep config init | check`: a starting configuration that works where it is written, and every problem of one
with its file, line and key."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from gateway.cli.common import CommandError
from gateway.config import ConfigError, GatewaySettings, default_config_path, load_config

_HEADER = """\
# Written by `shep config init` (shep-emulator {version}): the shipped configuration, every [gateway] key
# listed (the ones not set are commented out, at their defaults). Relative paths are relative to this file;
# `package:` ones name files shipped with shep-emulator. Check your changes with `shep config check {name}`.

"""


# Examples for the keys unset by default.
_UNSET = {"signing_key": '"keys/gateway.key.pem"', "signing_cert": '"keys/gateway.cert.pem"'}


def _toml_value(value) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return None  # unset (None): nothing to show


def starting_config(name: str) -> str:
    """The shipped shep.toml, its [gateway] table completed with every other key at its default (commented)."""
    from importlib.metadata import version

    text = default_config_path().read_text("utf-8")
    written = {line.split("=", 1)[0].strip().lstrip("# ") for line in text.splitlines() if "=" in line}
    rest = []
    for field in dataclasses.fields(GatewaySettings):
        shown = _toml_value(getattr(GatewaySettings(), field.name)) or _UNSET.get(field.name)
        if field.name not in written and shown is not None:
            rest.append(f"# {field.name} = {shown}")
    # After the last line of [gateway]: before the comments that open the next table.
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == "[gateway]")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("["))
    while end > start and (lines[end - 1].startswith("#") or not lines[end - 1].strip()):
        end -= 1
    block = ["# Every other key (docs/configuration.md), at its default:\n", *(line + "\n" for line in rest)]
    return _HEADER.format(version=version("shep-emulator"), name=name) + "".join(lines[:end] + block + lines[end:])


def cmd_init(args) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        raise CommandError(f"{path} exists; --force replaces it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(starting_config(str(path)), "utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from None
    print(f"wrote {path}; `shep serve --config {path}` uses it", file=sys.stderr)
    return 0


def problems(path: Path) -> list[ConfigError]:
    """Every problem of the file: the gateway's keys, then the parties' tables `shep serve` would refuse."""
    from gateway.parties import problems as party_problems

    try:
        settings = load_config(path)
    except ConfigError as error:
        return list(error.problems)
    return party_problems(settings)


def cmd_check(args) -> int:
    path = Path(args.path) if args.path else default_config_path()
    found = problems(path)
    for problem in found:
        print(problem)
    if found:
        print(f"{len(found)} problem(s) in {path}", file=sys.stderr)
        return 1
    settings = load_config(path)
    print(f"{path}: OK ({len(settings.registry.participants)} participant(s), "
          f"{len(settings.registry.services)} service(s))", file=sys.stderr)
    return 0


def register(sub) -> None:
    config = sub.add_parser("config", help="write a starting configuration, or check one")
    csub = config.add_subparsers(dest="config_command", required=True)
    init = csub.add_parser("init", help="write a complete, commented configuration whose paths work where it is "
                                        "written")
    init.add_argument("path", metavar="PATH", nargs="?", default="shep.toml", help="where (default ./shep.toml)")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.set_defaults(func=cmd_init)
    check = csub.add_parser("check", help="print every problem as file:line: key: message; exit 1 when there is one")
    check.add_argument("path", metavar="PATH", nargs="?", help="the file (default: the shipped one)")
    check.set_defaults(func=cmd_check)
