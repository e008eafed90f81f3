"""Outbound HTTP to providers (twisted Agent): timeout, size cap, and error → fault mapping."""
from __future__ import annotations

import time
from dataclasses import dataclass

from twisted.internet import defer, error, protocol
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer
from twisted.web import client, http_headers
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived

from gateway.faults import Fault


@dataclass
class ProviderAnswer:
    status: int
    body: bytes
    elapsed: float


class _TooLarge(Exception):
    pass


class _Collect(protocol.Protocol):
    def __init__(self, limit: int, finished: defer.Deferred):
        self.limit = limit
        self.finished = finished
        self.parts: list[bytes] = []
        self.size = 0
        self.too_large = False

    def dataReceived(self, data: bytes) -> None:
        if self.too_large:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.too_large = True
            self.parts = []
            self.transport.stopProducing()
            return
        self.parts.append(data)

    def connectionLost(self, reason) -> None:
        if self.finished.called:
            return
        if self.too_large:
            self.finished.errback(_TooLarge())
        elif reason.check(client.ResponseDone, client.PotentialDataLoss):
            self.finished.callback(b"".join(self.parts))
        else:
            self.finished.errback(reason)


def _read_body(response, limit: int) -> defer.Deferred:
    protocol_ref = []

    def cancel(d):
        if protocol_ref and protocol_ref[0].transport is not None:
            protocol_ref[0].transport.abortConnection()

    finished = defer.Deferred(cancel)
    collector = _Collect(limit, finished)
    protocol_ref.append(collector)
    response.deliverBody(collector)
    return finished


def _classify(url: str, exc: Exception, max_bytes: int) -> Exception:
    if isinstance(exc, _TooLarge):
        return Fault("PROVIDER_RESPONSE_TOO_LARGE", f"answer from {url} exceeds {max_bytes} bytes")
    if isinstance(exc, (error.ConnectError, error.DNSLookupError)):
        return Fault("PROVIDER_UNREACHABLE", f"{url}: {exc.__class__.__name__}: {exc}")
    if isinstance(exc, (ResponseNeverReceived, ResponseFailed)):
        reasons = "; ".join(r.getErrorMessage() for r in exc.reasons)
        return Fault("PROVIDER_UNREACHABLE", f"{url}: connection closed before a complete answer ({reasons})")
    return exc


class Forwarder:
    """POSTs a SOAP message to a provider endpoint; raises catalogue faults for transport failures."""

    def __init__(self, reactor, *, persistent: bool = True, connections_per_host: int = 2):
        self.reactor = reactor
        self.pool = client.HTTPConnectionPool(reactor, persistent=persistent)
        # A push round talks to one receiver many times at once: keep that many connections open.
        self.pool.maxPersistentPerHost = connections_per_host
        self.agent = client.Agent(reactor, connectTimeout=None, pool=self.pool)

    async def post(self, url: str, body: bytes, *, timeout: float, max_bytes: int,
                   headers: dict[bytes, bytes] | None = None) -> ProviderAnswer:
        start = time.perf_counter()
        exchange = defer.Deferred.fromCoroutine(self._exchange(url, body, max_bytes, headers or {}))
        # A cancelled exchange fails with whatever the Agent makes of it (often ResponseNeverReceived),
        # so the timer itself tells whether the timeout fired.
        timer = self.reactor.callLater(timeout, exchange.cancel)
        try:
            status, answer = await exchange
        except Exception as exc:
            if not timer.active():
                raise Fault("PROVIDER_TIMEOUT", f"no answer from {url} within {timeout:g} s") from None
            raise _classify(url, exc, max_bytes) from None
        finally:
            if timer.active():
                timer.cancel()
        return ProviderAnswer(status, answer, time.perf_counter() - start)

    async def _exchange(self, url: str, body: bytes, max_bytes: int, extra: dict[bytes, bytes]) -> tuple[int, bytes]:
        headers = http_headers.Headers({b"Content-Type": [b"text/xml; charset=utf-8"], b"SOAPAction": [b'""'],
                                        **{name: [value] for name, value in extra.items()}})
        response = await self.agent.request(b"POST", url.encode("ascii"), headers, _BytesProducer(body))
        return response.code, await _read_body(response, max_bytes)

    def close(self) -> defer.Deferred:
        return self.pool.closeCachedConnections()


@implementer(IBodyProducer)
class _BytesProducer:
    """A body producer for bytes already in memory (FileBodyProducer would go through a thread cooperator)."""

    def __init__(self, body: bytes):
        self.body = body
        self.length = len(body)

    def startProducing(self, consumer):
        consumer.write(self.body)
        return defer.succeed(None)

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass
