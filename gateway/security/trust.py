"""What the gateway's signature checks need, assembled once: policy, validator, its own signing identity."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509

from gateway.security.algorithms import AlgorithmPolicy
from gateway.security.certs import CertificateValidator
from gateway.security.issuerserial import CertificateIndex


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
    # What X509IssuerSerial key info resolves against (app._security lists the sources).
    certificates: CertificateIndex
    # The participants' pinned certificates by configured path, read at start-up: the first message
    # gets the verdict every later one does.
    pinned: dict[Path, x509.Certificate]
