"""`/metrics`, `/health` and `/ready` over real HTTP (docs/operations.md): the families a Prometheus user expects,
read with prometheus-client's own parser, bounded labels, and readiness that follows the store."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url, update

from gateway.asyncchannel import wire
from gateway.faults import CATALOGUE
from gateway.store.schema import async_messages
from tests import system_tools
from tests.conftest import PASSWORD, echo_request, send_message, start_harness, stop_harness, utc_now
from tests.postgres_schema import URL_VARIABLE
from tests.store_under_test import STORE_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "prometheus" / "shep-rules.yml"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(harness) -> dict[tuple[str, tuple], float]:
    status, raw = await harness.get("/metrics")
    assert status == 200
    return samples(raw.decode())


@pytest_twisted.ensureDeferred
async def test_requests_faults_and_checks_by_bounded_labels(harness):
    assert (await harness.send(send_message())).ok
    await harness.send(send_message(password="wrong"))
    await harness.send(send_message(service_id="NO_SUCH_SERVICE"))
    await harness.post(b"<not xml", url=f"{harness.app.base_url}/bip-sync-wss-gost/")
    seen = await scrape(harness)

    def requests(address, service, outcome):
        return seen.get(("shep_request_duration_seconds_count",
                         (("address", address), ("outcome", outcome), ("service", service))))

    assert requests("/bip-sync/", "ECHO", "ok") == 1
    # Refused before lookup_service, or for a service the registry does not hold: "unknown", never the input.
    assert requests("/bip-sync/", "unknown", "caller_fault") == 2
    assert requests("/bip-sync-wss-gost/", "unknown", "caller_fault") == 1
    assert not any(("service", "NO_SUCH_SERVICE") in labels for _, labels in seen)
    assert seen[("shep_faults_total", (("code", "SHEP-141"),))] == 1
    assert seen[("shep_faults_total", (("code", "SHEP-150"),))] == 1
    assert seen[("shep_faults_total", (("code", "SHEP-110"),))] == 1
    # Every catalogue code is there from the start, at 0 when it never happened.
    assert {dict(labels)["code"] for name, labels in seen if name == "shep_faults_total"} == {
        *CATALOGUE, "provider-fault"}
    assert seen[("shep_faults_total", (("code", "SHEP-171"),))] == 0
    # One timer per check: the accepted message passed validate_request_payload once.
    assert seen[("shep_check_duration_seconds_count", (("check", "validate_request_payload"),))] == 1
    assert seen[("shep_check_duration_seconds_count", (("check", "parse_xml"),))] == 4
    assert seen[("shep_hop_duration_seconds_count", (("hop", "provider"),))] == 1
    # prometheus-client's process and platform collectors.
    assert seen[("process_cpu_seconds_total", ())] > 0
    assert any(name == "python_info" for name, _ in seen)
    assert seen[("shep_store_up", ())] == 1
    assert seen[("shep_journal_records", ())] == await harness.app.run_in_pool(harness.app.journal.size) > 0


@pytest_twisted.ensureDeferred
async def test_each_app_counts_its_own_requests(harness, tmp_path, pki):
    other = await start_harness(tmp_path / "other", pki)
    try:
        assert (await harness.send(send_message())).ok
        ours, theirs = await scrape(harness), await scrape(other)
    finally:
        await stop_harness(other)
    key = ("shep_request_duration_seconds_count", (("address", "/bip-sync/"), ("outcome", "ok"), ("service", "ECHO")))
    assert ours[key] == 1 and key not in theirs


@pytest_twisted.ensureDeferred
async def test_queue_depth_and_oldest_pending_age_per_service(harness):
    before = await scrape(harness)
    # Every AsyncChannel service of the registry, at 0 while nothing waits; no sync service.
    depth = {dict(labels)["service"]: value for (name, labels), value in before.items()
             if name == "shep_async_queue_messages"}
    assert depth == {"ASYNC_ONLY": 0, "ASYNC_PULL": 0, "ASYNC_PUSH": 0, "ASYNC_STRICT": 0}
    for n in range(2):
        status, _ = await harness.call_async(wire.send_message(service_id="ASYNC_PULL", sender_id="consumer",
                                                               password=PASSWORD, payload=echo_request(f"q{n}")))
        assert status == 200
    # The oldest of the two waited an hour (its row says so): the gauge reads the store at scrape time.
    engine = harness.app.store.engine

    def age_one():
        with engine.begin() as conn:
            oldest = conn.execute(async_messages.select().order_by(async_messages.c.created_at)).first()
            conn.execute(update(async_messages).where(async_messages.c.message_id == oldest.message_id)
                         .values(created_at=utc_now() - timedelta(hours=1)))

    await harness.app.run_in_pool(age_one)
    seen = await scrape(harness)
    assert seen[("shep_async_queue_messages", (("service", "ASYNC_PULL"),))] == 2
    assert 3600 <= seen[("shep_async_queue_oldest_age_seconds", (("service", "ASYNC_PULL"),))] < 3660
    assert seen[("shep_async_queue_oldest_age_seconds", (("service", "ASYNC_PUSH"),))] == 0


@pytest_twisted.ensureDeferred
async def test_health_is_liveness_and_ready_names_its_checks(harness):
    status, raw = await harness.get("/health")
    assert status == 200 and json.loads(raw)["status"] == "ok"
    status, raw = await harness.get("/ready")
    assert status == 200
    assert json.loads(raw) == {"status": "ready", "failed": [], "checks": {"store": "ok", "credentials": "ok"}}


@pytest_twisted.ensureDeferred
async def test_ready_turns_503_while_the_database_is_unreachable(harness):
    if harness.app.test_store.schema:
        pytest.skip("the SQLite variant: test_ready_follows_the_postgresql_server's_reach covers PostgreSQL")
    database = Path(harness.app.store.engine.url.database)
    aside = database.parent / "moved-away"
    aside.mkdir()
    files = [path for path in database.parent.iterdir() if path.name.startswith(database.name)]
    for path in files:
        path.rename(aside / path.name)
    # Where the database was, a directory: SQLite cannot open it. The pooled connections still hold the old
    # file open (SQLite keeps working on an unlinked file), so they go: the next query opens a new one.
    database.mkdir()
    harness.app.store.engine.dispose()
    try:
        status, raw = await harness.get("/ready")
        answer = json.loads(raw)
        assert status == 503, answer
        assert answer["status"] == "not ready" and answer["failed"] == ["store"]
        assert answer["checks"]["store"].startswith("unreachable (OperationalError")
        assert answer["checks"]["credentials"] == "ok"
        seen = await scrape(harness)
        assert seen[("shep_store_up", ())] == 0
    finally:
        database.rmdir()
        for path in files:
            (aside / path.name).rename(path)
    status, raw = await harness.get("/ready")
    assert status == 200, raw


class Relay:
    """A loopback TCP relay to PostgreSQL, in threads of its own (the gateway's constructor talks to the store on
    the reactor's thread), that can be cut (listening stopped, connections dropped) and restored on the same
    port: the database becomes unreachable for real, the gateway unchanged."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = 0
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            server = socket.create_connection(self.target, timeout=5)
            with self.lock:
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        # shutdown first: close() alone leaves a thread blocked in accept() accepting.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def url(self, url: str) -> str:
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)


@pytest_twisted.ensureDeferred
async def test_ready_follows_the_postgresql_server_s_reach(tmp_path, pki):
    if not os.environ.get(URL_VARIABLE):
        pytest.skip(system_tools.reason("postgresql"))
    if os.environ.get(STORE_VARIABLE) != "postgresql":
        pytest.skip(f"runs with {STORE_VARIABLE}=postgresql (make test does, with {URL_VARIABLE} set)")
    target = make_url(os.environ[URL_VARIABLE])
    relay = Relay(target.host, target.port or 5432)
    harness = await start_harness(tmp_path, pki, reach_store=relay.url)
    try:
        status, raw = await harness.get("/ready")
        assert status == 200, raw
        relay.cut()
        status, raw = await harness.get("/ready")
        answer = json.loads(raw)
        assert status == 503 and answer["failed"] == ["store"], answer
        assert answer["checks"]["store"].startswith("unreachable (OperationalError")
        assert (await scrape(harness))[("shep_store_up", ())] == 0
        relay.restore()
        status, raw = await harness.get("/ready")
        assert status == 200, raw
    finally:
        await stop_harness(harness)
        relay.cut()


@pytest_twisted.ensureDeferred
async def test_promtool_accepts_a_real_scrape_and_the_rules(harness):
    tool = system_tools.require("promtool")
    await harness.send(send_message())
    await harness.send(send_message(password="wrong"))
    status, raw = await harness.get("/metrics")
    assert status == 200
    lint = subprocess.run([tool, "check", "metrics"], input=raw, capture_output=True, timeout=30)
    assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), (lint.stdout + lint.stderr)
    rules = subprocess.run([tool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=30)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 2 rules found" in rules.stdout
