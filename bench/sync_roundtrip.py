"""SendMessage round trips through the gateway to the demo provider, and /health latency under that load.

    .venv/bin/python bench/sync_roundtrip.py [--requests 2000] [--clients 8] [--seconds 60] [--signed]

Starts `shep serve` on a free loopback port with a throw-away state directory, sends at most
--requests messages from --clients threads (persistent HTTP/1.1 connections), stops after
--seconds whatever happens, and prints throughput and latency percentiles. Every message goes
through the whole pipeline twice (request and answer hop), the journal (4 records with bytes) and
the demo provider behind the same process. With --signed, each request is WS-Security signed
(RSA) and goes to /bip-sync-wss-gost/: the gateway verifies it (certificate chain, OCSP with its
cache, BIN binding), signs the forward and signs the answer.
"""
from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.client import build_send_message, load_credentials, sign_request  # noqa: E402
from lxml import etree  # noqa: E402

ECHO_NS = "urn:shep-emulator:demo:echo"


def payload() -> etree._Element:
    el = etree.Element(f"{{{ECHO_NS}}}EchoRequest", nsmap={"echo": ECHO_NS})
    etree.SubElement(el, "text").text = "bench"
    return el


def start_server(state_dir: str) -> tuple[subprocess.Popen, int]:
    shep = ROOT / ".venv" / "bin" / "shep"
    proc = subprocess.Popen([str(shep), "serve", "--port", "0", "--state-dir", state_dir, "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match:
            return proc, int(match.group(1))
    proc.kill()
    raise SystemExit("the server did not start within 30 s")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from the OS's accounting (the load generator's CPU does not count)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def issue_credentials(state_dir: str):
    """An organisation SIGN certificate for demo-consumer (BIN from the default config), from the server's PKI."""
    out = Path(state_dir) / "consumer"
    subprocess.run([str(ROOT / ".venv" / "bin" / "shep"), "pki", "issue", "--state-dir", state_dir,
                    "--kind", "organization", "--alg", "rsa", "--usage", "sign", "--bin", "230540004989",
                    "--out", str(out)], check=True, capture_output=True, timeout=60)
    return load_credentials(cert=str(out / "cert.pem"), key=str(out / "key.pem"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--signed", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as state_dir:
        proc, port = start_server(state_dir)
        try:
            credentials = issue_credentials(state_dir) if args.signed else None
            run(port, args, credentials, proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def run(port: int, args, credentials, server_pid: int) -> None:
    path = "/bip-sync-wss-gost/" if credentials else "/bip-sync/"

    def message() -> bytes:
        body = build_send_message(service_id="DEMO_Echo", sender_id="demo-consumer",
                                  password="demo-consumer-pass", payload=payload())
        return sign_request(body, *credentials) if credentials else body

    latencies: list[float] = []
    faults = 0
    remaining = [args.requests]
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def take() -> bool:
        with lock:
            if remaining[0] <= 0 or time.monotonic() > deadline:
                return False
            remaining[0] -= 1
            return True

    def worker() -> None:
        nonlocal faults
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while take():
            body = message()
            start = time.perf_counter()
            conn.request("POST", path, body, {"Content-Type": "text/xml; charset=utf-8"})
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                faults += response.status != 200
        conn.close()

    health: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while not stop.is_set():
            start = time.perf_counter()
            conn.request("GET", "/health")
            conn.getresponse().read()
            health.append(time.perf_counter() - start)
            stop.wait(0.05)
        conn.close()

    # Warm-up: the first password check pays the full PBKDF2 cost, later ones hit the cache.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, message(), {"Content-Type": "text/xml; charset=utf-8"})
    warm = conn.getresponse()
    if warm.status != 200:
        raise SystemExit(f"warm-up refused: HTTP {warm.status}: {warm.read()[:500]!r}")
    warm.read()
    conn.close()

    threads = [threading.Thread(target=worker) for _ in range(args.clients)]
    prober = threading.Thread(target=probe)
    cpu_before = cpu_seconds(server_pid)
    began = time.perf_counter()
    prober.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    server_cpu = cpu_seconds(server_pid) - cpu_before
    stop.set()
    prober.join()

    def pct(values: list[float], p: float) -> float:
        return statistics.quantiles(values, n=100)[p - 1] * 1000 if len(values) > 1 else float("nan")

    print(f"round trips{' (signed)' if credentials else ''}: {len(latencies)} in {wall:.2f} s = "
          f"{len(latencies) / wall:.0f}/s ({args.clients} clients, non-200: {faults})")
    print(f"latency ms: p50 {pct(latencies, 50):.1f}  p90 {pct(latencies, 90):.1f}  p99 {pct(latencies, 99):.1f}")
    print(f"/health under load ms: p50 {pct(health, 50):.1f}  p90 {pct(health, 90):.1f}  max {max(health) * 1000:.1f}")
    # The server process also runs the demo provider it forwards to: this is gateway + provider per round trip.
    print(f"server CPU per round trip: {server_cpu / max(1, len(latencies)) * 1000:.2f} ms "
          f"(gateway and the in-process demo provider); peak RSS {peak_rss_mb(server_pid):.0f} MB")


if __name__ == "__main__":
    main()
