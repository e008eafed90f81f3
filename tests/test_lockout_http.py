"""Guessing is stopped (issue 13), through real HTTP: a participant's wrong passwords lock it out for a while
(SHEP-142), a locked-out sender costs no PBKDF2 run, and the passwords not verified before are hashed in a pool
of their own, so a sender whose password is known stays fast while another one's is guessed."""
from __future__ import annotations

import http.client
import statistics
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import pytest_twisted
from twisted.internet import threads

from gateway import passwords
from gateway.passwords import hash_password
from gateway.registry import Participant
from tests.conftest import PASSWORD, send_message, start_harness, stop_harness, utc_now

VICTIM = "victim"
# The default iteration count: what a guess really costs (~0.1 s of a core).
VICTIM_HASH = hash_password("victim-secret")
GUESSERS = 20
LEGITIMATE_CALLS = 50
# Starved, the legitimate sender's p99 was 2.7 s; served apart from the guesses, 13–16 ms (docs/security.md). The
# limit sits between the two with room for a loaded CI machine (it once measured 111 ms against 16 ms alone):
# the figure itself is the benchmark's to show, this test tells the two designs apart.
P99_LIMIT = 0.25


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100, method="inclusive")[98]


@pytest.fixture
def hashes(monkeypatch) -> list[str]:
    """The PBKDF2 runs the gateway makes (the participants' passwords), by the password tried."""
    runs: list[str] = []
    real = passwords.verify_password

    def counted(plain, encoded):
        runs.append(plain)
        return real(plain, encoded)
    monkeypatch.setattr(passwords, "verify_password", counted)
    return runs


@pytest_twisted.ensureDeferred
async def test_sixth_wrong_password_is_locked_out_and_the_right_one_waits_for_the_end(tmp_path, pki, hashes):
    harness = await start_harness(tmp_path, pki, lockout_attempts=5, lockout_minutes=15, lockout_delay_seconds=0.2)
    try:
        started = time.perf_counter()
        reply = await harness.send(send_message(password="wrong-0"))
        assert reply.fault["errorCode"] == "SHEP-141" and time.perf_counter() - started >= 0.2, "answered late"
        for attempt in range(1, 4):
            reply = await harness.send(send_message(password=f"wrong-{attempt}"))
            assert reply.fault["errorCode"] == "SHEP-141", attempt
        # The fifth wrong password locks the sender out; the sixth and the right one are refused unhashed.
        fifth = await harness.send(send_message(password="wrong-5"))
        assert fifth.fault["errorCode"] == "SHEP-142" and "locked until" in fifth.fault["errorData"]
        assert len(hashes) == 5
        for password in ("wrong-6", PASSWORD):
            reply = await harness.send(send_message(password=password))
            assert reply.fault["errorCode"] == "SHEP-142", password
        assert len(hashes) == 5, "a locked-out sender must cost no PBKDF2 run"

        # A minute before the end: still locked; after it, the right password is accepted again.
        almost = utc_now() + timedelta(minutes=14)
        harness.app.env.clock = lambda: almost
        reply = await harness.send(send_message(message_date=almost.isoformat()))
        assert reply.fault["errorCode"] == "SHEP-142"
        later = utc_now() + timedelta(minutes=16)
        harness.app.env.clock = lambda: later
        reply = await harness.send(send_message(message_date=later.isoformat()))
        assert reply.ok, reply.fault
        # The success forgot the failures: four more wrong passwords do not lock it out again.
        for attempt in range(4):
            reply = await harness.send(send_message(password=f"wrong-{attempt}", message_date=later.isoformat()))
            assert reply.fault["errorCode"] == "SHEP-141"
    finally:
        await stop_harness(harness)


@pytest_twisted.ensureDeferred
async def test_the_lockout_is_kept_in_the_store_for_every_worker(tmp_path, pki):
    harness = await start_harness(tmp_path, pki, lockout_attempts=2, lockout_delay_seconds=0.01)
    try:
        for _ in range(2):
            await harness.send(send_message(password="wrong"))
        # Another worker process: no memory of this one, only the store.
        assert (await harness.app.run_in_pool(harness.app.store.login_state, "consumer"))[1] > utc_now()
        harness.app.env.passwords = passwords.PasswordVerifier(run=harness.app.env.passwords._run)
        reply = await harness.send(send_message())
        assert reply.fault["errorCode"] == "SHEP-142"
    finally:
        await stop_harness(harness)


def _post(url, body: bytes) -> float:
    address = urlsplit(url)
    started = time.perf_counter()
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request("POST", address.path, body=body, headers={"Content-Type": "text/xml; charset=utf-8"})
        response = connection.getresponse()
        response.read()
        assert response.status in (200, 500)
    finally:
        connection.close()
    return time.perf_counter() - started


def _legitimate(url: str, pause: float = 0.0) -> list[float]:
    latencies = []
    for _ in range(LEGITIMATE_CALLS):
        latencies.append(_post(url, send_message()))
        time.sleep(pause)
    return latencies


def _under_guessing(url: str, guesses: list[int]) -> list[float]:
    """The legitimate sender's latencies while GUESSERS threads guess the victim's password (each at most
    100 guesses, stopped once the legitimate calls are done)."""
    stop = threading.Event()

    def guess(number: int) -> None:
        body = send_message(sender_id=VICTIM, password=f"guess-{number}")
        for _ in range(100):
            if stop.is_set():
                return
            _post(url, body)
            guesses[number] += 1

    guessers = [threading.Thread(target=guess, args=(n,), daemon=True) for n in range(GUESSERS)]
    for thread in guessers:
        thread.start()
    try:
        time.sleep(0.5)  # the guesses are queued before the first legitimate call
        # Spread over a few seconds: several rounds of guesses, delayed refusals included.
        return _legitimate(url, pause=0.05)
    finally:
        stop.set()
        for thread in guessers:
            thread.join(timeout=60)


# All guessers share the legitimate sender's address (loopback): the address lockout is as far off as the sender's.
@pytest.mark.parametrize("attempts", [5, 10**9], ids=["locked-out-after-5", "every-guess-hashed"])
@pytest_twisted.ensureDeferred
async def test_legitimate_p99_stays_low_while_another_sender_is_guessed(tmp_path, pki, attempts, hashes):
    harness = await start_harness(tmp_path, pki, participants=[Participant(VICTIM, VICTIM_HASH, None)],
                                  lockout_attempts=attempts, address_lockout_attempts=attempts)
    try:
        baseline = p99(await threads.deferToThread(_legitimate, harness.url))  # consumer verified from now on
        guesses = [0] * GUESSERS
        latencies = await threads.deferToThread(_under_guessing, harness.url, guesses)
    finally:
        await stop_harness(harness)
    loaded = p99(latencies)
    victim_hashes = sum(plain.startswith("guess-") for plain in hashes)
    print(f"\nlockout_attempts={attempts}: legitimate p99 {loaded * 1000:.1f} ms under {sum(guesses)} guesses "
          f"({victim_hashes} hashed), {baseline * 1000:.1f} ms alone; max {max(latencies) * 1000:.1f} ms")
    assert sum(guesses) >= GUESSERS
    assert loaded < max(P99_LIMIT, 5 * baseline), (loaded, baseline)
    if attempts == 5:
        # Only the guesses already past identify_sender when the lockout began are hashed.
        assert victim_hashes <= 5 + GUESSERS


@pytest_twisted.ensureDeferred
async def test_guesses_spread_over_senders_lock_out_the_address_but_not_senders_verified_before(
        tmp_path, pki, hashes):
    """Each sender stays below its own limit; their sum from one client address locks the address: no new
    password is tried from it (SHEP-143, no PBKDF2 run), while a sender verified before goes on."""
    others = [Participant(f"guessed-{i}", hash_password(f"secret-{i}", iterations=1000), None) for i in range(4)]
    harness = await start_harness(tmp_path, pki, participants=others, address_lockout_attempts=4,
                                  address_lockout_minutes=15, lockout_delay_seconds=0.01)
    try:
        assert (await harness.send(send_message())).ok  # consumer: verified before from now on
        for i in range(3):
            reply = await harness.send(send_message(sender_id=f"guessed-{i}", password="guess"))
            assert reply.fault["errorCode"] == "SHEP-141", i
        fourth = await harness.send(send_message(sender_id="guessed-3", password="guess"))
        assert fourth.fault["errorCode"] == "SHEP-143" and "127.0.0.1" in fourth.fault["errorData"]
        runs = len(hashes)
        # The right password of a sender never verified: refused unhashed while the address is locked out.
        reply = await harness.send(send_message(sender_id="guessed-0", password="secret-0"))
        assert reply.fault["errorCode"] == "SHEP-143" and len(hashes) == runs
        assert (await harness.send(send_message())).ok
        # After the lockout the right password is tried again (and passes authentication: ECHO then refuses
        # guessed-0 access, SHEP-153).
        later = utc_now() + timedelta(minutes=16)
        harness.app.env.clock = lambda: later
        reply = await harness.send(send_message(sender_id="guessed-0", password="secret-0",
                                                message_date=later.isoformat()))
        assert reply.fault["errorCode"] == "SHEP-153" and len(hashes) == runs + 1
    finally:
        await stop_harness(harness)
