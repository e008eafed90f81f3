"""twisted.web resources of the gateway: the SOAP endpoint, its contract files, /api, /health, /ready, /metrics."""
from __future__ import annotations

import os
import json
import logging
from datetime import datetime, timezone

from twisted.internet import defer
from twisted.web import resource, server

from gateway.faults import catalogue_json
from gateway.journal import VERDICTS
from gateway.channel import Channel, Inbound, Reply
from gateway.web import contract_files
from gateway.web.contract_files import base_url
from gateway.web.connections import ConnectionLimits, GuardedChannel
from gateway.web.body import read_body

log = logging.getLogger("shep.web")
access = logging.getLogger("shep.access")
XML = b"text/xml; charset=utf-8"


class GatewaySite(ConnectionLimits, server.Site):
    """A Site whose access log is a JSON line carrying the sessionId of the message, if any, and whose
    connections are limited (`gateway.web.connections`)."""

    protocol = GuardedChannel  # HTTP/1.1 only: no HTTP/2 negotiation on this site

    def __init__(self, *args, **kwargs):
        ConnectionLimits.__init__(self)
        server.Site.__init__(self, *args, **kwargs)

    def buildProtocol(self, addr):
        return super().buildProtocol(addr) if self.admit(addr) else None

    def log(self, request: server.Request) -> None:
        access.info("%s %s %s", request.method.decode("ascii", "replace"),
                    request.uri.decode("utf-8", "replace"), request.code,
                    extra={"session_id": getattr(request, "shep_session_id", None),
                           "status": request.code, "bytes": request.sentLength,
                           "client": request.getClientAddress().host})


def _finish(request: server.Request, deferred: defer.Deferred, render_reply) -> int:
    def done(reply):
        if not request._disconnected:
            render_reply(request, reply)
            request.finish()

    def failed(failure):
        log.error("unhandled failure: %s", failure.getTraceback())
        if not request._disconnected:
            request.setResponseCode(500)
            request.finish()

    deferred.addCallback(done).addErrback(failed)
    return server.NOT_DONE_YET


def _write_reply(request: server.Request, reply: Reply) -> None:
    request.shep_session_id = reply.session_id
    request.setResponseCode(reply.status)
    request.setHeader(b"Content-Type", XML)
    request.write(reply.body)


class ChannelResource(resource.Resource):
    """A channel's address (`/bip-sync/`, `/bip-async/`, the WS-Security ones): POST the operations; GET ?wsdl,
    ?wsdl=<file>, ?xsd=<file>."""

    isLeaf = True

    def __init__(self, channel: Channel, tracker: "InFlight", *, path: str, wsdl: str, wss: bool = False):
        super().__init__()
        self.channel = channel
        self.wsdl = wsdl
        self.tracker = tracker
        self.path = path
        self.wss = wss

    def render_GET(self, request: server.Request):
        document = contract_files.serve(request, base_url(request) + self.path, self.wsdl)
        return self._handle(request) if document is None else document

    def render(self, request: server.Request):
        if request.method in (b"GET", b"HEAD"):
            return super().render(request)
        # Every other method goes through the pipeline, which refuses all but POST (and journals it).
        return self._handle(request)

    def _handle(self, request: server.Request):
        raw = read_body(request)
        inbound = Inbound(raw=raw or b"", content_type=request.getHeader("content-type"), body_too_large=raw is None,
                          method=request.method.decode("ascii", "replace"), wss_endpoint=self.wss,
                          client_address=getattr(request.getClientAddress(), "host", None), address=self.path)
        deferred = self.tracker.track(defer.Deferred.fromCoroutine(self.channel.handle(inbound)))
        return _finish(request, deferred, _write_reply)


class InFlight:
    """Counts requests being handled, so shutdown can wait for them to finish and be journalled."""

    def __init__(self) -> None:
        self.count = 0
        self._idle: list[defer.Deferred] = []

    def track(self, deferred: defer.Deferred) -> defer.Deferred:
        self.count += 1

        def done(result):
            self.count -= 1
            if self.count == 0:
                waiting, self._idle = self._idle, []
                for waiter in waiting:
                    waiter.callback(None)
            return result

        return deferred.addBoth(done)

    def wait_idle(self) -> defer.Deferred:
        if self.count == 0:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._idle.append(waiter)
        return waiter


def _json(request: server.Request, payload, status: int = 200) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
    return json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8")


class FaultsResource(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        return _json(request, {"faults": catalogue_json()})


_JOURNAL_PARAMS = {"messageId": "message_id", "sessionId": "session_id", "serviceId": "service_id",
                   "sender": "sender"}


class JournalResource(resource.Resource):
    """`GET /api/journal?messageId=&sessionId=&serviceId=&sender=&since=&until=&verdict=&limit=&body=1`."""

    isLeaf = True

    def __init__(self, journal, run_in_pool):
        super().__init__()
        self.journal = journal
        self.run_in_pool = run_in_pool

    def render_GET(self, request):
        try:
            query = self._query(request.args)
        except ValueError as exc:
            return _json(request, {"error": str(exc)}, 400)
        deferred = self.run_in_pool(lambda: self.journal.query(**query))
        return _finish(request, deferred,
                       lambda req, records: req.write(_json(req, {"records": records, "count": len(records)})))

    @staticmethod
    def _query(args) -> dict:
        known = set(_JOURNAL_PARAMS) | {"since", "until", "verdict", "limit", "body"}
        unknown = sorted(k.decode("utf-8", "replace") for k in args if k.decode("utf-8", "replace") not in known)
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        value = {k.decode(): v[0].decode("utf-8", "replace") for k, v in args.items()}
        query = {_JOURNAL_PARAMS[k]: v for k, v in value.items() if k in _JOURNAL_PARAMS}
        for name in ("since", "until"):
            if name in value:
                query[name] = instant(name, value[name])
        if "verdict" in value:
            if value["verdict"] not in VERDICTS:
                raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}")
            query["verdict"] = value["verdict"]
        if "limit" in value:
            if not value["limit"].isdigit() or not 1 <= int(value["limit"]) <= 1000:
                raise ValueError("limit must be an integer from 1 to 1000")
            query["limit"] = int(value["limit"])
        query["include_body"] = value.get("body") in ("1", "true")
        return query


class QueueResource(resource.Resource):
    """`POST /api/queue/<messageId>/stop[?reason=]` and `POST /api/queue/<messageId>/retry`: `shep queue stop|retry`
    over HTTP, for operators."""

    isLeaf = True

    def __init__(self, queue, run_in_pool, clock):
        super().__init__()
        self.queue = queue
        self.run_in_pool = run_in_pool
        self.clock = clock

    def render_POST(self, request):
        from gateway.asyncchannel.queue import NotPending, NotYours

        segments = [s.decode("utf-8", "replace") for s in request.postpath]
        if len(segments) != 2 or not segments[0] or segments[1] not in ("stop", "retry"):
            return _json(request, {"error": "POST /api/queue/<messageId>/stop or /api/queue/<messageId>/retry"}, 404)
        message_id, action = segments
        if action == "stop":
            who = getattr(request, "shep_operator", None) or "a loopback client"
            reason = request.args.get(b"reason", [f"stopped by {who} over /api/queue".encode()])[0]
            deferred = self.run_in_pool(self.queue.stop, message_id, self.clock(), reason.decode("utf-8", "replace"))
        else:
            deferred = self.run_in_pool(self.queue.retry, message_id, self.clock())

        def refused(failure):
            failure.trap(NotYours, NotPending)
            return failure.value

        def answer(req, outcome):
            if isinstance(outcome, NotYours):
                req.write(_json(req, {"error": f"no message {message_id} in the queue"}, 404))
            elif isinstance(outcome, NotPending):
                req.write(_json(req, {"error": str(outcome)}, 409))
            else:
                req.write(_json(req, {"message_id": outcome.message_id, "state": outcome.state,
                                      "status_code": outcome.status_code,
                                      "status_message": outcome.status_message}))

        return _finish(request, deferred.addErrback(refused), answer)


def instant(name: str, text: str) -> datetime:
    """An ISO-8601 date-time filter (UTC when it names no offset); ValueError naming the parameter."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be an ISO-8601 date-time, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class HealthResource(resource.Resource):
    """`GET /health`: liveness. The process answers; nothing else is asked (see `ReadyResource`)."""

    isLeaf = True

    def __init__(self, tracker: InFlight):
        super().__init__()
        self.tracker = tracker

    def render_GET(self, request):
        return _json(request, {"status": "ok", "in_flight": self.tracker.count, "pid": os.getpid()})


class ReadyResource(resource.Resource):
    """`GET /ready`: readiness (`gateway.readiness`). 200 when every probe passes, else 503 naming the ones that
    failed. The store is probed in the work pool, within `timeout` seconds."""

    isLeaf = True

    def __init__(self, readiness, run_in_pool, reactor, timeout: float):
        super().__init__()
        self.readiness = readiness
        self.run_in_pool = run_in_pool
        self.reactor = reactor
        self.timeout = timeout

    def render_GET(self, request):
        credentials = self.readiness.credentials()
        store = self.run_in_pool(self.readiness.store).addTimeout(self.timeout, self.reactor)

        def late(failure) -> str:
            failure.trap(defer.TimeoutError)
            return f"no answer within {self.timeout:g} s"

        store.addErrback(late)

        def answer(req, store_verdict: str) -> None:
            checks = {"store": store_verdict, "credentials": credentials}
            failed = [name for name, verdict in checks.items() if verdict != "ok"]
            req.write(_json(req, {"status": "not ready" if failed else "ready", "failed": failed,
                                  "checks": checks}, 503 if failed else 200))

        return _finish(request, store, answer)


class CertificateResource(resource.Resource):
    """`GET /api/certificate`: the gateway's signing certificate (PEM), to verify its signed answers."""

    isLeaf = True

    def __init__(self, certificate):
        super().__init__()
        self.certificate = certificate

    def render_GET(self, request):
        from cryptography.hazmat.primitives.serialization import Encoding

        request.setHeader(b"Content-Type", b"application/x-pem-file")
        return self.certificate().public_bytes(Encoding.PEM)


class MetricsResource(resource.Resource):
    isLeaf = True

    def __init__(self, metrics, run_in_pool):
        super().__init__()
        self.metrics = metrics
        self.run_in_pool = run_in_pool

    def render_GET(self, request):
        # In the pool: a scrape reads the store (queue depth, journal size).
        def write(req, body: bytes) -> None:
            req.setHeader(b"Content-Type", b"text/plain; version=0.0.4; charset=utf-8")
            req.write(body)

        return _finish(request, self.run_in_pool(self.metrics.render), write)
