"""The citizen's EDS (ЭЦП / ЭЦҚ) and condition 2 of diagram 1.

The portal stands in for the citizen's own signing application (NCALayer): it keeps each citizen's
SIGN key and certificate under `<state_dir>/portal/certs/<IIN>/`. Condition 2 checks the certificate
before anything is sent: validity period, revocation (OCSP/CRL), chain to the national CA, SIGN usage,
and that the IIN in the request is the IIN in the certificate.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.x509.oid import NameOID

from gateway.security.algorithms import SignatureError
from gateway.security.certs import CertificateValidator
from gateway.security.identity import signer_iin_matches, subject_bin, subject_iin
from gateway.security.keyfiles import load_private_key, same_key, save_credentials

# What the citizen reads after "в связи с неподтверждением ЭЦП: …", per reason code.
REASONS_RU = {
    "CERT_MISSING": "сертификат ЭЦП не выбран (не загружен)",
    "CERT_KEY_MISMATCH": "закрытый ключ не соответствует сертификату",
    "CERT_EXPIRED": "срок действия сертификата истёк",
    "CERT_NOT_YET_VALID": "срок действия сертификата ещё не начался",
    "CERT_REVOKED": "сертификат отозван",
    "CERT_REVOCATION_UNKNOWN": "не удалось проверить, не отозван ли сертификат",
    "CERT_UNTRUSTED": "сертификат выдан не удостоверяющим центром РК",
    "CERT_KEY_USAGE": "сертификат не предназначен для подписи (нужен ключ SIGN, не AUTH)",
    "IIN_MISMATCH": "ИИН в заявке не совпадает с ИИН в сертификате",
}

# (iin, surname, name, patronymic) → (private key, certificate): the composition root wires the test PKI in.
CertificateIssuer = Callable[[str, str, str, "str | None"], tuple]


@dataclass(frozen=True)
class Credentials:
    key: object
    certificate: x509.Certificate


@dataclass(frozen=True)
class Refusal:
    code: str
    detail: str

    @property
    def message(self) -> str:
        return REASONS_RU[self.code]

    def as_json(self) -> dict:
        return {"code": self.code, "message": self.message, "detail": self.detail}


def issuer_from_pki(pki) -> CertificateIssuer:
    """A CertificateIssuer over the test PKI (anything with `issue(kind, alg, usage, **subject)`)."""
    def issue(iin: str, surname: str, name: str, patronymic: str | None):
        issued = pki.issue("person", usage="sign", iin=iin, surname=surname, name=name, patronymic=patronymic)
        return issued.key, issued.cert
    return issue


def parse_credentials(certificate_pem: str, key_pem: str, password: str | None = None) -> Credentials:
    """An uploaded certificate and its private key (PEM); ValueError says what is wrong with them."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError as exc:
        raise ValueError(f"certificate: not a PEM X.509 certificate ({exc})") from None
    try:
        key = load_private_key(key_pem.encode(), password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"key: not a readable PEM private key ({exc})") from None
    if not same_key(key, certificate):
        raise ValueError("key: it is not the private key of this certificate")
    return Credentials(key, certificate)


def describe(certificate: x509.Certificate) -> dict:
    """The certificate as the citizen sees it when choosing it."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return {"subject": certificate.subject.rfc4514_string(), "common_name": names[0].value if names else None,
            "iin": subject_iin(certificate), "bin": subject_bin(certificate),
            "serial": str(certificate.serial_number), "issuer": certificate.issuer.rfc4514_string(),
            "not_before": certificate.not_valid_before_utc.isoformat(),
            "not_after": certificate.not_valid_after_utc.isoformat()}


class CertificateStore:
    """One SIGN key and certificate per citizen, as PEM files (the key 0600)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _dir(self, iin: str) -> Path:
        if not (len(iin) == 12 and iin.isascii() and iin.isdigit()):
            raise ValueError(f"not an IIN: {iin!r}")  # it becomes a path: digits only
        return self.directory / iin

    def save(self, iin: str, credentials: Credentials) -> None:
        folder = self._dir(iin)
        # Key first, certificate second: a reader pairing them compares the public keys (load).
        save_credentials(folder / "key.pem", folder / "cert.pem", credentials.key, credentials.certificate)

    def load(self, iin: str) -> Credentials | None:
        folder = self._dir(iin)
        try:
            key = load_private_key((folder / "key.pem").read_bytes())
            certificate = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
        except FileNotFoundError:
            return None
        return Credentials(key, certificate)


def confirm_signer(credentials: Credentials | None, signer_iin: str, validator: CertificateValidator,
                   at: datetime) -> list[Refusal]:
    """Condition 2: every reason the EDS is not confirmed (empty: confirmed). The certificate's own
    problems come first (the validator stops at the first), the IIN comparison is reported besides."""
    if credentials is None:
        return [Refusal("CERT_MISSING", "the citizen has no certificate: upload one (PUT /portal/api/certificate)")]
    if not same_key(credentials.key, credentials.certificate):
        return [Refusal("CERT_KEY_MISMATCH", "the stored key does not belong to the stored certificate")]
    refusals = []
    try:
        validator.validate(credentials.certificate, at=at, signing=True, what="EDS certificate")
    except SignatureError as error:
        refusals.append(Refusal(error.name if error.name in REASONS_RU else "CERT_UNTRUSTED", error.detail))
    if not signer_iin_matches(signer_iin, credentials.certificate):
        found = subject_iin(credentials.certificate)
        refusals.append(Refusal("IIN_MISMATCH", f"request IIN {signer_iin}, certificate IIN {found or 'none'}"))
    return refusals
