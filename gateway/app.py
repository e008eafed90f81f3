"""Composition root: settings → store, journal, pool, pipeline environment, resources, listening port."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server

from gateway.checks.payload import PayloadSchemas
from gateway.config import Settings
from gateway.context import Environment
from gateway.forward import Forwarder
from gateway.journal import Journal
from gateway.metrics import Metrics
from gateway.passwords import PasswordVerifier
from gateway.store import Store, sqlite_url
from gateway.sync import SyncChannel
from gateway.web.resources import (BoundedRequest, FaultsResource, GatewaySite, HealthResource, InFlight,
                                   JournalResource, MetricsResource, SyncChannelResource)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class _Index(resource.Resource):
    isLeaf = True

    def __init__(self, links: dict[str, str]):
        super().__init__()
        self.links = links

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
        return json.dumps({"service": "shep-emulator", "links": self.links}, indent=1).encode()


class GatewayApp:
    """One gateway process: everything `shep serve` runs, built from settings."""

    def __init__(self, settings: Settings, *, reactor, state_dir: Path | None = None,
                 store_url: str | None = None, clock: Callable[[], datetime] = utc_now,
                 persistent_connections: bool = True):
        gw = settings.gateway
        self.settings = settings
        self.reactor = reactor
        url = store_url or gw.store_url or sqlite_url(Path(state_dir or gw.state_dir))
        self.store = Store(url)
        self.store.create_schema()
        self.journal = Journal(self.store, store_bytes=gw.journal_store_bytes)
        self.metrics = Metrics()
        # One dedicated pool for XML, crypto and store work keeps the reactor responsive (library notes §6).
        self.pool = ThreadPool(minthreads=gw.worker_threads, maxthreads=gw.worker_threads, name="shep-work")
        self.env = Environment(settings=gw, registry=settings.registry, passwords=PasswordVerifier(),
                               replay_guard=self.store, payload_schemas=PayloadSchemas(), clock=clock)
        self.forwarder = Forwarder(reactor, persistent=persistent_connections)
        self.tracker = InFlight()
        self.base_url: str | None = None
        self.channel = SyncChannel(self.env, self.journal, self.metrics, self.forwarder,
                                   self.run_in_pool, self.resolve_endpoint)
        self.site = self._site()
        self.port = None

    def run_in_pool(self, func, *args) -> defer.Deferred:
        return deferToThreadPool(self.reactor, self.pool, func, *args)

    def resolve_endpoint(self, endpoint: str) -> str:
        """Relative endpoints ("/demo/echo") point at this server itself."""
        return f"{self.base_url}{endpoint}" if endpoint.startswith("/") else endpoint

    def _site(self) -> server.Site:
        from simulators.echo import EchoProvider

        root = resource.Resource()
        api = resource.Resource()
        api.putChild(b"faults", FaultsResource())
        api.putChild(b"journal", JournalResource(self.journal, self.run_in_pool))
        demo = resource.Resource()
        demo.putChild(b"echo", EchoProvider())
        root.putChild(b"bip-sync", SyncChannelResource(self.channel, self.tracker))
        root.putChild(b"api", api)
        root.putChild(b"demo", demo)
        root.putChild(b"health", HealthResource(self.tracker))
        root.putChild(b"metrics", MetricsResource(self.metrics))
        root.putChild(b"", _Index({"wsdl": "/bip-sync/?wsdl", "sync": "/bip-sync/", "faults": "/api/faults",
                                   "journal": "/api/journal", "health": "/health", "metrics": "/metrics"}))
        site = GatewaySite(root)
        site.requestFactory = BoundedRequest
        site.max_body_bytes = self.settings.gateway.max_body_bytes
        site.displayTracebacks = False
        site.noisy = False
        return site

    def listen(self, port: int | None = None, host: str | None = None):
        gw = self.settings.gateway
        host = host or gw.host
        self.port = self.reactor.listenTCP(gw.port if port is None else port, self.site, interface=host)
        # Started only once listening succeeded: a pool thread left running would keep the process alive.
        self.pool.start()
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
        self.base_url = f"http://{shown}:{self.port.getHost().port}"
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let in-flight messages finish and be journalled, then release everything."""
        if self.port is not None:
            await self.port.stopListening()
        await self.tracker.wait_idle()
        await self.forwarder.close()
        if self.pool.started:
            # Joins the worker threads: no journal write is cut in half.
            self.pool.stop()
        self.store.close()
