"""Keys and certificates on disk, as every party keeps them: PEM files replaced atomically, keys 0600."""
from __future__ import annotations

import base64
import binascii
import os
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from gateway.security.gost.keys import GostPrivateKey, KeyFormatError
from gateway.security.gost.x509 import public_key


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """A reader (another worker process, say) sees the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def key_pem(key) -> bytes:
    """An unencrypted PKCS#8 PEM: the test PKI's keys are synthetic, and the file mode protects them."""
    if isinstance(key, GostPrivateKey):
        return key.pem()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(data: bytes, password: bytes | None = None):
    """A PEM private key: RSA or EC (cryptography), or an unencrypted PKCS#8 GOST key; ValueError otherwise."""
    try:
        return serialization.load_pem_private_key(data, password)
    except UnsupportedAlgorithm:
        pass
    except ValueError:
        if b"-----BEGIN PRIVATE KEY-----" not in data:
            raise
    try:
        body = data.split(b"-----BEGIN PRIVATE KEY-----", 1)[1].split(b"-----END PRIVATE KEY-----", 1)[0]
        return GostPrivateKey.from_pkcs8(base64.b64decode(b"".join(body.split()), validate=True))
    except (IndexError, binascii.Error, KeyFormatError) as exc:
        raise ValueError(f"not a readable PEM private key: {exc}") from None


def same_key(key, cert: x509.Certificate) -> bool:
    """Whether `key` is the private key of `cert` (any algorithm)."""
    try:
        return key.public_key() == public_key(cert)
    except ValueError:
        return False


def save_credentials(key_path: Path, cert_path: Path, key, cert: x509.Certificate) -> None:
    write_atomically(key_path, key_pem(key), 0o600)
    write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def load_credentials(key_path: Path, cert_path: Path) -> tuple:
    return (load_private_key(key_path.read_bytes()),
            x509.load_pem_x509_certificate(cert_path.read_bytes()))
