"""Keys and certificates on disk, as every party keeps them: PEM files replaced atomically, keys 0600."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization


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
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def save_credentials(key_path: Path, cert_path: Path, key, cert: x509.Certificate) -> None:
    write_atomically(key_path, key_pem(key), 0o600)
    write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def load_credentials(key_path: Path, cert_path: Path) -> tuple:
    return (serialization.load_pem_private_key(key_path.read_bytes(), None),
            x509.load_pem_x509_certificate(cert_path.read_bytes()))
