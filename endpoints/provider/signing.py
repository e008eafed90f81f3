"""EDS (ЭЦП / ЭЦҚ) for the АЖО: the keys of the people who sign for it, and the check of signed documents.

Certificates come from the test PKI on first start and stay under the state dir, so the coupons a clinic
issued keep verifying with the same authorised person's certificate across restarts.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from cryptography import x509
from lxml import etree

from gateway.security import xmldsig
from gateway.security.algorithms import AlgorithmPolicy
from gateway.security.certs import CertificateValidator
from gateway.security.identity import subject_bin, subject_iin
from gateway.security.keyfiles import load_private_key, save_credentials
from gateway.security.gost.x509 import certificate_alg
from endpoints.provider.config import Officer

log = logging.getLogger("shep.provider.signing")
# A certificate this close to its end is replaced at start rather than failing a coupon later.
RENEW_BEFORE = timedelta(days=1)


class Credentials:
    """(key, certificate) per signing person, kept as `<directory>/<BIN>/<IIN>/{key,cert}.pem`.

    `pki` is the test CA (`simulators.pki.ca.TestPKI`, handed in by the composition root):
    `issue(kind, alg, usage, iin=…, bin=…, surname=…, name=…, patronymic=…, org=…)`.
    """

    def __init__(self, directory: Path, pki, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.directory = Path(directory)
        self.pki = pki
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple] = {}

    def get(self, officer: Officer, *, kind: str, bin: str, org: str) -> tuple:
        """The officer's SIGN key and certificate for this organisation, issued when missing or stale."""
        slot = (bin, officer.iin)
        if slot not in self._cache:
            self._cache[slot] = self._load(officer, bin) or self._issue(officer, kind=kind, bin=bin, org=org)
        return self._cache[slot]

    def _paths(self, bin: str, iin: str) -> tuple[Path, Path]:
        folder = self.directory / bin / iin
        return folder / "key.pem", folder / "cert.pem"

    def _load(self, officer: Officer, bin: str) -> tuple | None:
        key_path, cert_path = self._paths(bin, officer.iin)
        if not (key_path.exists() and cert_path.exists()):
            return None
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if (subject_iin(cert), subject_bin(cert)) != (officer.iin, bin) \
                or cert.not_valid_after_utc - RENEW_BEFORE < self.clock() \
                or certificate_alg(cert) != self.pki.default_alg:
            log.info("certificate of %s for BIN %s is stale: issuing a new one", officer.iin, bin)
            return None
        return load_private_key(key_path.read_bytes()), cert

    def _issue(self, officer: Officer, *, kind: str, bin: str, org: str) -> tuple:
        issued = self.pki.issue(kind, usage="sign", iin=officer.iin, bin=bin, org=org,
                                surname=officer.surname, name=officer.name, patronymic=officer.patronymic or None)
        save_credentials(*self._paths(bin, officer.iin), issued.key, issued.cert)
        # One per employee at the first start: routine, in the log at DEBUG (`shep serve --verbose`).
        log.debug("issued a SIGN certificate for %s (%s), BIN %s", officer.full_name, officer.iin, bin)
        return issued.key, issued.cert


def sign(document: etree._Element, credentials: tuple) -> etree._Element:
    """A signed copy: the enveloped EDS as the last child (contract §9)."""
    return xmldsig.sign_document(document, *credentials)


@dataclass(frozen=True)
class Verified:
    root: etree._Element  # the verified document, unsigned comments stripped
    certificate: x509.Certificate
    signer_iin: str | None  # from the certificate subject (SERIALNUMBER=IIN…)


class Verifier:
    """A signed document is trusted when its EDS verifies and its SIGN certificate chains to the
    national CA, is valid now and not revoked. Failures raise `SignatureError`."""

    def __init__(self, validator: CertificateValidator, *, policy: AlgorithmPolicy | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.validator = validator
        self.policy = policy or AlgorithmPolicy()
        self.clock = clock

    def verify(self, document: bytes) -> Verified:
        verified = xmldsig.verify_document(document, policy=self.policy)
        self.validator.validate(verified.certificate, at=self.clock(), what="document signature")
        return Verified(verified.root, verified.certificate, subject_iin(verified.certificate))

    def verified_root(self, document: bytes) -> etree._Element:
        return self.verify(document).root
