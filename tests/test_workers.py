"""`shep serve --workers 2`: two processes on one port (SO_REUSEPORT), sharing all state through the store."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from tests.store_under_test import StoreUnderTest

ROOT = Path(__file__).resolve().parent.parent
SHEP = ROOT / ".venv" / "bin" / "shep"
START_TIMEOUT = 60


def _start(store: StoreUnderTest) -> tuple[subprocess.Popen, str, list[str]]:
    process = subprocess.Popen([str(SHEP), "serve", "--workers", "2", "--port", "0", *store.cli_args,
                                "--log-level", "WARNING"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def read():
        for line in process.stdout:
            lines.append(line)
            if line.startswith("  workers"):
                ready.set()
    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(START_TIMEOUT):
        process.kill()
        raise AssertionError("the workers did not start:\n" + "".join(lines))
    base = re.search(r"listening on (http://127\.0\.0\.1:\d+)", "".join(lines)).group(1)
    return process, base, lines


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_two_workers_share_the_port_and_the_state(tested_store):
    process, base, lines = _start(tested_store)
    try:
        pids = {_get(f"{base}/health")["pid"] for _ in range(40)}
        assert len(pids) == 2, "the kernel should spread 40 connections over both workers"
        # Both diagrams of the regulation across both workers: logins, queues and sessions live in the store.
        demo = subprocess.run([str(SHEP), "demo", "--url", base], capture_output=True, text=True, timeout=120)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-2000:]
        assert "17/17 steps OK" in demo.stdout
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, "".join(lines)
        assert time.monotonic() - started < 30
    finally:
        if process.poll() is None:
            process.kill()
    # "--" ends pgrep's options: the pattern itself starts with "--".
    assert not subprocess.run(["pgrep", "-f", "--", f"--state-dir {tested_store.state_dir}"],
                              capture_output=True).stdout
    verify = subprocess.run([str(SHEP), "journal", "verify", *tested_store.cli_args],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "chain intact" in verify.stdout
