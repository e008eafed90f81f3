"""Crash safety of the AsyncChannel: nothing the gateway acknowledged is lost across a SIGKILL.

A real `shep serve` pushes to a slow in-test IAsyncChannelClient receiver (a plain ThreadingHTTPServer,
no Twisted here) while client threads keep sending. When about a third of the messages have reached
the receiver the gateway is killed with SIGKILL, then restarted on the same store. Every messageId
the gateway answered with HTTP 200 `sendMessageResponse` must then reach the receiver at least once
(at-least-once delivery: duplicates are allowed and reported), end DELIVERED in the store with the
journal's last transition saying the same, and the journal's hash chain must still verify. The sender
has a client endpoint too (the same receiver), so `changeMassageStatusNotification`s are in the mix.

Every wait is bounded; the test talks to 127.0.0.1 only.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.async_traffic import Receiver, Senders, assert_journal_agrees, async_config, wait_delivered, wait_received
from tests.serve_process import ServeProcess, shep

MESSAGES = 300
CLIENT_THREADS = 4
PUSH_DELAY = 0.03  # the receiver's think time per push: delivery is still going on at the kill
KILL_FRACTION = 3  # kill once MESSAGES // KILL_FRACTION messages have been received
START_TIMEOUT = 30
SEND_TIMEOUT = 10
KILL_WAIT = 30  # for the receiver to reach the kill threshold
DELIVERY_WAIT = 90  # after the restart, for every acknowledged message to arrive
STORE_WAIT = 30  # after that, for the store to record them DELIVERED (leases of the killed process lapse first)


def write_config(path: Path, receiver_url: str) -> None:
    path.write_text(async_config(receiver_url, async_push_interval_seconds=0.2, async_retry_base_seconds=0.2,
                                 async_retry_max_seconds=1, async_push_timeout_seconds=5, async_max_attempts=50),
                    "utf-8")


# -- the test -------------------------------------------------------------------------------------

def test_sigkill_loses_no_acknowledged_message(tmp_path, tested_store):
    config = tmp_path / "crash.toml"
    log = tmp_path / "serve.log"
    receiver = Receiver(PUSH_DELAY)
    receiver.start()
    servers: list[ServeProcess] = []
    senders: Senders | None = None
    try:
        write_config(config, receiver.url)

        # 1. Send while the gateway pushes; SIGKILL it once a third has reached the receiver.
        first = ServeProcess("--config", str(config), "--port", "0", *tested_store.cli_args,
                              "--log-level", "WARNING", cwd=tmp_path, log=log)
        servers.append(first)
        base = first.wait_listening(START_TIMEOUT)
        started = time.monotonic()
        senders = Senders(f"{base}/bip-async/", messages=MESSAGES, threads=CLIENT_THREADS,
                          send_timeout=SEND_TIMEOUT)
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
        verify = shep("journal", "verify", *tested_store.cli_args, cwd=tmp_path)
        assert verify.returncode == 0, f"journal broken by SIGKILL: {verify.stdout}{verify.stderr}"

        # 2. Restart on the same store: everything acknowledged must arrive.
        second = ServeProcess("--config", str(config), "--port", "0", *tested_store.cli_args,
                              "--log-level", "WARNING", cwd=tmp_path, log=log)
        servers.append(second)
        second.wait_listening(START_TIMEOUT)
        restarted = time.monotonic()
        wait_received(receiver, set(acknowledged), second, restarted + DELIVERY_WAIT,
                      f"within {DELIVERY_WAIT} s of the restart")
        all_arrived = time.monotonic()

        # 3. The store agrees: every accepted row, acknowledged or not, ends DELIVERED.
        states = wait_delivered(tested_store.url, set(acknowledged), second, time.monotonic() + STORE_WAIT,
                                f"after {STORE_WAIT} s")
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

        assert_journal_agrees(tested_store.url, states)

        verify = shep("journal", "verify", *tested_store.cli_args, cwd=tmp_path)
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
