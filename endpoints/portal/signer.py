"""The citizen's EDS (ЭЦП / ЭЦҚ) and condition 2 of diagram 1.

The portal stands in for the citizen's own signing application (NCALayer): it keeps each citizen's
SIGN keys and certificates under `<state_dir>/portal/certs/<IIN>/` (a citizen may hold several and
chooses one to sign with). Condition 2 checks the certificate
before anything is sent: validity period, revocation (OCSP/CRL), chain to the national CA, SIGN usage,
and that the IIN in the request is the IIN in the certificate.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from gateway.security.algorithms import SignatureError
from gateway.security.certs import CertificateValidator
from gateway.security.identity import signer_iin_matches, subject_bin, subject_iin
from gateway.security.keyfiles import load_private_key, same_key, save_credentials, write_atomically

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


def parse_pkcs12(data: bytes, password: str | None = None) -> Credentials:
    """A PKCS#12 container (.p12 / .pfx, as the national CA hands it out) with its password; ValueError says
    what is wrong. Its certificate is the one its key belongs to (a container may carry the chain too)."""
    try:
        key, certificate, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"pkcs12: not a readable PKCS#12 container, or the wrong password ({exc})") from None
    if key is None:
        raise ValueError("pkcs12: the container holds no private key")
    for candidate in [certificate, *extra]:
        if candidate is not None and same_key(key, candidate):
            return Credentials(key, candidate)
    raise ValueError("pkcs12: the container holds no certificate of its private key")


def describe(certificate: x509.Certificate) -> dict:
    """The certificate as the citizen sees it when choosing it."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return {"id": certificate_id(certificate), "subject": certificate.subject.rfc4514_string(),
            "common_name": names[0].value if names else None,
            "iin": subject_iin(certificate), "bin": subject_bin(certificate),
            "serial": str(certificate.serial_number), "issuer": certificate.issuer.rfc4514_string(),
            "not_before": certificate.not_valid_before_utc.isoformat(),
            "not_after": certificate.not_valid_after_utc.isoformat()}


class CertificateStore:
    """The citizen's SIGN keys and certificates (a citizen may hold several), as PEM files, the key 0600:
    `<IIN>/<id>/key.pem` and `cert.pem`, `id` the certificate's SHA-256 prefix; `<IIN>/chosen` names the
    one chosen for signing. A pair directly under `<IIN>/` (the one-certificate layout) is one of them."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _dir(self, iin: str) -> Path:
        if not (len(iin) == 12 and iin.isascii() and iin.isdigit()):
            raise ValueError(f"not an IIN: {iin!r}")  # it becomes a path: digits only
        return self.directory / iin

    def save(self, iin: str, credentials: Credentials, *, choose: bool = True) -> str:
        """Keep the pair (once: the same certificate again is the same entry); its id."""
        entry = certificate_id(credentials.certificate)
        folder = self._dir(iin) / entry
        # Key first, certificate second: a reader pairing them compares the public keys (load).
        save_credentials(folder / "key.pem", folder / "cert.pem", credentials.key, credentials.certificate)
        if choose:
            self.choose(iin, entry)
        return entry

    def choose(self, iin: str, entry: str) -> None:
        if entry not in self.ids(iin):
            raise KeyError(entry)
        write_atomically(self._dir(iin) / "chosen", entry.encode())

    def ids(self, iin: str) -> list[str]:
        """The ids of the citizen's certificates, oldest first."""
        return [entry for entry, _ in self._folders(iin)]

    def _folders(self, iin: str) -> list[tuple[str, Path]]:
        base = self._dir(iin)
        folders = [path for path in base.iterdir() if path.is_dir() and (path / "cert.pem").is_file()] \
            if base.is_dir() else []
        found = [(path.name, path) for path in sorted(folders, key=lambda path: (path / "cert.pem").stat().st_mtime_ns)]
        if (base / "cert.pem").is_file():
            legacy = x509.load_pem_x509_certificate((base / "cert.pem").read_bytes())
            found.insert(0, (certificate_id(legacy), base))
        return found

    def chosen(self, iin: str) -> str | None:
        """The id chosen for signing: the one last chosen, else the only or newest one."""
        ids = self.ids(iin)
        try:
            entry = (self._dir(iin) / "chosen").read_text().strip()
        except FileNotFoundError:
            entry = None
        return entry if entry in ids else (ids[-1] if ids else None)

    def load(self, iin: str, entry: str | None = None) -> Credentials | None:
        """The pair `entry` (default: the chosen one); None when there is no such pair."""
        entry = entry or self.chosen(iin)
        folder = dict(self._folders(iin)).get(entry) if entry else None
        if folder is None:
            return None
        key = load_private_key((folder / "key.pem").read_bytes())
        certificate = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
        return Credentials(key, certificate)

    def all(self, iin: str) -> list[tuple[str, Credentials]]:
        return [(entry, self.load(iin, entry)) for entry in self.ids(iin)]


def certificate_id(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()[:16]


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
