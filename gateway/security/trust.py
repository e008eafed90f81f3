"""What the gateway's signature checks need, assembled once: policy, validator, its own signing identity."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography import x509

from gateway.security.algorithms import AlgorithmPolicy
from gateway.security.certs import CertificateValidator, load_certificates


@dataclass
class SigningIdentity:
    key: object
    certificate: x509.Certificate
    key_info: str  # issuerserial | bst | keyidentifier


@dataclass
class GatewaySecurity:
    policy: AlgorithmPolicy
    validator: CertificateValidator
    signing: SigningIdentity
    clock_skew: timedelta
    _pinned: dict[Path, x509.Certificate] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def find_certificate(self, issuer: x509.Name, serial: int) -> x509.Certificate | None:
        """Certificates known by issuer and serial: for X509IssuerSerial key info (the gateway's own style)."""
        own = self.signing.certificate
        if own.issuer == issuer and own.serial_number == serial:
            return own
        with self._lock:
            pinned = list(self._pinned.values())
        for cert in pinned:
            if cert.issuer == issuer and cert.serial_number == serial:
                return cert
        return self.validator.find(issuer, serial)

    def pinned(self, path: Path) -> x509.Certificate:
        with self._lock:
            cert = self._pinned.get(path)
        if cert is None:
            cert = load_certificates(path.read_bytes())[0]
            with self._lock:
                self._pinned[path] = cert
        return cert
