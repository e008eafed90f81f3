"""Folders of certificate files: the certificates X509IssuerSerial may name (`gateway.certificate_dirs`), and
the CA certificates an integrator trusts (`shep pki trust add`, kept in `<state_dir>/pki/trusted/`).

Both are read when the gateway starts. Nothing here takes a certificate's public key: `cryptography`
cannot load GOST keys, and the national CA's roots may be GOST.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from gateway.security.certs import load_certificates
from gateway.security.keyfiles import write_atomically

SUFFIXES = (".pem", ".crt", ".cer", ".der")


def read_certificates(path: Path) -> list[x509.Certificate]:
    """A PEM (one or several) or DER certificate file; ValueError naming a file that holds none."""
    try:
        return load_certificates(path.read_bytes())
    except ValueError as error:
        raise ValueError(f"{path}: not a PEM or DER certificate ({error})") from None


def read_folder(directory: Path) -> list[x509.Certificate]:
    """The certificates in a folder's .pem, .crt, .cer and .der files (PEM, several to a file, or DER);
    ValueError naming a file that holds none."""
    return [cert for path in sorted(directory.iterdir()) if path.suffix.lower() in SUFFIXES and path.is_file()
            for cert in read_certificates(path)]


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def ca_problem(cert: x509.Certificate) -> str | None:
    """Why `cert` cannot be a trust anchor or intermediate, or None: a CA certificate (BasicConstraints CA,
    and keyCertSign when it has a key usage)."""
    try:
        if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return "BasicConstraints says CA:FALSE: an end-entity certificate, not a CA"
    except x509.ExtensionNotFound:
        return "no BasicConstraints extension: not a CA certificate"
    try:
        if not cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign:
            return "its key usage does not include keyCertSign"
    except x509.ExtensionNotFound:
        pass
    return None


@dataclass(frozen=True)
class Trusted:
    path: Path
    certificate: x509.Certificate

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)

    @property
    def role(self) -> str:
        # The validator's rule (app._security): self-signed certificates are anchors.
        return "anchor" if self.certificate.issuer == self.certificate.subject else "intermediate"


class TrustFolder:
    """CA certificates, one PEM file each, named by their SHA-256 fingerprint (adding twice changes nothing)."""

    def __init__(self, directory: Path):
        self.dir = directory

    @classmethod
    def of_pki(cls, pki_dir: Path) -> TrustFolder:
        """The folder beside the test PKI's state (`TestPKI.dir`), which `shep serve` reads."""
        return cls(pki_dir / "trusted")

    def entries(self) -> list[Trusted]:
        if not self.dir.is_dir():
            return []
        return [Trusted(path, read_certificates(path)[0]) for path in sorted(self.dir.glob("*.pem"))]

    def certificates(self) -> list[x509.Certificate]:
        return [entry.certificate for entry in self.entries()]

    def add(self, data: bytes) -> list[tuple[Trusted, bool]]:
        """Each certificate of a PEM (one or several) or DER file, and whether it was new; ValueError, with
        nothing written, when one is not a CA certificate."""
        certificates = load_certificates(data)
        for cert in certificates:
            problem = ca_problem(cert)
            if problem:
                raise ValueError(f"{cert.subject.rfc4514_string()}: {problem}")
        added = []
        for cert in certificates:
            entry = Trusted(self.dir / f"{fingerprint(cert)}.pem", cert)
            new = not entry.path.exists()
            if new:
                write_atomically(entry.path, cert.public_bytes(serialization.Encoding.PEM))
            added.append((entry, new))
        return added

    def remove(self, which: str) -> Trusted:
        """The entry whose fingerprint starts with `which` (8 hex digits at least), deleted; KeyError when
        none or several match."""
        prefix = which.lower().replace(":", "")
        if len(prefix) < 8 or prefix.strip("0123456789abcdef"):
            raise KeyError(f"{which!r} is not 8 or more hex digits of a fingerprint")
        matches = [entry for entry in self.entries() if entry.fingerprint.startswith(prefix)]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} trusted certificates have a fingerprint starting {prefix}")
        matches[0].path.unlink()
        return matches[0]
