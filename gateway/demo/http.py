"""How `shep demo` reaches the server: its HTTP calls, and a `shep serve --port 0` of its own when nothing
answers at --url."""
from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HTTP_TIMEOUT = 30.0
START_TIMEOUT = 60.0


class Http:
    def __init__(self, base: str, operator_token: str | None = None):
        self.base = base.rstrip("/")
        # The journal API's bearer token, when the server has [operators.*] configured.
        self.operator_token = operator_token

    def call(self, method: str, path: str, body=None, token: str | None = None) -> tuple[int, object, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
                status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            status, raw, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
        parsed = None
        if "json" in ctype:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
        return status, parsed, raw

    def journal(self, **query) -> list[dict]:
        from urllib.parse import urlencode

        status, data, _ = self.call("GET", "/api/journal?" + urlencode({"limit": 1000, **query}),
                                    token=self.operator_token)
        if status in (401, 403):
            error = data.get("error") if isinstance(data, dict) else status
            raise RuntimeError(f"GET /api/journal answered {status} ({error}): give an operator's token with "
                               "--operator-token or SHEP_OPERATOR_TOKEN")
        return data["records"] if status == 200 and isinstance(data, dict) else []


class LocalServer:
    """`shep serve --port 0` in a subprocess with a temporary state dir (and `store_url`'s store when given)."""

    def __init__(self, store_url: str | None = None, alg: str = "rsa"):
        self.state_dir = Path(tempfile.mkdtemp(prefix="shep-demo-"))
        shep = Path(sys.executable).with_name("shep")
        cmd = [str(shep)] if shep.exists() else [sys.executable, "-m", "gateway.cli"]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        store = ["--store", store_url] if store_url else []
        self.proc = subprocess.Popen([*cmd, "serve", "--port", "0", "--host", "127.0.0.1", "--state-dir",
                                      str(self.state_dir), *store, "--signing-alg", alg, "--log-level", "WARNING"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if found:
                return found.group(1)
        raise RuntimeError("shep serve did not start listening in time")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.state_dir, ignore_errors=True)


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=2) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def server_alg(http: Http) -> str:
    from cryptography import x509

    from gateway.security.gost.x509 import certificate_alg

    status, _, raw = http.call("GET", "/api/certificate")
    if status != 200:
        raise RuntimeError(f"GET /api/certificate answered {status}")
    return certificate_alg(x509.load_pem_x509_certificate(raw))
