"""A store outage over real HTTP: the sender gets SHEP-299, and a resend under the same messageId once the store is
back returns the original outcome, with nothing forwarded or queued twice.

The outage is real: the store's engine is pointed at a database that cannot be opened (SQLite) or a port where no
server listens (PostgreSQL), then given back.
"""
from __future__ import annotations

import socket
from contextlib import contextmanager

import pytest_twisted
import sqlalchemy
from lxml import etree

from gateway.asyncchannel import wire
from tests.conftest import PASSWORD, echo_request, send_message, start_harness, stop_harness


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unreachable(engine: sqlalchemy.Engine) -> sqlalchemy.Engine:
    if engine.dialect.name == "sqlite":
        return sqlalchemy.create_engine("sqlite:////nonexistent-shep-outage/shep.db")
    return sqlalchemy.create_engine(engine.url.set(host="127.0.0.1", port=_closed_port()),
                                    connect_args={"connect_timeout": 2})


class Outage:
    """Turns the harness's store off and on."""

    def __init__(self, harness):
        self.store = harness.app.store
        self.working = self.store.engine
        self.broken = _unreachable(self.working)

    def start(self) -> None:
        self.store.engine = self.broken

    def end(self) -> None:
        self.store.engine = self.working

    def when_the_provider_answers(self, stub) -> None:
        """The store goes down while the provider answers (the stub echoes)."""
        def answer_then_fail(raw: bytes):
            self.start()
            return stub.echo(raw)
        stub.answer = answer_then_fail

    @contextmanager
    def after_the_replay_check(self):
        """The store goes down right after reject_replay has read it (and is back, as before, on leaving)."""
        judged = self.store.first_seen

        def judge_then_fail(*args):
            seen = judged(*args)
            self.start()
            return seen
        self.store.first_seen = judge_then_fail
        try:
            yield
        finally:
            self.store.first_seen = judged
            self.end()


def _fault(body: bytes) -> tuple[str, str]:
    root = etree.fromstring(body)
    return root.findtext(".//faultcode") or "", root.findtext(".//errorData") or root.findtext(".//faultstring") or ""


def _code(body: bytes) -> str:
    return etree.fromstring(body).findtext(".//errorCode") or ""


def _session_hops(journal, session_id: str) -> list[tuple[str, str | None, int | None]]:
    return [(r["hop"], r["fault_code"], r["http_status"]) for r in journal.query(session_id=session_id)]


@pytest_twisted.ensureDeferred
async def test_a_resend_after_the_store_failed_behind_the_provider_gets_the_providers_answer(tmp_path, pki):
    harness = await start_harness(tmp_path, pki)
    outage = Outage(harness)
    try:
        outage.when_the_provider_answers(harness.stub)
        request = send_message(message_id="resend-me", payload=echo_request("held through the outage"))

        status, body = await harness.post(request)
        assert status == 500 and _code(body) == "SHEP-299", body
        assert b"same messageId" in body
        assert harness.app.journal.held == 2  # the provider's answer and the SHEP-299 the sender got

        # Still down: the resend cannot be judged, and reaches nobody.
        status, body = await harness.post(request)
        assert status == 500 and _code(body) == "SHEP-299"
        outage.end()

        status, body = await harness.post(request)
        assert status == 200, body
        assert b"held through the outage" in body and b"provider-resend-me" in body
        assert len(harness.stub.received) == 1  # the provider was called once
        assert harness.app.journal.held == 0

        journal = harness.app.journal
        first_session = journal.query(message_id="resend-me")[0]["session_id"]
        assert _session_hops(journal, first_session) == [
            ("request-in", None, None), ("request-out", None, None), ("response-in", None, 200),
            ("response-out", "SHEP-299", 500)]
        resend = [r for r in journal.query(message_id="resend-me") if r["session_id"] != first_session]
        assert [(r["hop"], r["fault_code"], r["http_status"]) for r in resend] == [
            ("request-in", None, None), ("response-out", None, 200)]
        note = next(v for v in resend[0]["verdicts"] if v["check"] == "reject_replay")
        assert note["verdict"] == "pass" and first_session in note["detail"]
        assert journal.verify().ok

        # The sender has its answer now: the same messageId again is a replay.
        status, body = await harness.post(request)
        assert status == 500 and _code(body) == "SHEP-160"
        assert len(harness.stub.received) == 1
    finally:
        outage.end()
        await stop_harness(harness)


@pytest_twisted.ensureDeferred
async def test_held_answers_are_recorded_when_the_store_is_back_without_a_resend(tmp_path, pki):
    harness = await start_harness(tmp_path, pki)
    outage = Outage(harness)
    try:
        outage.when_the_provider_answers(harness.stub)
        status, body = await harness.post(send_message(message_id="flushed"))
        assert status == 500 and _code(body) == "SHEP-299"
        outage.end()
        harness.stub.answer = harness.stub.echo
        # Any later message records the held hops first.
        status, _ = await harness.post(send_message(message_id="after"))
        assert status == 200
        hops = [(r["message_id"], r["hop"]) for r in harness.app.journal.query()]
        assert hops.index(("flushed", "response-in")) < hops.index(("after", "request-in"))
        assert harness.app.journal.verify().ok
    finally:
        outage.end()
        await stop_harness(harness)


@pytest_twisted.ensureDeferred
async def test_a_request_the_store_failed_to_accept_is_accepted_once_when_resent(tmp_path, pki):
    """The store fails between the replay check and the acceptance: nothing is recorded, so the resend is not a
    replay; it is forwarded once, and a further copy is a replay."""
    harness = await start_harness(tmp_path, pki)
    request = send_message(message_id="not-yet-accepted")
    try:
        with Outage(harness).after_the_replay_check():
            status, body = await harness.post(request)
            assert status == 500 and _code(body) == "SHEP-299"
        assert harness.stub.received == []

        status, body = await harness.post(request)
        assert status == 200, body
        status, body = await harness.post(request)
        assert status == 500 and _code(body) == "SHEP-160"
        assert len(harness.stub.received) == 1
    finally:
        await stop_harness(harness)


@pytest_twisted.ensureDeferred
async def test_an_async_message_the_store_failed_to_queue_is_queued_once_when_resent(tmp_path, pki):
    harness = await start_harness(tmp_path, pki)
    request = wire.send_message(service_id="ASYNC_PULL", sender_id="consumer", password=PASSWORD,
                                message_id="queued-once", payload=echo_request())
    try:
        with Outage(harness).after_the_replay_check():
            status, answer = await harness.call_async(request)
            assert status == 500 and answer.findtext(".//errorCode") == "SHEP-299"
        assert harness.app.queue.list(service_id="ASYNC_PULL") == []

        status, answer = await harness.call_async(request)
        assert status == 200, etree.tostring(answer)
        status, answer = await harness.call_async(request)
        assert status == 500 and answer.findtext(".//errorCode") == "SHEP-160"
        assert len(harness.app.queue.list(service_id="ASYNC_PULL")) == 1
    finally:
        await stop_harness(harness)
