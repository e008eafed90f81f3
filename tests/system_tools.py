"""The system tools (Debian packages) some tests use, and the one way a test says it needs one.

tests/system-packages lists them. A test that truly needs one calls `require` (or skips on `present`, with `reason`):
without the tool it skips with one line, "needs TOOL (Debian package PACKAGE)", and the closing summary (conftest's
`pytest_terminal_summary`, below) groups those skips and says how to get them (`make test-deps`). Where the package
index has an independent checker, the oracle modules (schema_oracle, xmlsec_oracle, pdf_text) fall back to it
instead of skipping, and `used` records which one ran, for the same summary.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGES_FILE = Path(__file__).with_name("system-packages")
# The one shape of a skip reason for a missing system tool.
REASON = re.compile(r"needs (?P<what>.+?) \(Debian package (?P<package>[a-z0-9][a-z0-9.+-]*)\)")
# Where `summary` also writes what it found, as JSON, for .ci/bare-run.py (which accepts no other skip).
REPORT_VARIABLE = "SHEP_TEST_SKIP_REPORT"


@dataclass(frozen=True)
class Tool:
    name: str
    package: str
    probe: str  # a command on PATH, or a file (glob) the package installs
    what: str

    def path(self) -> str | None:
        if "/" in self.probe:
            found = sorted(glob.glob(self.probe))
            return found[0] if found else None
        return shutil.which(self.probe)

    def reason(self) -> str:
        return f"needs {self.what} (Debian package {self.package})"


@cache
def tools() -> dict[str, Tool]:
    found = {}
    for line in PACKAGES_FILE.read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, package, probe, *what = line.split()
            found[name] = Tool(name, package, probe, " ".join(what) or name)
    return found


def reason(name: str) -> str:
    return tools()[name].reason()


def present(name: str) -> bool:
    return tools()[name].path() is not None


def require(name: str) -> str:
    """The tool's command or file; the test skips, naming the Debian package, when it is not installed."""
    path = tools()[name].path()
    if path is None:
        pytest.skip(reason(name))
    return path


_USED: dict[str, set[str]] = {}


def used(check: str, oracle: str) -> None:
    """Record that `oracle` ran as the independent checker of `check` (shown in the closing summary)."""
    _USED.setdefault(check, set()).add(oracle)


def summary(terminalreporter) -> None:
    """Which independent checkers ran, and the skips for want of a system tool with how to install it."""
    write = terminalreporter.write_line
    if _USED:
        terminalreporter.section("independent checkers", sep="-")
        for check, oracles in sorted(_USED.items()):
            write(f"{check}: {', '.join(sorted(oracles))}")
    known = {tool.package for tool in tools().values()}
    named: Counter[str] = Counter()
    other: list[str] = []
    for report in terminalreporter.stats.get("skipped", []):
        text = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        match = REASON.search(text)
        if match and match.group("package") in known:
            named[match.group(0)] += 1
        else:
            other.append(f"{report.nodeid}: {text}")
    if os.environ.get(REPORT_VARIABLE):
        outcomes = {key: len(value) for key, value in terminalreporter.stats.items() if key}
        Path(os.environ[REPORT_VARIABLE]).write_text(json.dumps(
            {"outcomes": outcomes, "named_skips": named, "other_skips": other,
             "checkers": {check: sorted(oracles) for check, oracles in _USED.items()}}, indent=1), "utf-8")
    if not named:
        return
    terminalreporter.section(f"skipped {sum(named.values())} test(s) for want of system tools", sep="-")
    for text, count in named.most_common():
        write(f"{count:4d}  {text}")
    packages = " ".join(sorted({REASON.search(text).group("package") for text in named}))
    write(f"`make test-deps` installs them (as root; apt-get install {packages})")
