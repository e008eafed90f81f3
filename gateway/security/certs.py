"""Certificate checks for every signature: chain to the trust anchors, validity, key usage, revocation.

Signature modules (`wss`, `xmldsig`) prove *which* certificate signed; this module decides whether
that certificate may be trusted at the message time. Failures are `SignatureError`s named after
catalogue faults (CERT_*).
"""
from __future__ import annotations

import os
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from gateway.security.algorithms import SignatureError
from gateway.security.gost import x509 as gost_x509
from gateway.security.gost.x509 import issued_by

REVOCATION_MODES = ("ocsp", "crl", "ocsp,crl", "none")
_MAX_CHAIN = 6
_MAX_CACHED_PATHS = 4096


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """PEM (one or several) or a single DER certificate."""
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


@dataclass
class Revocation:
    status: str  # good | revoked | unknown
    detail: str
    expires: float  # monotonic deadline of this cached answer


class RevocationChecker:
    """OCSP and/or CRL, each answer cached for at most `cache_seconds` (and never past nextUpdate)."""

    def __init__(self, mode: str = "ocsp,crl", *, cache_seconds: float = 300, timeout: float = 5,
                 fetch: Callable[[str, bytes | None, float], bytes] | None = None, watch: Path | None = None):
        """`watch`: a file whose change empties the cache (the test PKI's index, which `shep pki revoke`
        rewrites), so a revocation made next to the gateway counts at once, not after `cache_seconds`."""
        if mode not in REVOCATION_MODES:
            raise ValueError(f"revocation mode must be one of {', '.join(REVOCATION_MODES)}")
        self.mode = mode
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.fetch = fetch or _http_fetch
        self._cache: dict[tuple, Revocation] = {}
        self._crls: dict[str, tuple[x509.CertificateRevocationList, float]] = {}
        self._lock = threading.Lock()
        self._watch = watch
        self._watched = self._stamp()

    def _stamp(self) -> tuple | None:
        try:
            st = self._watch.stat() if self._watch is not None else None
        except OSError:
            return None
        return None if st is None else (st.st_ino, st.st_mtime_ns, st.st_size)

    def _forget_if_changed(self) -> None:
        stamp = self._stamp()
        if stamp != self._watched:
            with self._lock:
                self._cache.clear()
                self._crls.clear()
                self._watched = stamp

    def status(self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime) -> Revocation:
        if self.mode == "none":
            return Revocation("good", "revocation checking is off", 0)
        if self._watch is not None:
            self._forget_if_changed()
        key = (issuer.fingerprint(hashes.SHA256()), cert.serial_number)
        with self._lock:
            cached = self._cache.get(key)
        if cached and cached.expires > time.monotonic():
            return cached
        answer = Revocation("unknown", "no revocation source", 0)
        for source in self.mode.split(","):
            answer = self._ocsp(cert, issuer, now) if source == "ocsp" else self._crl(cert, issuer, now)
            if answer.status != "unknown":
                break
        if answer.status != "unknown":
            with self._lock:
                self._cache[key] = answer
        return answer

    def _deadline(self, next_update: datetime | None, now: datetime) -> float:
        ttl = self.cache_seconds
        if next_update is not None:
            ttl = min(ttl, max(0.0, (next_update - now).total_seconds()))
        return time.monotonic() + ttl

    def _ocsp(self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime) -> Revocation:
        urls = _aia(cert, AuthorityInformationAccessOID.OCSP)
        if not urls:
            return Revocation("unknown", "the certificate names no OCSP responder", 0)
        nonce = os.urandom(16)
        request = (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
                   .add_extension(x509.OCSPNonce(nonce), critical=False).build())
        try:
            raw = self.fetch(urls[0], request.public_bytes(serialization.Encoding.DER), self.timeout)
            response = ocsp.load_der_ocsp_response(raw)
        except (OSError, ValueError) as exc:
            return Revocation("unknown", f"OCSP {urls[0]}: {exc}", 0)
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return Revocation("unknown", f"OCSP {urls[0]}: {response.response_status.name}", 0)
        problem = _ocsp_problem(response, cert, issuer, nonce, now)
        if problem:
            return Revocation("unknown", f"OCSP {urls[0]}: {problem}", 0)
        expires = self._deadline(response.next_update_utc, now)
        if response.certificate_status == ocsp.OCSPCertStatus.GOOD:
            return Revocation("good", f"OCSP {urls[0]}: good", expires)
        if response.certificate_status == ocsp.OCSPCertStatus.REVOKED:
            reason = response.revocation_reason.name if response.revocation_reason else "unspecified"
            return Revocation("revoked", f"OCSP: revoked {response.revocation_time_utc:%Y-%m-%d %H:%M} UTC "
                                         f"({reason})", expires)
        return Revocation("unknown", f"OCSP {urls[0]}: the responder does not know the certificate", 0)

    def _crl(self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime) -> Revocation:
        urls = _crl_urls(cert)
        if not urls:
            return Revocation("unknown", "the certificate names no CRL distribution point", 0)
        url = urls[0]
        with self._lock:
            cached = self._crls.get(url)
        if cached and cached[1] > time.monotonic():
            crl = cached[0]
        else:
            try:
                raw = self.fetch(url, None, self.timeout)
                crl = x509.load_der_x509_crl(raw) if not raw.startswith(b"-----") else x509.load_pem_x509_crl(raw)
            except (OSError, ValueError) as exc:
                return Revocation("unknown", f"CRL {url}: {exc}", 0)
            if not gost_x509.signed_by(crl, gost_x509.public_key(issuer)):
                return Revocation("unknown", f"CRL {url}: not signed by {issuer.subject.rfc4514_string()}", 0)
            if crl.next_update_utc is not None and crl.next_update_utc < now:
                return Revocation("unknown", f"CRL {url}: stale (nextUpdate {crl.next_update_utc:%Y-%m-%d %H:%M})", 0)
            with self._lock:
                self._crls[url] = (crl, self._deadline(crl.next_update_utc, now))
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        expires = self._deadline(crl.next_update_utc, now)
        if entry is None:
            return Revocation("good", f"CRL {url}: not listed", expires)
        return Revocation("revoked", f"CRL: revoked {entry.revocation_date_utc:%Y-%m-%d %H:%M} UTC", expires)


def _aia(cert: x509.Certificate, method) -> list[str]:
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [d.access_location.value for d in access if d.access_method == method
            and isinstance(d.access_location, x509.UniformResourceIdentifier)]


def _crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [name.value for point in points for name in (point.full_name or [])
            if isinstance(name, x509.UniformResourceIdentifier)]


def _ocsp_problem(response, cert, issuer, nonce: bytes, now: datetime) -> str | None:
    """cryptography does not verify OCSP responses (library notes §8): check signer, signature, ids, time, nonce."""
    if response.serial_number != cert.serial_number:
        return "the answer is about another certificate"
    signer = issuer
    for candidate in response.certificates:
        if issued_by(candidate, issuer) and _has_ocsp_signing(candidate):
            signer = candidate
            break
    if not gost_x509.signed_by(response, gost_x509.public_key(signer)):
        return "the response signature does not verify"
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        echoed = None
    if echoed is not None and echoed != nonce:
        return "the nonce does not match"
    if response.next_update_utc is not None and response.next_update_utc < now - timedelta(minutes=5):
        return "the answer is stale"
    return None


def _has_ocsp_signing(cert: x509.Certificate) -> bool:
    try:
        return ExtendedKeyUsageOID.OCSP_SIGNING in cert.extensions.get_extension_for_class(
            x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False


def _http_fetch(url: str, body: bytes | None, timeout: float) -> bytes:
    headers = {"Content-Type": "application/ocsp-request"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read(1024 * 1024)


@dataclass
class ValidatedCertificate:
    certificate: x509.Certificate
    chain: list[x509.Certificate]  # leaf first, anchor last
    revocation: str


class CertificateValidator:
    """Decides whether a signer's certificate is trusted at a given time (НУЦ РК chain, validity, usage, CRL/OCSP)."""

    def __init__(self, anchors: list[x509.Certificate], intermediates: list[x509.Certificate],
                 revocation: RevocationChecker):
        self.anchors = list(anchors)
        self.intermediates = list(intermediates)
        self.revocation = revocation
        # The path from a certificate to an anchor depends only on the certificates, so each signer's
        # path (the costly part: a signature check per link) is found once; validity and revocation
        # are still decided per message.
        self._paths: dict[x509.Certificate, list[x509.Certificate]] = {}
        self._paths_lock = threading.Lock()

    def validate(self, cert: x509.Certificate, *, at: datetime, signing: bool = True,
                 what: str = "signature") -> ValidatedCertificate:
        if at < cert.not_valid_before_utc:
            raise SignatureError("CERT_NOT_YET_VALID", f"{what}: {cert.subject.rfc4514_string()} is valid from "
                                                       f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
        if at > cert.not_valid_after_utc:
            raise SignatureError("CERT_EXPIRED", f"{what}: {cert.subject.rfc4514_string()} expired "
                                                 f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
        chain = self._chain(cert, at, what)
        if signing:
            _require_signing_usage(cert, what)
        # The signer's certificate is checked; CA certificates are trusted as configured.
        answer = self.revocation.status(cert, chain[1], at) if len(chain) > 1 else None
        if answer is not None and answer.status == "revoked":
            raise SignatureError("CERT_REVOKED", f"{what}: {cert.subject.rfc4514_string()}: {answer.detail}")
        if answer is not None and answer.status == "unknown":
            raise SignatureError("CERT_REVOCATION_UNKNOWN", f"{what}: {cert.subject.rfc4514_string()}: "
                                                            f"{answer.detail}")
        return ValidatedCertificate(cert, chain, answer.detail if answer else "trust anchor")

    def _chain(self, cert: x509.Certificate, at: datetime, what: str) -> list[x509.Certificate]:
        with self._paths_lock:
            path = self._paths.get(cert)
        if path is None:
            path = self._path(cert, what)
            with self._paths_lock:
                if len(self._paths) >= _MAX_CACHED_PATHS:
                    self._paths.clear()
                self._paths[cert] = path
        for issuer in path[1:]:
            if issuer not in self.anchors and not issuer.not_valid_before_utc <= at <= issuer.not_valid_after_utc:
                raise SignatureError("CERT_UNTRUSTED", f"{what}: issuing CA {issuer.subject.rfc4514_string()} "
                                                       "is not valid at the message time")
        return list(path)

    def _path(self, cert: x509.Certificate, what: str) -> list[x509.Certificate]:
        chain = [cert]
        current = cert
        for _ in range(_MAX_CHAIN):
            anchor = next((a for a in self.anchors if a.subject == current.issuer and issued_by(current, a)), None)
            if anchor is not None:
                if current.fingerprint(hashes.SHA256()) != anchor.fingerprint(hashes.SHA256()):
                    chain.append(anchor)
                return chain
            issuer = next((i for i in self.intermediates
                           if i.subject == current.issuer and _is_ca(i) and issued_by(current, i)), None)
            if issuer is None:
                break
            chain.append(issuer)
            current = issuer
        raise SignatureError("CERT_UNTRUSTED", f"{what}: {cert.subject.rfc4514_string()} (issuer "
                                               f"{cert.issuer.rfc4514_string()}) does not chain to a trust anchor")


def _require_signing_usage(cert: x509.Certificate, what: str) -> None:
    """SIGN keys carry digitalSignature + nonRepudiation; AUTH keys (keyEncipherment) must not sign documents."""
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise SignatureError("CERT_KEY_USAGE", f"{what}: the certificate has no key usage") from None
    if not (usage.digital_signature and usage.content_commitment):
        raise SignatureError("CERT_KEY_USAGE", f"{what}: key usage lacks digitalSignature+nonRepudiation "
                                               "(an AUTH certificate cannot sign)")
