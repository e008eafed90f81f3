"""What the gateway's signature checks need, assembled once: policy, validator, its own signing identity."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509

from gateway.security.algorithms import AlgorithmPolicy
from gateway.security.certfolders import TrustFolder, read_certificates
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


def configured_trust(trust_anchors: tuple[Path, ...], pki, read=read_certificates
                     ) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """(anchors, intermediates): the configured `gateway.trust_anchors` files (`read` reads each), or else the
    test PKI's CAs (none before `shep pki init`); and the CA certificates an integrator added (`shep pki trust
    add`)."""
    if trust_anchors:
        trusted = [cert for path in trust_anchors for cert in read(path)]
    else:
        trusted = [*pki.trust_anchors(), *pki.intermediates()] if pki.initialised() else []
    trusted += TrustFolder.of_pki(pki.dir).certificates()
    return ([cert for cert in trusted if cert.issuer == cert.subject],
            [cert for cert in trusted if cert.issuer != cert.subject])
