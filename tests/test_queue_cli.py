"""`shep queue list | stop | retry` as a user runs it, against a state dir filled through AsyncQueue."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.asyncchannel.queue import (DELIVERED, DELIVERY_STOPPED, NOT_DELIVERED, ON_DELIVERY, STATES, STATUS,
                                        AsyncQueue, QueuedMessage)
from gateway.journal import Journal
from gateway.store import Store
from tests.conftest import utc_now

SHEP = Path(sys.executable).with_name("shep")


def shep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SHEP), "queue", *args], capture_output=True, text=True, encoding="utf-8", timeout=60,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def _message(message_id: str, *, service_id="ASYNC_PULL", sender="consumer", recipient="clinic", delivery="pull",
             attempts=0) -> QueuedMessage:
    now = utc_now()
    code, text = STATUS[ON_DELIVERY]
    return QueuedMessage(message_id=message_id, correlation_id=f"c-{message_id}", service_id=service_id,
                         message_type="REQUEST", sender_id=sender, recipient_id=recipient, delivery=delivery,
                         state=ON_DELIVERY, status_code=code, status_message=text, session_id="{s}",
                         created_at=now, updated_at=now, expires_at=None, due_at=now + timedelta(seconds=30),
                         attempts=attempts, last_error=None, message=b"<message/>")


@pytest.fixture
def state(tested_store):
    """(the options that point `shep queue` at the store under test, its queue) with four messages: m-pull and
    m-push on delivery, m-done delivered, m-refused not delivered."""
    store = Store(tested_store.url)
    store.create_schema()
    queue = AsyncQueue(store, Journal(store))
    queue.accept(_message("m-pull", attempts=3), [])
    queue.accept(_message("m-push", service_id="ASYNC_PUSH", recipient="pusher", delivery="push", attempts=4), [])
    queue.accept(_message("m-done"), [])
    queue.accept(_message("m-refused", sender="clinic", recipient="consumer"), [])
    queue.acknowledge("m-done", "clinic", accepted=True, resend=False, now=utc_now(), error=None)
    queue.acknowledge("m-refused", "consumer", accepted=False, resend=False, now=utc_now(), error="BAD: unreadable")
    yield tested_store.cli_args, queue
    store.close()


def listed(options: list[str], *filters: str) -> list[dict]:
    result = shep("list", *options, "--json", *filters)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_list_filters(state):
    options, _ = state
    assert [m["message_id"] for m in listed(options)] == ["m-pull", "m-push", "m-done", "m-refused"]
    assert [m["message_id"] for m in listed(options, "--state", ON_DELIVERY)] == ["m-pull", "m-push"]
    assert [m["message_id"] for m in listed(options, "--state", DELIVERED)] == ["m-done"]
    assert [m["message_id"] for m in listed(options, "--service-id", "ASYNC_PUSH")] == ["m-push"]
    assert [m["message_id"] for m in listed(options, "--participant", "pusher")] == ["m-push"]
    assert [m["message_id"] for m in listed(options, "--limit", "1")] == ["m-pull"]
    [refused] = listed(options, "--state", NOT_DELIVERED)
    assert (refused["sender_id"], refused["last_error"], refused["status_code"]) == ("clinic", "BAD: unreadable",
                                                                                    "ASYNC-400")
    assert "message" not in refused  # the bytes stay in the store

    text = shep("list", *options, "--state", NOT_DELIVERED)
    assert text.returncode == 0
    assert "m-refused NOT_DELIVERED" in text.stdout and "last error: BAD: unreadable" in text.stdout
    assert text.stdout.rstrip().endswith("1 message(s)")


def test_stop_is_journalled(state):
    options, queue = state
    result = shep("stop", "m-push", "--reason", "provider decommissioned", *options)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("m-push DELIVERY_STOPPED (ASYNC-500")
    stopped = queue.status("m-push", "consumer")
    assert (stopped.state, stopped.last_error) == (DELIVERY_STOPPED, "provider decommissioned")
    transitions = [r for r in queue.journal.query(message_id="m-push") if r["hop"] == "state"]
    assert "ON_DELIVERY → DELIVERY_STOPPED: provider decommissioned" in transitions[-1]["verdicts"][0]["detail"]
    assert queue.journal.verify().ok


def test_retry_puts_it_back_on_delivery(state):
    options, queue = state
    assert shep("stop", "m-pull", *options).returncode == 0
    result = shep("retry", "m-pull", *options)
    assert result.returncode == 0, result.stderr
    retried = queue.status("m-pull", "consumer")
    assert (retried.state, retried.attempts, retried.last_error) == (ON_DELIVERY, 0, None)
    assert retried.due_at <= utc_now()
    details = [r["verdicts"][0]["detail"] for r in queue.journal.query(message_id="m-pull") if r["hop"] == "state"]
    assert details[-2:] == ["ON_DELIVERY → DELIVERY_STOPPED: stopped with shep queue stop",
                            "DELIVERY_STOPPED → ON_DELIVERY: retry requested by an operator"]
    # A refused message can be retried too.
    assert shep("retry", "m-refused", *options).returncode == 0
    assert queue.status("m-refused", "consumer").state == ON_DELIVERY


@pytest.mark.parametrize("args, error", [
    (("stop", "no-such"), "shep queue stop: no message no-such in the queue"),
    (("retry", "no-such"), "shep queue retry: no message no-such in the queue"),
    (("stop", "m-done"), "shep queue stop: message m-done is DELIVERED"),
    (("retry", "m-done"), "shep queue retry: message m-done is already DELIVERED"),
    (("list", "--state", "LOST"), "shep queue list: --state must be one of " + ", ".join(STATES)),
])
def test_errors_are_one_line(state, args, error):
    options, queue = state
    result = shep(*args, *options)
    assert result.returncode == 2
    # After the line saying where the state (or the store) is, when the command got that far.
    said = [line for line in result.stderr.splitlines() if not line.startswith(("state dir: ", "store: "))]
    assert said == [error] and result.stdout == "", result.stderr
    assert queue.status("m-done", "clinic").state == DELIVERED


def test_help_names_every_state():
    help_text = shep("list", "--help").stdout
    assert all(state in help_text for state in STATES)
