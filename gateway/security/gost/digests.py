"""GOST hash functions: Streebog (ГОСТ Р 34.11-2015, 256/512) and ГОСТ 34.311-95 (ГОСТ Р 34.11-94).

The fast path is C: the GOST provider of OpenSSL 3 (Debian `libengine-gost-openssl`), loaded through
ctypes into a library context of its own, so nothing else in the process (hashlib, ssl) sees it.
Without it, Streebog falls back to `gostcrypto` (pure Python, ~3 ms per KB) and ГОСТ 34.311-95 is
unavailable. docs/signatures.md has the measurements.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os

log = logging.getLogger("shep.gost")

STREEBOG_256 = "streebog256"
STREEBOG_512 = "streebog512"
GOST34311 = "gost34311"
# Our name -> the OpenSSL GOST provider's digest name.
_OPENSSL_NAMES = {STREEBOG_256: b"md_gost12_256", STREEBOG_512: b"md_gost12_512", GOST34311: b"md_gost94"}
_SIZES = {STREEBOG_256: 32, STREEBOG_512: 64, GOST34311: 32}


class DigestUnavailable(Exception):
    """This hash cannot be computed here (the OpenSSL GOST provider is not installed)."""


class _OpenSSLProvider:
    def __init__(self):
        name = ctypes.util.find_library("crypto")
        if name is None:
            raise OSError("libcrypto not found")
        lib = ctypes.CDLL(name)
        if not hasattr(lib, "OSSL_LIB_CTX_new"):
            raise OSError(f"{name} is not OpenSSL 3")
        lib.OSSL_LIB_CTX_new.restype = ctypes.c_void_p
        lib.OSSL_PROVIDER_load.restype = ctypes.c_void_p
        lib.OSSL_PROVIDER_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.EVP_MD_fetch.restype = ctypes.c_void_p
        lib.EVP_MD_fetch.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.EVP_Digest.restype = ctypes.c_int
        lib.EVP_Digest.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                   ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p, ctypes.c_void_p]
        context = lib.OSSL_LIB_CTX_new()
        if not context or not lib.OSSL_PROVIDER_load(context, b"gostprov"):
            raise OSError("the OpenSSL GOST provider (gostprov) does not load: install libengine-gost-openssl")
        self._digest = lib.EVP_Digest
        self._methods = {}
        for ours, theirs in _OPENSSL_NAMES.items():
            method = lib.EVP_MD_fetch(context, theirs, None)
            if not method:
                raise OSError(f"the OpenSSL GOST provider has no {theirs.decode()}")
            self._methods[ours] = method  # fetched once, kept for the life of the process

    def __call__(self, name: str, data: bytes) -> bytes:
        out = ctypes.create_string_buffer(64)
        size = ctypes.c_uint(0)
        if self._digest(data, len(data), out, ctypes.byref(size), self._methods[name], None) != 1:
            raise RuntimeError(f"OpenSSL {name} failed")
        return out.raw[:size.value]


def _python(name: str, data: bytes) -> bytes:
    if name == GOST34311:
        raise DigestUnavailable(UNAVAILABLE)
    import gostcrypto  # only on the fallback path: importing it costs ~50 ms

    return bytes(gostcrypto.gosthash.new(name, data=data).digest())  # it answers a bytearray; asn1crypto takes bytes


@functools.lru_cache(maxsize=1)
def backend():
    """(name, function) of the implementation in use, chosen once per process; SHEP_GOST_PROVIDER=off
    takes the pure-Python path (to see what a machine without the Debian package does)."""
    if os.environ.get("SHEP_GOST_PROVIDER") == "off":
        return "python", _python
    try:
        return "openssl-gost", _OpenSSLProvider()
    except OSError as exc:
        log.warning("GOST hashes in pure Python (slow; ГОСТ 34.311-95 unavailable): %s", exc)
        return "python", _python


UNAVAILABLE = "ГОСТ 34.311-95 needs the OpenSSL GOST provider (Debian libengine-gost-openssl)"


def available(name: str) -> bool:
    """Only ГОСТ 34.311-95 has no pure-Python fallback."""
    return name != GOST34311 or backend()[0] != "python"


def digest(name: str, data: bytes) -> bytes:
    """The hash as the implementations write it (the byte string, not the standard's printed number)."""
    return backend()[1](name, data)


def size(name: str) -> int:
    return _SIZES[name]
