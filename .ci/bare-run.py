#!/usr/bin/env python3
"""`make test` as on a fresh machine with only python3 and make, proven on this one.

A new virtualenv in a temporary folder, a PATH of links to every command on this PATH except those of the Debian
packages in tests/system-packages (so xmllint, xmlsec1, openssl, pdftotext, haproxy and PostgreSQL's are not
found), the GOST provider hidden from the gateway (SHEP_GOST_PROVIDER=off) and no PostgreSQL
(SHEP_TEST_POSTGRES_URL unset). It fails unless `make test` exits 0, every skip names one of those packages
(tests/system_tools.py writes what it saw to SHEP_TEST_SKIP_REPORT), and no checker ran through a hidden command.

Standard library only: it runs before the virtualenv exists. Usage: python3 .ci/bare-run.py [pytest args...]
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "tests" / "system-packages"
# What PostgreSQL puts on PATH comes from postgresql-common and -client-common, not the `postgresql` package.
POSTGRES_PREFIXES = ("pg_", "psql", "postgres", "createdb", "dropdb", "createuser", "dropuser")


def listed() -> list[tuple[str, str]]:
    """(package, probe) for each line of tests/system-packages."""
    rows = []
    for line in PACKAGES.read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            _, package, probe, *_ = line.split()
            rows.append((package, probe))
    return rows


def hidden_commands() -> set[str]:
    names = {probe for _, probe in listed() if "/" not in probe}
    for package, _ in listed() if shutil.which("dpkg") else ():
        files = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True).stdout.splitlines()
        names |= {Path(path).name for path in files if Path(path).parent.name in ("bin", "sbin")}
    return names


def bare_path(directory: Path) -> str:
    """A folder of links to every command on PATH but the hidden ones, first one of a name wins."""
    hidden = hidden_commands()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            name = entry.name
            if name in hidden or name.startswith(POSTGRES_PREFIXES) or (directory / name).exists():
                continue
            if os.access(entry.path, os.X_OK) and not entry.is_dir():
                (directory / name).symlink_to(entry.path)
    return str(directory)


def main(pytest_args: list[str]) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="shep-bare-") as work:
        work = Path(work)
        (work / "bin").mkdir()
        report = work / "report.json"
        env = {key: value for key, value in os.environ.items()
               if key not in ("SHEP_TEST_POSTGRES_URL", "SHEP_TEST_HARNESS_STORE")}
        env.update(PATH=bare_path(work / "bin"), SHEP_GOST_PROVIDER="off", SHEP_TEST_SKIP_REPORT=str(report))
        still = [probe for _, probe in listed() if "/" not in probe
                 and subprocess.run(["sh", "-c", f"command -v {probe}"], env=env, capture_output=True).returncode == 0]
        if still:
            print(f"bare run FAILED: still on the bare PATH: {still}", file=sys.stderr)
            return 1
        args = " ".join(pytest_args)
        print(f"== make test in a fresh virtualenv, without the system tools of {PACKAGES.relative_to(ROOT)} ==",
              flush=True)
        done = subprocess.run(["make", f"VENV={work / 'venv'}", "test", f"ARGS={args}"], cwd=ROOT, env=env)
        seen = json.loads(report.read_text("utf-8")) if report.exists() else None
    elapsed = time.monotonic() - started
    problems = []
    if done.returncode != 0:
        problems.append(f"make test exited {done.returncode}")
    if seen is None:
        problems.append("no skip report was written (did the suite run?)")
    else:
        if not seen["outcomes"].get("passed"):
            problems.append("no test passed")
        # Besides the system tools, one thing a test may need that CI (root) lacks: an unprivileged user.
        problems += [f"a skip that names no system package: {skip}" for skip in seen["other_skips"]
                     if "needs a user other than root" not in skip]
        problems += [f"{check} ran through a hidden command: {oracle}" for check, oracles in seen["checkers"].items()
                     for oracle in oracles if " command" in oracle]
        print(f"\n== bare run: {seen['outcomes']} in {elapsed:.0f} s ==")
        for reason, count in sorted(seen["named_skips"].items(), key=lambda item: -item[1]):
            print(f"{count:5d} skipped: {reason}")
        for check, oracles in sorted(seen["checkers"].items()):
            print(f"      {check}: {', '.join(oracles)}")
    for problem in problems:
        print(f"bare run FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
