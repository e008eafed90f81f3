"""The site's connection limits over real sockets: a header deadline a trickling client cannot stretch, an
idle timeout, and a cap on one client address's concurrent connections."""
from __future__ import annotations

import socket
import time

import pytest_twisted
from twisted.internet import threads

from tests.conftest import send_message, start_harness, stop_harness

LIMITS = dict(http_header_timeout_seconds=0.5, http_idle_timeout_seconds=1.0, max_connections_per_client=3)


def _address(harness) -> tuple[str, int]:
    return "127.0.0.1", harness.app.port.getHost().port


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `sock` (None if it stayed open for `seconds`)."""
    sock.settimeout(0.05)
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    return None


def _trickle(address) -> float | None:
    """Headers one byte every 0.1 s, for up to 4 s: the idle timeout alone would never fire."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"POST /bip-sync/ HTTP/1.1\r\nHost: localhost\r\n")
        started = time.monotonic()
        for byte in b"X-Slow: " + b"a" * 40:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return time.monotonic() - started
            if _closed_within(sock, 0.1) is not None:
                return time.monotonic() - started
        return None


def _request(address, body: bytes) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"POST /bip-sync/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest_twisted.ensureDeferred
async def test_trickled_headers_are_cut_off_and_normal_requests_pass(tmp_path, pki):
    harness = await start_harness(tmp_path, pki, **LIMITS)
    try:
        cut = await threads.deferToThread(_trickle, _address(harness))
        assert cut is not None and cut < 2.0, cut  # the 0.5 s deadline, not the 4 s the client would take
        answer = await threads.deferToThread(_request, _address(harness), send_message())
        assert answer.startswith(b"HTTP/1.1 200") and b"SCSS001" in answer
    finally:
        await stop_harness(harness)


@pytest_twisted.ensureDeferred
async def test_idle_connections_close_and_one_client_holds_a_bounded_number(tmp_path, pki):
    harness = await start_harness(tmp_path, pki, **LIMITS)
    address = _address(harness)

    def scenario():
        idle = socket.create_connection(address, timeout=5)
        closed_after = _closed_within(idle, 3.0)
        idle.close()
        held = [socket.create_connection(address, timeout=5) for _ in range(3)]
        extra = socket.create_connection(address, timeout=5)  # accepted by the kernel, closed by the site
        refused_after = _closed_within(extra, 0.5)
        extra.close()
        held.pop().close()
        time.sleep(0.1)
        answer = _request(address, send_message())
        for sock in held:
            sock.close()
        return closed_after, refused_after, answer

    try:
        closed_after, refused_after, answer = await threads.deferToThread(scenario)
        assert closed_after is not None and 0.8 <= closed_after < 2.5, closed_after
        assert refused_after is not None and refused_after < 0.3, refused_after
        assert b"SCSS001" in answer  # a place freed is a place taken
    finally:
        await stop_harness(harness)
