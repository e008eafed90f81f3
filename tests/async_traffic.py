"""AsyncChannel traffic for the tests that kill real `shep serve` processes (test_async_crash,
test_haproxy_failover): a push receiver that counts every delivery, threads sending `sendMessage`
REQUESTs, the configuration they need, and readers of the queue and journal rows in a store.

No Twisted here: the receiver is a plain ThreadingHTTPServer and the senders are threads, so a test
can block while the gateways run in other processes. Every wait is bounded; everything is loopback.
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

import pytest
from lxml import etree
from sqlalchemy import select

from gateway import client
from gateway import contract as c
from gateway.asyncchannel import wire
from gateway.passwords import hash_password
from gateway.store import Store
from gateway.store.schema import async_messages, journal
from tests.serve_process import STOP_TIMEOUT

SERVICE = "CRASH_Async"
SENDER, RECEIVER = "crash-sender", "crash-receiver"
PASSWORD = "crash-sender-pass"
PAYLOAD_NS = "urn:shep-emulator:test:crash"
DELIVERED = "DELIVERED"
# A proxy's own answers when no gateway answered (HAProxy: 502 bad gateway, 503 no server, 504 timeout).
PROXY_ERRORS = (502, 503, 504)


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
    """Records the messageId of every pushed `sendMessage`, answering each after `push_delay` seconds."""

    def __init__(self, push_delay: float):
        self.push_delay = push_delay
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
            time.sleep(self.push_delay)
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


# -- the configuration ----------------------------------------------------------------------------

def async_config(receiver_url: str, **gateway) -> str:
    """TOML: `[gateway]` from the keyword arguments, SENDER allowed to send SERVICE to RECEIVER, both
    pushed to at `receiver_url` (RECEIVER the messages, SENDER the status notifications)."""
    settings = "".join(f"{key} = {json.dumps(value)}\n" for key, value in gateway.items())
    return f"""\
[gateway]
{settings}
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
"""


# -- the senders ----------------------------------------------------------------------------------

class Senders:
    """`threads` threads sending `messages` `sendMessage` REQUESTs to `url`; only HTTP 200
    `sendMessageResponse` answers count as accepted. `pause` spaces each thread's sends, so that
    sending lasts long enough to go on across a kill."""

    def __init__(self, url: str, *, messages: int, threads: int, send_timeout: float, pause: float = 0.0):
        self.url = url
        self.send_timeout = send_timeout
        self.pause = pause
        self.messages = messages
        self.todo: queue.Queue[int] = queue.Queue()
        for number in range(messages):
            self.todo.put(number)
        self.stop = threading.Event()
        self.killing = threading.Event()  # set just before the SIGKILL: failures from then on are expected
        self.lock = threading.Lock()
        self.acknowledged: dict[str, int] = {}
        self.acknowledged_after_kill = 0
        self.failed: list[str] = []  # sends without an acknowledgement: not accepted
        self.failed_while_up: list[str] = []  # the same, but before the kill: a gateway bug
        self.refused: list[str] = []  # a gateway's answer other than sendMessageResponse
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (self.send_timeout + 5 if timeout is None else timeout)
        for thread in self.threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0.01))
        assert not any(thread.is_alive() for thread in self.threads), "a sender thread did not finish"

    def sent(self) -> int:
        with self.lock:
            return len(self.acknowledged) + len(self.failed) + len(self.failed_while_up) + len(self.refused)

    def check(self) -> None:
        with self.lock:
            assert not self.refused, f"the gateway refused messages: {self.refused[:5]}"
            assert not self.failed_while_up, f"sends failed while the gateway was up: {self.failed_while_up[:5]}"

    def _failed(self, text: str) -> None:
        with self.lock:
            (self.failed if self.killing.is_set() else self.failed_while_up).append(text)

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
                status, raw = client.post(self.url, body, timeout=self.send_timeout)
            except (OSError, http.client.HTTPException) as exc:  # the gateway is gone: not accepted
                self._failed(f"#{number}: {exc.__class__.__name__}: {exc}")
                continue
            try:
                operation = wire.operation_of(raw)
            except (ValueError, etree.XMLSyntaxError):
                operation = None
            if operation is None and status in PROXY_ERRORS:  # no gateway answered: not accepted
                self._failed(f"#{number}: HTTP {status} from the proxy")
                continue
            message_id = None
            if status == 200 and operation is not None and operation.tag == c.q(c.ASYNC_NS, "sendMessageResponse"):
                message_id = operation.findtext("response/messageId")
            with self.lock:
                if message_id:
                    self.acknowledged[message_id] = number
                    if self.killing.is_set():
                        self.acknowledged_after_kill += 1
                else:
                    self.refused.append(f"#{number}: HTTP {status} {raw[:500]!r}")
            if self.pause:
                self.stop.wait(self.pause)


# -- what the store holds -------------------------------------------------------------------------

def store_states(store_url: str) -> dict[str, tuple[str, int]]:
    """messageId → (state, attempts) of every queued message."""
    store = Store(store_url)
    try:
        with store.snapshot() as conn:
            rows = conn.execute(select(async_messages.c.message_id, async_messages.c.state,
                                       async_messages.c.attempts)).all()
    finally:
        store.close()
    return {row.message_id: (row.state, row.attempts) for row in rows}


def journal_states(store_url: str) -> dict[str, str]:
    """The last delivery state the journal's `state` records give each message (queue._transition)."""
    store = Store(store_url)
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


# -- waiting for the survivors --------------------------------------------------------------------

def wait_received(receiver: Receiver, expected: set[str], server, deadline: float, since: str) -> None:
    """Until every id in `expected` has reached the receiver; fails with the missing ones and `server`'s output."""
    while True:
        missing = expected - receiver.received()
        if not missing:
            return
        server.ensure_running("while delivering")
        if time.monotonic() > deadline:
            pytest.fail(f"{len(missing)} accepted message(s) never reached the receiver {since}: "
                        f"{sorted(missing)[:10]}; {server.output()}")
        time.sleep(0.05)


def wait_delivered(store_url: str, expected: set[str], server, deadline: float, since: str
                   ) -> dict[str, tuple[str, int]]:
    """Until the store holds every id in `expected` and every stored message is DELIVERED; the final states."""
    while True:
        states = store_states(store_url)
        pending = {mid: state for mid, state in states.items() if state[0] != DELIVERED}
        if not pending and expected <= set(states):
            return states
        server.ensure_running("while waiting for the store")
        if time.monotonic() > deadline:
            pytest.fail(f"accepted but not in the store: {sorted(expected - set(states))[:10]}; "
                        f"not DELIVERED {since}: {dict(list(pending.items())[:10])}")
        time.sleep(0.1)


def assert_journal_agrees(store_url: str, states: dict[str, tuple[str, int]]) -> None:
    """The journal tells the same story as the queue: each message's last transition is its state."""
    said = journal_states(store_url)
    disagree = {mid: (state, said.get(mid)) for mid, (state, _) in states.items() if said.get(mid) != state}
    assert not disagree, f"queue state vs the journal's last transition: {dict(list(disagree.items())[:10])}"
