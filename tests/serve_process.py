"""`shep` as a subprocess for the tests that need the real command: one-shot runs and a background server."""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SHEP = Path(sys.executable).with_name("shep")
COMMAND_TIMEOUT = 60
STOP_TIMEOUT = 10


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}


def shep(*args: str, cwd: Path, timeout: float = COMMAND_TIMEOUT, env: dict[str, str] | None = None,
         input: str | None = None) -> subprocess.CompletedProcess:
    """`shep <args>` to completion, bounded in time; `env` replaces the environment's variables it names."""
    try:
        return subprocess.run([str(SHEP), *args], cwd=cwd, capture_output=True, text=True, encoding="utf-8",
                              timeout=timeout, env={**subprocess_env(), **(env or {})}, input=input)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`shep {' '.join(args)}` did not finish within {timeout} s; "
                    f"stdout={exc.stdout!r} stderr={exc.stderr!r}")


class ServeProcess:
    """`shep serve` in the background; stderr (the banner, errors) read by a thread, stdout (JSON logs) appended to
    a file."""

    def __init__(self, *args: str, cwd: Path, log: Path, env: dict[str, str] | None = None):
        self.log_path = log
        self._log = open(log, "ab")
        self.proc = subprocess.Popen([str(SHEP), "serve", *args], cwd=cwd, stderr=subprocess.PIPE,
                                     stdout=self._log, text=True, encoding="utf-8",
                                     env={**subprocess_env(), **(env or {})})
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.said: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_listening(self, timeout: float) -> str:
        """The base URL from the `listening on …` line; fails the test if it does not come in time."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail(f"shep serve printed no listening line within {timeout} s; {self.output()}")
            if line is None:
                self.proc.wait(timeout=STOP_TIMEOUT)
                pytest.fail(f"shep serve exited with {self.proc.returncode} before listening; {self.output()}")
            self.said.append(line)
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if found:
                return found.group(1)

    def ensure_running(self, when: str) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"shep serve exited with {self.proc.returncode} {when}; {self.output()}")

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT)

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"shep serve did not stop within {timeout} s of SIGTERM; {self.output()}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
        self._log.close()

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text("utf-8", "replace")

    def output(self) -> str:
        while True:  # whatever the reader thread has collected so far
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.said.append(line)
        return f"stderr={''.join(self.said)[-3000:]!r} log={self.log_text()[-6000:]!r}"


@contextmanager
def shipped_server(work: Path, *args: str) -> Iterator[str]:
    """A `shep serve` of the shipped configuration (or `args`' --config) on a port of its own, its state in
    work/var: its base URL, stopped at the end."""
    server = ServeProcess("--port", "0", "--state-dir", str(work / "var"), *args, cwd=work, log=work / "serve.log")
    try:
        yield server.wait_listening(60)
    finally:
        server.terminate()
        server.close()
