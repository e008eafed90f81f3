"""Composition root: settings → store, journal, pool, pipeline environment, resources, listening port."""
from __future__ import annotations

import json
import logging
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from twisted.internet import defer, task
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server

from gateway import contract as c
from gateway import statedir
from gateway.asyncchannel.channel import AsyncChannel
from gateway.asyncchannel.push import PushDelivery
from gateway.asyncchannel.queue import AsyncQueue
from gateway.checks.payload import PayloadSchemas
from gateway.config import Settings, endpoint_error
from gateway.context import Environment
from gateway.parties import clinic_config, population_options, portal_registry, portal_settings
from gateway.forward import Forwarder
from gateway.checkpoints import FILE_NAME as CHECKPOINT_FILE
from gateway.checkpoints import CheckpointWriter
from gateway.timestamps import http_timestamper
from gateway.journal import Journal
from gateway.metrics import Metrics, StoreFigures
from gateway.operators import AUDITOR, OPERATOR, OperatorAuth, is_loopback
from gateway.store.lockouts import AddressLockouts
from gateway.passwords import PasswordVerifier
from gateway.readiness import Readiness
from gateway.store import Store, sqlite_url
from gateway.client import load_credentials
from gateway.security.algorithms import AlgorithmPolicy
from gateway.security.certs import CertificateValidator, RevocationChecker
from gateway.security.certfolders import read_certificates, read_folder
from gateway.security.issuerserial import CertificateIndex
from gateway.security.trust import GatewaySecurity, SigningIdentity, configured_trust
from gateway.sync import SyncChannel
from simulators.echo import EchoProvider
from simulators.gbdfl.population import build_population
from simulators.gbdfl.provider import GbdflProvider, LazyGbdflProvider, operator_credentials
from simulators.pki.ca import BrokenPKI, TestPKI
from simulators.pki.web import pki_resource
from gateway.web.body import BoundedRequest
from gateway.web.guard import OperatorOnly
from gateway.web.resources import (CertificateResource, FaultsResource, GatewaySite, HealthResource, InFlight,
                                   JournalResource, MetricsResource, ChannelResource, QueueResource,
                                   ReadyResource)

log = logging.getLogger("shep.app")


# Seconds /ready waits for the store's answer before calling it unreachable.
_READY_TIMEOUT = 2.0


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
                 persistent_connections: bool = True, pki_state_dir: Path | None = None):
        gw = settings.gateway
        self.settings = settings
        self.reactor = reactor
        self.state_dir = Path(state_dir) if state_dir else statedir.resolve(None, gw.state_dir, settings.source).path
        # The test PKI (simulators/pki) is the default trust anchor and the gateway's certificate issuer.
        # The simulated parties' certificates are of the gateway's own algorithm (`gateway.signing_alg`).
        self.pki = TestPKI(Path(pki_state_dir or self.state_dir), default_alg=settings.gateway.signing_alg)
        url = store_url or gw.store_url or sqlite_url(self.state_dir)
        self.store = Store(url)
        self.store.create_schema()
        self.journal = Journal(self.store, store_bytes=gw.journal_store_bytes)
        self.metrics = Metrics(settings.registry.services.values())
        # One dedicated pool for XML, crypto and store work keeps the reactor responsive (library notes §6).
        self.pool = ThreadPool(minthreads=gw.worker_threads, maxthreads=gw.worker_threads, name="shep-work")
        # Passwords not verified before are hashed in a pool of their own: guesses never queue in shep-work.
        self.password_pool = ThreadPool(minthreads=1, maxthreads=1, name="shep-passwords")
        # Checkpoints (a signature, maybe a TSA round trip of up to 10 s) never hold up a message in shep-work.
        self.checkpoint_pool = ThreadPool(minthreads=1, maxthreads=1, name="shep-checkpoints")
        passwords = PasswordVerifier(run=lambda func, *args: deferToThreadPool(reactor, self.password_pool,
                                                                                func, *args))
        self.env = Environment(settings=gw, registry=settings.registry, passwords=passwords,
                               replay_guard=self.store, lockouts=self.store, payload_schemas=PayloadSchemas(),
                               clock=clock, sleep=lambda seconds: task.deferLater(reactor, seconds))
        self.operator_auth = OperatorAuth(settings.operators, self.env.passwords,
                                          AddressLockouts(self.store, gw, lambda: self.env.clock()))
        self.forwarder = Forwarder(reactor, persistent=persistent_connections,
                                   connections_per_host=max(2, gw.async_push_batch))
        self.tracker = InFlight()
        self.base_url: str | None = None
        self.channel = SyncChannel(self.env, self.journal, self.metrics, self.forwarder,
                                   self.run_in_pool, self.resolve_endpoint)
        self.queue = AsyncQueue(self.store, self.journal)
        self.env.exchanges = self.queue
        self.push = PushDelivery(self.env, self.queue, self.journal, self.forwarder, self.run_in_pool,
                                 self.resolve_endpoint, reactor)
        self.async_channel = AsyncChannel(self.env, self.journal, self.metrics, self.run_in_pool, self.queue,
                                          self.push)
        self.metrics.watch_store(lambda: StoreFigures(self.queue.pending(), self.journal.size()), clock)
        self.readiness = Readiness(self.journal, lambda: self.env.security, clock)
        self.site = self._site()
        self.port = None
        self._checkpointing: task.LoopingCall | None = None  # started by listen()

    def run_in_pool(self, func, *args) -> defer.Deferred:
        return deferToThreadPool(self.reactor, self.pool, func, *args)

    def resolve_endpoint(self, endpoint: str) -> str:
        """Relative endpoints ("/demo/echo") point at this server itself."""
        return f"{self.base_url}{endpoint}" if endpoint.startswith("/") else endpoint

    def _security(self) -> GatewaySecurity:
        gw = self.settings.gateway
        anchors, intermediates = configured_trust(
            gw.trust_anchors, self.pki, lambda path: self._certificates("gateway.trust_anchors", read_certificates,
                                                                        path))
        trusted = [*anchors, *intermediates]
        if gw.signing_key is not None:
            key_path, cert_path = gw.signing_key, gw.signing_cert
        else:
            key_path, cert_path = self.pki.gateway_credentials(gw.signing_alg)
        key, own = load_credentials(cert=str(cert_path), key=str(key_path))
        pinned = {p.certificate: self._certificates(f"participants.{p.id}.certificate", read_certificates,
                                                    p.certificate)[0]
                  for p in self.settings.registry.participants.values() if p.certificate is not None}
        listed = [cert for directory in gw.certificate_dirs
                  for cert in self._certificates("gateway.certificate_dirs", read_folder, directory)]
        # What X509IssuerSerial key info may name, read now (the same message, the same verdict), but for
        # the test PKI's end-entity certificates: `shep pki issue` adds to them while the gateway runs.
        index = CertificateIndex([own, *pinned.values(), *listed, *trusted], live=[self.pki.issued_certificate])
        revocation = RevocationChecker(gw.revocation, cache_seconds=gw.revocation_cache_seconds,
                                       timeout=gw.revocation_timeout_seconds, watch=self.pki.index_path)
        return GatewaySecurity(policy=AlgorithmPolicy(allow_sha1=gw.allow_sha1),
                               validator=CertificateValidator(anchors, intermediates, revocation),
                               signing=SigningIdentity(key, own, gw.signing_key_info),
                               clock_skew=timedelta(seconds=gw.clock_skew_seconds),
                               certificates=index, pinned=pinned)

    def _certificates(self, key: str, read: Callable[[Path], list], path: Path) -> list:
        """`read(path)`; a file that holds no certificate stops the start, pointing at the setting."""
        try:
            return read(path)
        except ValueError as error:
            raise endpoint_error(self.settings, ValueError(f"{key}: {error}")) from None

    def _mount_parties(self) -> None:
        """The e-service's parties configured in this file ([portal], [clinic]), served by this process
        but talking to each other only through the gateway, as separate systems would."""
        tables = self.settings.endpoints
        validator = self.env.security.validator
        # Checked now (a bad [gbdfl] table stops the start); the people are made on the first query.
        population = population_options(self.settings)
        signs = population.pop("transport_signature")
        self._simulators.putChild(b"gbdfl", LazyGbdflProvider(lambda: GbdflProvider(
            build_population(**population), *operator_credentials(self.pki, self.state_dir),
            transport_signature=signs, gateway_certificate=self.env.security.signing.certificate if signs else None)))
        if "portal" in tables:
            from endpoints.portal import PortalResource, build_portal, issuer_from_pki, portal_pages
            from gateway.web.pages.security import load_secret
            settings = portal_settings(self.settings)
            if "state_dir" not in tables["portal"]:
                settings = settings.replace(state_dir=self.state_dir)
            portal = build_portal(settings.replace(gateway_url=self.base_url), anchors=validator.anchors,
                                  intermediates=validator.intermediates,
                                  engine=None if settings.store_url else self.store.engine,
                                  issue_certificate=issuer_from_pki(self.pki),
                                  transport_credentials=self._portal_credentials(settings),
                                  registry=portal_registry, clock=lambda: self.env.clock())
            self.metrics.watch_deadlines(portal.deadline_outcomes)
            # The citizen's pages at /portal/, the JSON API under /portal/api/ (docs/web.md, docs/api.md).
            self.site.resource.putChild(b"portal", portal_pages(portal, secret=load_secret(self.state_dir),
                                                                api=PortalResource(portal)))
        if "clinic" in tables:
            from endpoints.provider import ProviderSystem

            config = clinic_config(self.settings)
            clinic = ProviderSystem(config, engine=self.store.engine, pki=self.pki, state_dir=self.state_dir,
                                    trust=(validator.anchors, validator.intermediates))
            self.site.resource.putChild(b"clinic", clinic.resource())
            clinic.start(self.base_url, self.env.security.signing.certificate)

    def _portal_credentials(self, settings) -> tuple | None:
        """The portal's organisation certificate for WS-Security, issued by the test PKI for the BIN of its
        participant, when `transport_signature` asks for one and no signing_key/signing_cert is given."""
        if not settings.transport_signature or settings.signing_key is not None:
            return None
        participant = self.settings.registry.participant(settings.participant_id)
        bin_ = participant.bin if participant is not None else None
        if bin_ is None:
            raise endpoint_error(self.settings, ValueError(
                f"portal.transport_signature: participants.{settings.participant_id}.bin is needed (the gateway "
                "binds the signing certificate to it)"))
        return self.pki.credentials(self.state_dir / "portal" / "transport", "organization", bin=bin_,
                                    org="АО «Национальные информационные технологии» (ТЕСТ)")

    def _site(self) -> server.Site:
        root = resource.Resource()
        api = resource.Resource()
        api.putChild(b"faults", FaultsResource())
        api.putChild(b"journal", self._operators_only(JournalResource(self.journal, self.run_in_pool), AUDITOR))
        api.putChild(b"queue", self._operators_only(QueueResource(self.queue, self.run_in_pool, self.env.clock),
                                                    OPERATOR))
        demo = resource.Resource()
        demo.putChild(b"echo", EchoProvider())
        sync = dict(channel=self.channel, tracker=self.tracker, wsdl=c.SYNC_WSDL)
        root.putChild(b"bip-sync", ChannelResource(path="/bip-sync/", **sync))
        # The WS-Security addresses of the real gateway: signatures required (RSA, EC or GOST).
        root.putChild(b"bip-sync-wss-gost", ChannelResource(path="/bip-sync-wss-gost/", wss=True, **sync))
        shep = resource.Resource()
        shep.putChild(b"bip-sync-wss-gost", ChannelResource(path="/shep/bip-sync-wss-gost/", wss=True, **sync))
        root.putChild(b"shep", shep)
        root.putChild(b"bip-async", ChannelResource(self.async_channel, self.tracker, path="/bip-async/",
                                                    wsdl=c.ASYNC_WSDL))
        root.putChild(b"pki", pki_resource(self.pki))
        root.putChild(b"console", self._console())
        api.putChild(b"certificate", CertificateResource(lambda: self.env.security.signing.certificate))
        root.putChild(b"api", api)
        root.putChild(b"demo", demo)
        self._simulators = resource.Resource()
        root.putChild(b"sim", self._simulators)
        root.putChild(b"health", HealthResource(self.tracker))
        root.putChild(b"ready", ReadyResource(self.readiness, self.run_in_pool, self.reactor, _READY_TIMEOUT))
        metrics = MetricsResource(self.metrics, self.run_in_pool)
        root.putChild(b"metrics", self._operators_only(metrics, AUDITOR) if self.settings.gateway.metrics_require_auth
                      else metrics)
        root.putChild(b"", _Index({"wsdl": "/bip-sync/?wsdl", "sync": "/bip-sync/", "wss": "/bip-sync-wss-gost/",
                                   "async": "/bip-async/", "async-wsdl": "/bip-async/?wsdl",
                                   "faults": "/api/faults", "journal": "/api/journal",
                                   "certificate": "/api/certificate", "ocsp": "/pki/ocsp", "health": "/health",
                                   "ready": "/ready", "metrics": "/metrics"}))
        # No resource takes HTML forms; parsing one would copy the body into request.args and answer a
        # malformed multipart body with Twisted's bare 400 before the pipeline could refuse (and journal) it.
        site = GatewaySite(root, parsePOSTFormSubmission=False)
        site.requestFactory = BoundedRequest
        site.max_body_bytes = self.settings.gateway.max_body_bytes
        site.header_timeout = self.settings.gateway.http_header_timeout_seconds
        site.timeOut = self.settings.gateway.http_idle_timeout_seconds  # HTTPFactory's name for the idle timeout
        site.max_connections_per_client = self.settings.gateway.max_connections_per_client
        site.displayTracebacks = False
        site.noisy = False
        return site

    def _console(self) -> resource.Resource:
        """The operators' pages (docs/web.md): the test PKI is theirs unless gateway.trust_anchors replaces it."""
        from gateway.console import ConsoleAuth, ConsoleParts, console_pages
        from gateway.web.pages.security import load_secret

        secret = load_secret(self.state_dir)
        parts = ConsoleParts(auth=ConsoleAuth(self.operator_auth, secret), journal=self.journal, queue=self.queue,
                             metrics=self.metrics, services=self.settings.registry.services.get,
                             base_url=lambda: self.base_url, clock=lambda: self.env.clock(),
                             pki=None if self.settings.gateway.trust_anchors else self.pki)
        return console_pages(parts, secret=secret)

    def _operators_only(self, wrapped: resource.Resource, role: str) -> resource.Resource:
        return OperatorOnly(wrapped, self.operator_auth, role, self.run_in_pool)

    def listen(self, port: int | None = None, host: str | None = None, shared: bool = False):
        """Listen on host:port; `shared` binds with SO_REUSEPORT so several worker processes serve one port,
        the kernel spreading connections among them (library notes §6)."""
        gw = self.settings.gateway
        host = host or gw.host
        port = gw.port if port is None else port
        if shared:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((host, port))
                sock.listen(1024)
                sock.setblocking(False)
                # Twisted takes a duplicate of the descriptor; this one closes with the `with`.
                self.port = self.reactor.adoptStreamPort(sock.fileno(), family, self.site)
        else:
            self.port = self.reactor.listenTCP(port, self.site, interface=host)
        if not self.settings.operators and not is_loopback(host):
            log.warning("listening on %s with no [operators.*] configured: /api/journal and /api/queue answer "
                        "loopback clients only; configure operators to reach them from elsewhere "
                        "(docs/configuration.md, Operator API)", host)
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
        self.base_url = f"http://{shown}:{self.port.getHost().port}"
        try:
            # Once: CRL and OCSP URLs in the certificates point at the server that first ran it.
            try:
                self.pki.init(self.base_url)
            except (OSError, ValueError) as error:
                raise BrokenPKI(self.pki.dir, error) from error
            self.env.security = self._security()
            self._mount_parties()
        except Exception:
            self.port.stopListening()
            raise
        signing = self.env.security.signing
        self.checkpoints = CheckpointWriter(self.state_dir / CHECKPOINT_FILE, self.journal, signing.key,
                                            signing.certificate, self.env.clock, self._timestamper())
        # Started only once everything is in place: a pool thread left running would keep the process alive.
        self.pool.start()
        self.password_pool.start()
        self.checkpoint_pool.start()
        self.push.start()
        self._checkpointing = task.LoopingCall(self._checkpoint)
        self._checkpointing.clock = self.reactor
        self._checkpointing.start(gw.journal_checkpoint_seconds, now=False)
        return self.port

    def _timestamper(self):
        """Who time-stamps the checkpoints: nobody, the test PKI's TSA in this process, or a TSA over HTTP."""
        url = self.settings.gateway.checkpoint_tsa_url
        if url is None:
            return None
        return self.pki.timestamp if url == "pki" else http_timestamper(url)

    def _checkpoint(self):
        deferred = deferToThreadPool(self.reactor, self.checkpoint_pool, self._record_and_sign)
        # Retried at the next tick: the records a checkpoint would cover are still there, held hops still held.
        deferred.addErrback(lambda failure: log.error("journal checkpoint failed (%d hop(s) held): %s",
                                                      self.journal.held, failure.getErrorMessage()))
        return deferred

    def _record_and_sign(self):
        self.journal.flush_held()  # answers held through an outage, once the store is back
        return self.checkpoints.write()

    async def stop(self) -> None:
        """Stop accepting, let in-flight messages finish and be journalled, then release everything."""
        if self.port is not None:
            await self.port.stopListening()
        await self.push.stop()
        await self.tracker.wait_idle()
        if self._checkpointing is not None and self._checkpointing.running:
            self._checkpointing.stop()
            await self._checkpoint()  # the last records are signed before the process goes
        await self.forwarder.close()
        self.stop_pools()
        self.store.close()

    def stop_pools(self) -> None:
        """Join the threads listen() started (no journal write is cut in half); theirs would keep the process
        alive."""
        for pool in (self.pool, self.password_pool, self.checkpoint_pool):
            if pool.started:
                pool.stop()
