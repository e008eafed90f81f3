"""Connection limits of the gateway's site: a deadline for a request's headers, an idle timeout, and a cap
on concurrent connections per client address (a slow-header or connection-flooding client would otherwise
hold the server's sockets for as long as it likes)."""
from __future__ import annotations

import logging
from collections import Counter

from twisted.web import http

log = logging.getLogger("shep.web")


class GuardedChannel(http.HTTPChannel):
    """An HTTP/1.1 channel whose request headers must be complete within the site's `header_timeout`
    seconds of their first byte; trickling them (which resets the idle timeout) does not help."""

    _deadline = None
    _awaiting_headers = True

    def dataReceived(self, data: bytes) -> None:
        if self._awaiting_headers and self._deadline is None and self.site.header_timeout:
            self._deadline = self.callLater(self.site.header_timeout, self._headers_too_slow)
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self._cancel_deadline()
        self._awaiting_headers = False
        super().allHeadersReceived()

    def requestDone(self, request) -> None:
        super().requestDone(request)
        self._awaiting_headers = True  # a kept-alive connection: the next request's headers, when they come

    def _headers_too_slow(self) -> None:
        self._deadline = None
        log.warning("headers from %s not complete within %s s: connection closed",
                    self.transport.getPeer().host, self.site.header_timeout)
        self.transport.abortConnection()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def connectionLost(self, reason) -> None:
        self._cancel_deadline()
        self.site.release(self.transport.getPeer())
        super().connectionLost(reason)


class ConnectionLimits:
    """The per-client count the site keeps, with its limits (set by the composition root)."""

    header_timeout: float = 10.0
    max_connections_per_client: int = 128

    def __init__(self):
        self._open: Counter[str] = Counter()

    def admit(self, addr) -> bool:
        host = getattr(addr, "host", None)
        if host is not None and self._open[host] >= self.max_connections_per_client:
            log.warning("%s has %d connections open: one more refused", host, self._open[host])
            return False
        if host is not None:
            self._open[host] += 1
        return True

    def release(self, addr) -> None:
        host = getattr(addr, "host", None)
        if host is not None and self._open[host]:
            self._open[host] -= 1
            if not self._open[host]:
                del self._open[host]
