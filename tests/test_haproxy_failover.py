"""Two gateway nodes behind HAProxy on one PostgreSQL store; one node is killed with SIGKILL mid-traffic.

Node A and node B are separate `shep serve` processes (one worker each) on their own loopback ports,
sharing a PostgreSQL schema of their own and one state dir (A initialises the test PKI, B starts
after it and reuses it). An HAProxy process started by the test balances them, checking `GET /health`
every 200 ms (docs/deployment.md, "Several nodes behind HAProxy", shows the same configuration).

Through HAProxy, client threads send async `sendMessage` REQUESTs for a service pushed to an in-test
receiver, and other threads keep calling the sync DEMO_Echo service (answered by each node's own
demo provider). Once a third of the messages are accepted and some delivered, node A is killed with
SIGKILL and the rest are sent. Then:

- node A served traffic before the kill (its pid answered /health through HAProxy; HAProxy counted
  its 2xx answers);
- every message whose sendMessage was accepted reaches the receiver (at least once) and ends
  DELIVERED, node A's leased messages included once their lease lapses; no message was pushed more
  often than it was claimed (receiver count <= attempts: never two concurrent pushes of one lease);
- only requests in flight at node A when it died fail (at most one per client thread), none sent
  after it; once HAProxy marks A DOWN, CONSECUTIVE_OK sync calls in a row succeed;
- `shep journal verify --store …` passes;
- HAProxy and node B are stopped and the schema dropped whatever happens.

PostgreSQL only (skipped without SHEP_TEST_POSTGRES_URL); skipped without HAProxy (the Debian package haproxy:
`make test-deps` and `.ci/run` install it). Loopback only; every wait is bounded in count and time.
"""
from __future__ import annotations

import csv
import http.client
import io
import json
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from lxml import etree

from gateway import client
from tests import system_tools
from tests.async_traffic import (PASSWORD, SENDER, Receiver, Senders, assert_journal_agrees, async_config,
                                 wait_delivered, wait_received)
from tests.postgres_schema import create_schema, drop_schema
from tests.serve_process import STOP_TIMEOUT, ServeProcess, shep

ROOT = Path(__file__).resolve().parent.parent
ECHO_NS = "urn:shep-emulator:demo:echo"
MESSAGES = 300
CLIENT_THREADS = 4
SEND_PAUSE = 0.03  # per sender thread: sending lasts a few seconds, so it goes on across the kill
SYNC_THREADS = 2
SYNC_PAUSE = 0.01
SYNC_CALLS_MAX = 3000  # per sync thread: a bound, never reached in a passing run
PUSH_DELAY = 0.25  # the receiver's think time per push: node A has pushes in flight when it dies
KILL_ACCEPTED = MESSAGES // 3  # kill once this many are accepted …
KILL_RECEIVED = 20  # … and this many delivered
CONSECUTIVE_OK = 50  # sync calls in a row that must succeed once HAProxy has marked node A DOWN
START_TIMEOUT = 30
SEND_TIMEOUT = 10
KILL_WAIT = 20  # for the kill thresholds
DOWN_WAIT = 5  # for HAProxy to mark node A DOWN (inter 200ms, fall 2)
SEND_WAIT = 30  # for the senders to finish the rest
SYNC_WAIT = 15  # after the DOWN, for CONSECUTIVE_OK sync calls
DELIVERY_WAIT = 25  # after the kill, for every accepted message to arrive and be DELIVERED (lease 1 + 5 s)
# Short push timeout → a 6 s lease (async_push_timeout_seconds + 5): node A's claimed messages are
# pushed again by node B a few seconds after A dies.
GATEWAY = dict(async_push_interval_seconds=0.2, async_push_timeout_seconds=1, async_retry_base_seconds=0.2,
               async_retry_max_seconds=1, async_max_attempts=50)

HAPROXY_CONFIG = """\
global
    log stderr format raw local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 500ms
    timeout client 10s
    timeout server 10s
    timeout check 500ms
    # A connection refused by a dead node not yet marked DOWN is retried on the other node.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout

frontend shep
    bind 127.0.0.1:{port}
    default_backend gateways

backend gateways
    balance roundrobin
    option httpchk
    http-check send meth GET uri /health
    http-check expect status 200
    # POSTs are not idempotent (a resent sendMessage is a second message): only a failed connection,
    # when the request never reached a node, is retried for them.
    http-request disable-l7-retry if METH_POST
    default-server check inter 200ms fastinter 100ms downinter 500ms fall 2 rise 2
    server a 127.0.0.1:{port_a}
    server b 127.0.0.1:{port_b}

listen stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
"""


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports for haproxy to bind (held together while picked, so never the same)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class HAProxy:
    """An haproxy process of the test's own, in the foreground, logging to a file."""

    def __init__(self, executable: str, config: Path, log: Path, stats_port: int):
        self.log_path = log
        self.stats_url = f"http://127.0.0.1:{stats_port}/stats;csv"
        self._log = open(log, "ab")
        self.proc = subprocess.Popen([executable, "-db", "-f", str(config)], stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def stats(self) -> dict[str, dict[str, str]]:
        """The CSV statistics of backend `gateways`, by server name (status, stot, hrsp_2xx, wretr, wredis…)."""
        if self.proc.poll() is not None:
            pytest.fail(f"haproxy exited with {self.proc.returncode}; {self.output()}")
        with urllib.request.urlopen(self.stats_url, timeout=5) as response:
            text = response.read().decode("utf-8").removeprefix("# ")
        return {row["svname"]: row for row in csv.DictReader(io.StringIO(text)) if row["pxname"] == "gateways"}

    def wait_status(self, servers: tuple[str, ...], status: str, timeout: float) -> float:
        """Waits until every server's status starts with `status`; the time it was seen."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                rows = self.stats()
            except OSError:  # the stats listener is not bound yet
                rows = {}
            if all(rows.get(name, {}).get("status", "").startswith(status) for name in servers):
                return time.monotonic()
            if time.monotonic() > deadline:
                pytest.fail(f"haproxy did not see {servers} {status} within {timeout} s: "
                            f"{ {name: row.get('status') for name, row in rows.items()} }; {self.output()}")
            time.sleep(0.02)

    def output(self) -> str:
        self._log.flush()
        return f"haproxy log={self.log_path.read_text('utf-8', 'replace')[-4000:]!r}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        self._log.close()


class SyncCalls:
    """Threads calling DEMO_Echo through `url` until stopped (or SYNC_CALLS_MAX each); every call recorded
    as (started, finished, ok, detail), monotonic times."""

    def __init__(self, url: str):
        self.url = url
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.calls: list[tuple[float, float, bool, str]] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(SYNC_THREADS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        deadline = time.monotonic() + SEND_TIMEOUT + 5
        for thread in self.threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0.01))
        assert not any(thread.is_alive() for thread in self.threads), "a sync thread did not finish"

    def snapshot(self) -> list[tuple[float, float, bool, str]]:
        with self.lock:
            return list(self.calls)

    def _run(self) -> None:
        for _ in range(SYNC_CALLS_MAX):
            if self.stop.is_set():
                return
            started = time.monotonic()
            ok, detail = self._call()
            with self.lock:
                self.calls.append((started, time.monotonic(), ok, detail))
            self.stop.wait(SYNC_PAUSE)

    def _call(self) -> tuple[bool, str]:
        text = uuid.uuid4().hex
        payload = etree.Element(f"{{{ECHO_NS}}}EchoRequest", nsmap={"echo": ECHO_NS})
        etree.SubElement(payload, "text").text = text
        body = client.build_send_message(service_id="DEMO_Echo", sender_id=SENDER, password=PASSWORD,
                                         payload=payload)
        try:
            status, raw = client.post(self.url, body, timeout=SEND_TIMEOUT)
            reply = client.read_reply(status, raw)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return False, f"{exc.__class__.__name__}: {exc}"
        if not reply.ok:
            return False, f"HTTP {status} fault {reply.fault}"
        echoed = reply.data.findtext(f"{{{ECHO_NS}}}EchoResponse/text") if reply.data is not None else None
        return (echoed == text), f"HTTP {status} echoed {echoed!r}"


def write_config(path: Path, receiver_url: str) -> None:
    """The async service pushed to the receiver, and the sync DEMO_Echo answered by each node itself."""
    path.write_text(async_config(receiver_url, **GATEWAY) + f"""
[participants.demo-provider]
endpoint = "/demo/echo"
description = "the demo echo provider of each node"

[services.DEMO_Echo]
provider = "demo-provider"
payload_schema = "{ROOT / 'gateway' / 'defaults' / 'demo-echo.xsd'}"
timeout_seconds = 5
allowed_senders = ["{SENDER}"]
""", "utf-8")


def health(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def check_senders(senders: Senders, nodes: list[ServeProcess]) -> None:
    """Senders.check, failing with the nodes' logs: a refusal's cause is only there (SHEP-299)."""
    try:
        senders.check()
    except AssertionError as exc:
        pytest.fail(f"{exc}; " + "; ".join(node.output() for node in nodes))


@pytest.fixture
def postgres_store():
    """A store URL on a schema of the test's own (skips without SHEP_TEST_POSTGRES_URL), dropped after it."""
    url, schema = create_schema("ha")
    yield url
    drop_schema(schema)


def test_haproxy_fails_over_when_a_node_is_killed(tmp_path, postgres_store):
    executable = system_tools.require("haproxy")
    url = postgres_store
    state_dir = tmp_path / "state"
    config = tmp_path / "ha.toml"
    receiver = Receiver(PUSH_DELAY)
    receiver.start()
    nodes: list[ServeProcess] = []
    proxy: HAProxy | None = None
    senders: Senders | None = None
    sync: SyncCalls | None = None
    try:
        write_config(config, receiver.url)

        # 1. Two nodes: B only once A listens, i.e. once A has initialised the PKI in the shared state dir.
        def node(name: str) -> tuple[ServeProcess, str]:
            process = ServeProcess("--config", str(config), "--port", "0", "--state-dir", str(state_dir),
                                   "--store", url, "--log-level", "WARNING", cwd=tmp_path,
                                   log=tmp_path / f"node-{name}.log")
            nodes.append(process)
            return process, process.wait_listening(START_TIMEOUT)

        node_a, base_a = node("a")
        node_b, base_b = node("b")
        port, stats_port = free_ports(2)
        (tmp_path / "haproxy.cfg").write_text(HAPROXY_CONFIG.format(
            port=port, port_a=base_a.rsplit(":", 1)[1], port_b=base_b.rsplit(":", 1)[1], stats_port=stats_port))
        proxy = HAProxy(executable, tmp_path / "haproxy.cfg", tmp_path / "haproxy.log", stats_port)
        proxy.wait_status(("a", "b"), "UP", START_TIMEOUT)
        front = f"http://127.0.0.1:{port}"

        # Both processes answer through HAProxy (round robin): /health tells their pids.
        answers = [health(f"{front}/health") for _ in range(4)]
        assert all(answer["status"] == "ok" for answer in answers), answers
        assert {answer["pid"] for answer in answers} == {node_a.proc.pid, node_b.proc.pid}, answers

        # 2. Traffic through HAProxy; SIGKILL node A once a third is accepted and some delivered.
        started = time.monotonic()
        senders = Senders(f"{front}/bip-async/", messages=MESSAGES, threads=CLIENT_THREADS,
                          send_timeout=SEND_TIMEOUT, pause=SEND_PAUSE)
        sync = SyncCalls(f"{front}/bip-sync/")
        senders.start()
        sync.start()
        deadline = time.monotonic() + KILL_WAIT
        while len(senders.acknowledged) < KILL_ACCEPTED or len(receiver.received()) < KILL_RECEIVED:
            for process in nodes:
                process.ensure_running("before the kill")
            check_senders(senders, nodes)
            if time.monotonic() > deadline:
                pytest.fail(f"{len(senders.acknowledged)} accepted, {len(receiver.received())} received within "
                            f"{KILL_WAIT} s; {node_a.output()}")
            time.sleep(0.005)
        check_senders(senders, nodes)
        failed_sync = [call for call in sync.snapshot() if not call[2]]
        assert not failed_sync, f"sync calls failed with both nodes up: {failed_sync[:5]}; {node_a.output()}"
        before = proxy.stats()["a"]
        assert int(before["hrsp_2xx"]) > 0, f"node A answered nothing through HAProxy: {before}"
        accepted_at_kill, received_at_kill = len(senders.acknowledged), len(receiver.received())
        senders.killing.set()
        kill_started = time.monotonic()
        node_a.kill()
        killed = time.monotonic()
        down = proxy.wait_status(("a",), "DOWN", DOWN_WAIT)

        # 3. The rest of the messages; sync calls succeed in a row once A is DOWN.
        senders.join(SEND_WAIT)
        check_senders(senders, nodes)
        deadline = time.monotonic() + SYNC_WAIT
        while True:
            after_down = [call for call in sync.snapshot() if call[0] >= down]
            if any(not ok for _, _, ok, _ in after_down):
                pytest.fail(f"sync calls failed after HAProxy marked node A DOWN: "
                            f"{[call for call in after_down if not call[2]][:5]}; {proxy.output()}")
            if len(after_down) >= CONSECUTIVE_OK:
                break
            node_b.ensure_running("after the kill")
            if time.monotonic() > deadline:
                pytest.fail(f"only {len(after_down)} sync calls after the DOWN within {SYNC_WAIT} s")
            time.sleep(0.02)
        sync.join()
        calls = sync.snapshot()
        failed_sync = [call for call in calls if not call[2]]
        # Only a call already at node A when it died may fail: at most one per thread, none started later.
        assert len(failed_sync) <= SYNC_THREADS, f"{len(failed_sync)} sync calls failed: {failed_sync[:5]}"
        assert all(call[0] < killed for call in failed_sync), f"a sync call sent after the kill failed: {failed_sync}"
        assert len(senders.failed) <= CLIENT_THREADS, f"{len(senders.failed)} sends failed: {senders.failed[:5]}"
        acknowledged = dict(senders.acknowledged)
        assert senders.acknowledged_after_kill > 0, "no message was accepted after the kill"

        # 4. Every accepted message arrives; every stored one ends DELIVERED (A's leases lapse first).
        deadline = killed + DELIVERY_WAIT
        since_kill = f"within {DELIVERY_WAIT} s of the kill"
        wait_received(receiver, set(acknowledged), node_b, deadline, since_kill)
        all_received = time.monotonic()
        states = wait_delivered(url, set(acknowledged), node_b, deadline, since_kill)
        all_delivered = time.monotonic()

        stats = proxy.stats()
        proxy.close()
        assert node_b.terminate() == 0, node_b.output()
        for process in (node_a, node_b):  # A's log up to its death, B's to its clean stop
            log = process.log_text()
            assert "Traceback" not in log and "push round failed" not in log, log[-6000:]

        counts = receiver.snapshot()
        assert not receiver.unexpected, receiver.unexpected
        assert set(counts) == set(states), (f"pushed but not stored: {sorted(set(counts) - set(states))}; "
                                            f"stored but never pushed: {sorted(set(states) - set(counts))}")
        # Each push follows a claim that counts an attempt: more pushes than attempts would be two nodes
        # pushing one message under one lease.
        overpushed = {mid: (n, states[mid][1]) for mid, n in counts.items() if n > states[mid][1]}
        assert not overpushed, f"pushed more often than claimed (count, attempts): {overpushed}"
        assert_journal_agrees(url, states)

        verify = shep("journal", "verify", "--store", url, "--state-dir", str(state_dir), cwd=tmp_path)
        assert verify.returncode == 0, f"journal broken: {verify.stdout}{verify.stderr}"
        assert "chain intact" in verify.stdout, verify.stdout

        duplicates = {mid: n for mid, n in counts.items() if n > 1}
        in_window = [call for call in failed_sync if call[1] <= down + 1]
        print(f"\nhaproxy failover: node A answered {before['hrsp_2xx']} 2xx through HAProxy before the kill; "
              f"SIGKILL at {kill_started - started:.2f} s with {accepted_at_kill} accepted and {received_at_kill} "
              f"received; A marked DOWN {down - killed:.2f} s after it died; "
              f"{len(acknowledged)} of {MESSAGES} accepted ({senders.acknowledged_after_kill} after the kill, "
              f"{len(senders.failed)} failed in flight, {len(states) - len(acknowledged)} stored but unanswered); "
              f"sync calls: {len(calls)}, {len(failed_sync)} failed ({len(in_window)} in the detection window); "
              f"HAProxy retries on A {stats['a']['wretr']}, redispatches {stats['a']['wredis']}; "
              f"all accepted received {all_received - killed:.2f} s and all DELIVERED {all_delivered - killed:.2f} s "
              f"after the kill; {len(duplicates)} message(s) pushed more than once "
              f"({sum(duplicates.values()) - len(duplicates)} extra); {receiver.notifications} status "
              f"notification(s); {verify.stdout.strip()}")
    finally:
        if senders is not None:
            senders.stop.set()
        if sync is not None:
            sync.stop.set()
        if proxy is not None:
            proxy.close()
        for process in nodes:
            process.close()
        receiver.stop()
