"""Folders of certificate files: the certificates X509IssuerSerial may name (`gateway.certificate_dirs`),
read when the gateway starts."""
from __future__ import annotations

from pathlib import Path

from cryptography import x509

from gateway.security.certs import load_certificates

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
