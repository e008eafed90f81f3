"""Crash safety of the AsyncChannel: nothing the gateway acknowledged is lost across a SIGKILL.

A real `shep serve` pushes to a slow in-test IAsyncChannelClient receiver (a plain ThreadingHTTPServer,
no Twisted here) while client threads keep sending. When about a third of the messages have reached
the receiver the gateway is killed with SIGKILL, then restarted on the same state dir. Every messageId
the gateway answered with HTTP 200 `sendMessageResponse` must then reach the receiver at least once
(at-least-once delivery: duplicates are allowed and reported), end DELIVERED in the store with the
journal's last transition saying the same, and the journal's hash chain must still verify. The sender
has a client endpoint too (the same receiver), so `changeMassageStatusNotification`s are in the mix.

Every wait is bounded; the test talks to 127.0.0.1 only.
"""
from __future__ import annotations

import collections
import http.client
import http.server
import json
import queue
import re
import sys
import threading
import time
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from gateway import client
from gateway import contract as c
from gateway.asyncchannel import wire
from gateway.passwords import hash_password
from gateway.store import Store, sqlite_url
from gateway.store.schema import async_messages, journal
from tests.serve_process import STOP_TIMEOUT, ServeProcess, shep

SERVICE = "CRASH_Async"
SENDER, RECEIVER = "crash-sender", "crash-receiver"
PASSWORD = "crash-sender-pass"
PAYLOAD_NS = "urn:shep-emulator:test:crash"
MESSAGES = 300
CLIENT_THREADS = 4
PUSH_DELAY = 0.03  # the receiver's think time per push: delivery is still going on at the kill
KILL_FRACTION = 3  # kill once MESSAGES // KILL_FRACTION messages have been received
START_TIMEOUT = 30
SEND_TIMEOUT = 10
KILL_WAIT = 30  # for the receiver to reach the kill threshold
DELIVERY_WAIT = 90  # after the restart, for every acknowledged message to arrive
STORE_WAIT = 30  # after that, for the store to record them DELIVERED (leases of the killed process lapse first)
DELIVERED = "DELIVERED"


# -- the push receiver (IAsyncChannelClient) -------------------------------------------------------

class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops SYNs when the gateway opens a batch of connections at
    # once (its pool keeps only 2 per host), and each dropped SYN costs the gateway a 1 s retransmit.
    request_queue_size = 128

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a killed gateway resets its connections
            super().handle_error(request, client_address)


class Receiver:
    """Records the messageId of every pushed `sendMessage`, answering each after PUSH_DELAY."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.notifications = 0
        self.unexpected: list[str] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # the gateway keeps its connections open
            timeout = 30  # an idle keep-alive connection does not hold its thread forever

            def do_POST(self):
                try:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    status, answer = receiver.handle(body)
                    self.send_response(status)
                    self.send_header("Content-Type", "text/xml; charset=utf-8")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):  # the gateway was killed meanwhile
                    self.close_connection = True

            def log_message(self, format, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def handle(self, body: bytes) -> tuple[int, bytes]:
        try:
            operation = wire.operation_of(body)
        except (ValueError, etree.XMLSyntaxError) as exc:
            with self.lock:
                self.unexpected.append(f"unparsable push: {exc}")
            return 500, b""
        name = etree.QName(operation).localname
        if operation.tag == c.q(c.ASYNC_CLIENT_NS, "sendMessage"):
            info = operation.find("request/messageInfo")
            message_id = info.findtext("messageId")
            # Received now; the answer comes later, so a kill in between leaves the gateway not knowing.
            with self.lock:
                self.counts[message_id] += 1
            time.sleep(PUSH_DELAY)
            return 200, wire.send_message_response(
                message_id=message_id, correlation_id=info.findtext("correlationId") or message_id,
                session_id=info.findtext("sessionId") or "{00000000-0000-0000-0000-000000000000}",
                wrapper="sendMessageResponse", ns=c.ASYNC_CLIENT_NS)
        if operation.tag == c.q(c.ASYNC_CLIENT_NS, "changeMassageStatusNotification"):
            with self.lock:
                self.notifications += 1
            session = operation.findtext("request/sessionId") or "{00000000-0000-0000-0000-000000000000}"
            return 200, wire.push_status_response(session)
        with self.lock:
            self.unexpected.append(f"unexpected operation {name}")
        return 500, b""

    def received(self) -> set[str]:
        with self.lock:
            return set(self.counts)

    def snapshot(self) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(self.counts)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=STOP_TIMEOUT)


# -- `shep serve` as a subprocess -----------------------------------------------------------------

def write_config(path: Path, receiver_url: str) -> None:
    path.write_text(f"""\
[gateway]
async_push_interval_seconds = 0.2
async_retry_base_seconds = 0.2
async_retry_max_seconds = 1
async_push_timeout_seconds = 5
async_max_attempts = 50

[participants.{SENDER}]
password_hash = "{hash_password(PASSWORD, iterations=1000)}"
description = "sends the messages of the crash test"
async_endpoint = "{receiver_url}"

[participants.{RECEIVER}]
async_endpoint = "{receiver_url}"
description = "the in-test IAsyncChannelClient"

[services.{SERVICE}]
provider = "{RECEIVER}"
channel = "async"
allowed_senders = ["{SENDER}"]
""", "utf-8")


# -- the senders ----------------------------------------------------------------------------------

class Senders:
    """CLIENT_THREADS threads sending MESSAGES `sendMessage` REQUESTs; only HTTP 200 answers count."""

    def __init__(self, base: str):
        self.url = f"{base}/bip-async/"
        self.todo: queue.Queue[int] = queue.Queue()
        for number in range(MESSAGES):
            self.todo.put(number)
        self.stop = threading.Event()
        self.killing = threading.Event()  # set just before the SIGKILL: failures from then on are expected
        self.lock = threading.Lock()
        self.acknowledged: dict[str, int] = {}
        self.failed: list[str] = []  # sends without an acknowledgement: not accepted
        self.failed_while_up: list[str] = []  # the same, but before the kill: a gateway bug
        self.refused: list[str] = []  # answers other than sendMessageResponse while the gateway was up
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENT_THREADS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=SEND_TIMEOUT + 5)
        assert not any(thread.is_alive() for thread in self.threads), "a sender thread did not finish"

    def sent(self) -> int:
        with self.lock:
            return len(self.acknowledged) + len(self.failed) + len(self.failed_while_up) + len(self.refused)

    def check(self) -> None:
        with self.lock:
            assert not self.refused, f"the gateway refused messages: {self.refused[:5]}"
            assert not self.failed_while_up, f"sends failed while the gateway was up: {self.failed_while_up[:5]}"

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                number = self.todo.get_nowait()
            except queue.Empty:
                return
            payload = etree.Element(f"{{{PAYLOAD_NS}}}Crash", nsmap={"t": PAYLOAD_NS})
            etree.SubElement(payload, "n").text = str(number)
            body = wire.send_message(service_id=SERVICE, sender_id=SENDER, password=PASSWORD,
                                     message_type="REQUEST", payload=payload)
            try:
                status, raw = client.post(self.url, body, timeout=SEND_TIMEOUT)
            except (OSError, http.client.HTTPException) as exc:  # the gateway is gone: not accepted
                with self.lock:
                    (self.failed if self.killing.is_set() else self.failed_while_up).append(
                        f"#{number}: {exc.__class__.__name__}: {exc}")
                continue
            message_id = None
            if status == 200:
                try:
                    operation = wire.operation_of(raw)
                except (ValueError, etree.XMLSyntaxError):
                    operation = None
                if operation is not None and operation.tag == c.q(c.ASYNC_NS, "sendMessageResponse"):
                    message_id = operation.findtext("response/messageId")
            with self.lock:
                if message_id:
                    self.acknowledged[message_id] = number
                else:
                    self.refused.append(f"#{number}: HTTP {status} {raw[:500]!r}")


def store_states(state_dir: Path) -> dict[str, tuple[str, int]]:
    store = Store(sqlite_url(state_dir))
    try:
        with store.snapshot() as conn:
            rows = conn.execute(select(async_messages.c.message_id, async_messages.c.state,
                                       async_messages.c.attempts)).all()
    finally:
        store.close()
    return {row.message_id: (row.state, row.attempts) for row in rows}


def journal_states(state_dir: Path) -> dict[str, str]:
    """The last delivery state the journal's `state` records give each message (queue._transition)."""
    store = Store(sqlite_url(state_dir))
    try:
        with store.snapshot() as conn:
            rows = conn.execute(select(journal.c.message_id, journal.c.verdicts)
                                .where(journal.c.hop == "state").order_by(journal.c.seq)).all()
    finally:
        store.close()
    last: dict[str, str] = {}
    for row in rows:
        for verdict in json.loads(row.verdicts):
            found = re.search(r"→ ([A-Z_]+)\b", verdict.get("detail") or "")
            if found:
                last[row.message_id] = found.group(1)
    return last


# -- the test -------------------------------------------------------------------------------------

def test_sigkill_loses_no_acknowledged_message(tmp_path):
    state_dir = tmp_path / "state"
    config = tmp_path / "crash.toml"
    log = tmp_path / "serve.log"
    receiver = Receiver()
    receiver.start()
    servers: list[ServeProcess] = []
    senders: Senders | None = None
    try:
        write_config(config, receiver.url)

        # 1. Send while the gateway pushes; SIGKILL it once a third has reached the receiver.
        first = ServeProcess("--config", str(config), "--port", "0", "--state-dir", str(state_dir),
                              "--log-level", "WARNING", cwd=tmp_path, log=log)
        servers.append(first)
        base = first.wait_listening(START_TIMEOUT)
        started = time.monotonic()
        senders = Senders(base)
        senders.start()
        threshold = MESSAGES // KILL_FRACTION
        deadline = time.monotonic() + KILL_WAIT
        while len(receiver.received()) < threshold:
            first.ensure_running("before the kill")
            senders.check()
            if time.monotonic() > deadline:
                pytest.fail(f"only {len(receiver.received())} of {threshold} messages reached the receiver "
                            f"within {KILL_WAIT} s (sent {senders.sent()}); {first.output()}")
            time.sleep(0.005)
        first.ensure_running("before the kill")
        answered_at_kill = senders.sent()
        senders.killing.set()
        first.kill()
        killed = time.monotonic()
        received_at_kill = len(receiver.received())
        senders.stop.set()
        senders.join()
        senders.check()
        acknowledged = dict(senders.acknowledged)
        assert acknowledged, "the gateway acknowledged nothing before the kill"

        # The hash chain survived the kill itself.
        verify = shep("journal", "verify", "--state-dir", str(state_dir), cwd=tmp_path)
        assert verify.returncode == 0, f"journal broken by SIGKILL: {verify.stdout}{verify.stderr}"

        # 2. Restart on the same state dir: everything acknowledged must arrive.
        second = ServeProcess("--config", str(config), "--port", "0", "--state-dir", str(state_dir),
                              "--log-level", "WARNING", cwd=tmp_path, log=log)
        servers.append(second)
        second.wait_listening(START_TIMEOUT)
        restarted = time.monotonic()
        deadline = restarted + DELIVERY_WAIT
        while True:
            missing = set(acknowledged) - receiver.received()
            if not missing:
                break
            second.ensure_running("after the restart")
            if time.monotonic() > deadline:
                pytest.fail(f"{len(missing)} acknowledged message(s) never reached the receiver within "
                            f"{DELIVERY_WAIT} s of the restart: {sorted(missing)}; {second.output()}")
            time.sleep(0.05)
        all_arrived = time.monotonic()

        # 3. The store agrees: every accepted row, acknowledged or not, ends DELIVERED.
        deadline = time.monotonic() + STORE_WAIT
        while True:
            states = store_states(state_dir)
            pending = {mid: state for mid, state in states.items() if state[0] != DELIVERED}
            if not pending and set(acknowledged) <= set(states):
                break
            second.ensure_running("while waiting for the store")
            if time.monotonic() > deadline:
                not_stored = sorted(set(acknowledged) - set(states))
                pytest.fail(f"acknowledged but not in the store: {not_stored}; not DELIVERED after "
                            f"{STORE_WAIT} s: {pending}")
            time.sleep(0.1)
        all_delivered = time.monotonic()
        assert second.terminate() == 0, second.output()
        serve_log = log.read_text("utf-8", "replace")
        assert "Traceback" not in serve_log and "push round failed" not in serve_log, serve_log[-6000:]

        counts = receiver.snapshot()
        assert set(counts) <= set(states), f"pushed but never stored: {sorted(set(counts) - set(states))}"
        assert set(states) <= set(counts), f"DELIVERED but never received: {sorted(set(states) - set(counts))}"
        assert not receiver.unexpected, receiver.unexpected
        duplicates = {mid: n for mid, n in counts.items() if n > 1}
        unacknowledged_rows = set(states) - set(acknowledged)
        retried = sum(1 for _, attempts in states.values() if attempts > 1)

        # The journal tells the same story as the queue: each message's last transition is its state.
        said = journal_states(state_dir)
        disagree = {mid: (state, said.get(mid)) for mid, (state, _) in states.items() if said.get(mid) != state}
        assert not disagree, f"queue state vs the journal's last transition: {dict(list(disagree.items())[:10])}"

        verify = shep("journal", "verify", "--state-dir", str(state_dir), cwd=tmp_path)
        assert verify.returncode == 0, f"journal broken after the restart: {verify.stdout}{verify.stderr}"
        assert "chain intact" in verify.stdout, verify.stdout

        print(f"\ncrash test: {answered_at_kill} sends answered before the kill, {len(acknowledged)} acknowledged "
              f"({len(senders.failed)} sends failed without an answer, {MESSAGES - senders.sent()} never sent); "
              f"{received_at_kill} received before SIGKILL at {killed - started:.2f} s; "
              f"{len(states)} rows stored ({len(unacknowledged_rows)} accepted but never acknowledged); "
              f"restart listening {restarted - killed:.2f} s after the kill; all acknowledged received "
              f"{all_arrived - restarted:.2f} s and all DELIVERED in the store {all_delivered - restarted:.2f} s "
              f"after the restart; "
              f"{len(duplicates)} message(s) received more than once "
              f"({sum(duplicates.values()) - len(duplicates)} extra deliveries); "
              f"{retried} row(s) took more than one attempt; {receiver.notifications} status notification(s); "
              f"{verify.stdout.strip()}")
    finally:
        if senders is not None:
            senders.stop.set()
        for server in servers:
            server.close()
        receiver.stop()
