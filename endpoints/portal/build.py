"""A `Portal` put together from its settings: the gateway client, condition 2's validator, its tables, and the
ЖТ ММБ client the composition root makes for it."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

import sqlalchemy

from endpoints.portal.config import PortalSettings
from endpoints.portal.people import PersonRegistry, answer_verifier
from endpoints.portal.service import Portal, utc_now
from endpoints.portal.signer import CertificateIssuer
from gateway.asyncclient import AsyncGatewayClient
from gateway.client import load_credentials
from gateway.security.algorithms import AlgorithmPolicy
from gateway.security.certs import CertificateValidator, RevocationChecker
from gateway.store import Store


def build_portal(settings: PortalSettings, *, anchors: list, intermediates: list,
                 engine: sqlalchemy.Engine | None = None, issue_certificate: CertificateIssuer | None = None,
                 transport_credentials: tuple | None = None, clock: Callable[[], datetime] = utc_now,
                 registry: Callable[..., PersonRegistry] | None = None) -> Portal:
    """A Portal from settings: its gateway client, condition 2's validator over the trust anchors, and its
    tables on `engine` (the gateway store's, say) or on `settings.store_url`. `registry(settings, sign=…,
    verify=…)` makes its ЖТ ММБ client through the gateway (the composition root's
    `gateway.parties.portal_registry`); without it registrations are not checked in ЖТ ММБ."""
    if engine is None:
        if settings.store_url is None:
            raise ValueError("portal: give the store engine or set portal.store_url")
        # The store's engine is tuned for SQLite: WAL, busy timeout, write locks taken up front.
        engine = Store(settings.store_url).engine
    sign = transport_credentials
    if settings.signing_key is not None:
        sign = load_credentials(cert=str(settings.signing_cert), key=str(settings.signing_key))
    gateway = AsyncGatewayClient(settings.gateway_url, settings.participant_id, settings.password, sign=sign,
                                 timeout=settings.gateway_timeout_seconds)
    revocation = RevocationChecker(settings.revocation, cache_seconds=settings.revocation_cache_seconds,
                                   timeout=settings.revocation_timeout_seconds)
    validator = CertificateValidator(anchors, intermediates, revocation)
    people = None if registry is None else registry(
        settings, sign=sign, verify=answer_verifier(validator, AlgorithmPolicy(), clock))
    return Portal(settings, engine=engine, gateway=gateway, validator=validator,
                  issue_certificate=issue_certificate, clock=clock, registry=people)
