"""The provider АЖО (автоматтандырылған жұмыс орны / АРМ услугодателя) put together: one system for
every configured clinic, a participant of the gateway that provides the attachment service.

    system = ProviderSystem(config.load(), engine=app.store.engine, pki=app.pki, state_dir=app.state_dir)
    root.putChild(b"clinic", system.resource())   # /clinic/async (push), /clinic/api/…, the pages /clinic/
    …listen…
    system.start(app.base_url, gateway_certificate)  # gateway clients; certificates issued on first start
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import sqlalchemy as sa
from twisted.web import resource

from gateway.asyncclient import AsyncGatewayClient
from gateway.security.certs import CertificateValidator, RevocationChecker
from gateway.web.pages.security import load_secret
from endpoints.provider.api import ClinicApi
from endpoints.provider.desk import Desk
from endpoints.provider.config import ProviderConfig
from endpoints.provider.inbox import PortalInbox
from endpoints.provider.office import AttachmentOffice
from endpoints.provider.pages import ClinicRoot, clinic_pages
from endpoints.provider.registry import GatewayPersonRegistry, Person, PersonRegistry, RegistryError
from endpoints.provider.signing import Credentials, Verifier
from endpoints.provider.store import ProviderStore


class _NotConnected:
    """Stands in until `start` knows the gateway's address: whatever arrives is retried later."""

    def find(self, iin: str) -> Person | None:
        raise RegistryError("the АЖО is not connected to the gateway yet")

    def send(self, *args, **kwargs):
        raise RuntimeError("the АЖО is not connected to the gateway yet")


class ProviderSystem:
    def __init__(self, config: ProviderConfig, *, engine: sa.Engine, pki, state_dir: Path,
                 trust: tuple[list, list] | None = None, registry: PersonRegistry | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        """`pki` is the test CA (`TestPKI`) that issues the signing certificates; `trust` is (anchors,
        intermediates) for checking signatures, the PKI's own by default; `registry` replaces the
        gateway-backed ЖТ ММБ (tests)."""
        self.config = config
        self.pki = pki
        self._trust = trust
        self._fixed_registry = registry
        self.store = ProviderStore(engine)
        self.office = AttachmentOffice(config, self.store, registry or _NotConnected(), verifier=None,
                                       credentials=Credentials(Path(state_dir) / "provider" / "certs", pki, clock),
                                       clock=clock)
        self.inbox = PortalInbox(self.office, _NotConnected(), config.service_id)
        self.desk = Desk(self.office)
        self.api = ClinicApi(self.desk)
        self.state_dir = Path(state_dir)
        self.clock = clock

    def resource(self) -> resource.Resource:
        """The `/clinic` subtree: `async` is the participant's async_endpoint, `api` the employees' JSON API,
        every other path the employees' pages (docs/web.md)."""
        pages = clinic_pages(self.desk, secret=load_secret(self.state_dir))
        return ClinicRoot(pages, {b"async": self.inbox.resource(), b"api": self.api})

    def start(self, gateway_url: str, gateway_certificate=None) -> None:
        """Connect to the gateway (its base URL) and issue missing certificates. Blocking: key generation
        and the PKI's files; the PKI must be initialised (the gateway does it when it starts listening).
        `gateway_certificate` is the one the gateway signs its pushes with (GET /api/certificate); without
        it, pushes are refused unless the configuration's `verify_pushes` is false."""
        anchors, intermediates = self._trust or (self.pki.trust_anchors(), self.pki.intermediates())
        verifier = Verifier(CertificateValidator(anchors, intermediates, RevocationChecker(self.config.revocation)),
                            clock=self.clock)
        self.office.verifier = verifier
        self.office.ensure_credentials()
        sign = self.office.operator() if self.config.transport_signature else None
        if self._fixed_registry is None:
            self.office.registry = GatewayPersonRegistry(
                gateway_url, self.config.participant, self.config.password,
                service_id=self.config.registry_service_id, sender_code=self.config.sender_code,
                verify=verifier.verified_root, sign=sign)
        self.inbox.connect(AsyncGatewayClient(gateway_url, self.config.participant, self.config.password, sign=sign),
                           gateway_certificate, verify_pushes=self.config.verify_pushes)
