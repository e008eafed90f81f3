"""RFC 3161 time-stamps (уақыт белгісі) of journal checkpoints: asking a TSA for one, and checking one.

A token proves that the checkpoint's signed bytes existed at its time, by a party other than the gateway:
whoever holds the gateway's key can sign a back-dated checkpoint, not a back-dated token. The imprint is
SHA-256; the token is kept as the TSA sent it (DER, base64 in the checkpoint line), so `openssl ts -verify`
checks it too.
"""
from __future__ import annotations

import hashlib
import secrets
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import core, tsp
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.security.algorithms import SignatureError
from gateway.security.certs import CertificateValidator, RevocationChecker
from gateway.security.cms import PARSE_ERRORS, CMSError, verify

TIMEOUT_SECONDS = 10.0
MAX_REPLY_BYTES = 1024 * 1024

# A time-stamp query's DER -> the TSA's reply DER (over HTTP, or the built-in test PKI's in-process).
Timestamper = Callable[[bytes], bytes]


class TimeStampResp(core.Sequence):
    """RFC 3161 §2.4.2, whose token is absent from a refusal (asn1crypto's class requires it)."""
    _fields = [("status", tsp.PKIStatusInfo), ("time_stamp_token", tsp.ContentInfo, {"optional": True})]


class TimestampError(ValueError):
    """A TSA that did not grant a token, or a token that does not prove what it should."""


def http_timestamper(url: str, timeout: float = TIMEOUT_SECONDS) -> Timestamper:
    """Queries POSTed as application/timestamp-query (RFC 3161 §3.4)."""
    def ask(query: bytes) -> bytes:
        request = urllib.request.Request(url, data=query, method="POST",
                                         headers={"Content-Type": "application/timestamp-query"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read(MAX_REPLY_BYTES)
    return ask


def obtain(timestamper: Timestamper, data: bytes) -> bytes:
    """A DER token over SHA-256(`data`) from the TSA; TimestampError (or OSError) when it gives none."""
    nonce = secrets.randbits(63)
    imprint = hashlib.sha256(data).digest()
    query = tsp.TimeStampReq({"version": "v1", "message_imprint": {"hash_algorithm": {"algorithm": "sha256"},
                                                                   "hashed_message": imprint},
                              "nonce": nonce, "cert_req": True}).dump()
    try:
        reply = TimeStampResp.load(timestamper(query), strict=True)
        status = reply["status"]["status"].native
        token = reply["time_stamp_token"]
        if status not in ("granted", "granted_with_mods") or not isinstance(token, tsp.ContentInfo):
            text = "; ".join(reply["status"]["status_string"].native or [])
            raise TimestampError(f"the TSA answered {status}{': ' + text if text else ''}")
        info = _tst_info(verify(token.dump()))
    except TimestampError:
        raise
    except (ValueError, TypeError, KeyError) as exc:  # CMSError and asn1crypto's parse errors alike
        raise TimestampError(f"the TSA's reply is not a valid time-stamp: {exc}") from None
    if info["message_imprint"]["hashed_message"].native != imprint or info["nonce"].native != nonce:
        raise TimestampError("the TSA's token is not for this query (imprint or nonce differ)")
    return token.dump()


def _tst_info(verified) -> tsp.TSTInfo:
    if verified.content_type != "tst_info":
        raise TimestampError(f"the token signs {verified.content_type}, not a TSTInfo")
    return tsp.TSTInfo.load(verified.content)


@dataclass(frozen=True)
class Stamp:
    time: datetime
    tsa: str  # the TSA certificate's subject


def check(token: bytes, data: bytes, anchors: list[x509.Certificate],
          intermediates: list[x509.Certificate]) -> Stamp:
    """That `token` is a TSA's signature over `data`'s digest whose certificate chains to `anchors`."""
    try:
        return _check(token, data, anchors, intermediates)
    except TimestampError:
        raise
    except CMSError as exc:
        raise TimestampError(str(exc)) from None
    except PARSE_ERRORS as exc:
        raise TimestampError(f"not an RFC 3161 token: {exc}") from None


def _check(token: bytes, data: bytes, anchors: list[x509.Certificate],
           intermediates: list[x509.Certificate]) -> Stamp:
    verified = verify(token)
    info = _tst_info(verified)
    imprint = info["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    if algorithm not in ("sha256", "sha384", "sha512"):
        raise TimestampError(f"the imprint's hash {algorithm} is not accepted")
    if imprint["hashed_message"].native != hashlib.new(algorithm, data).digest():
        raise TimestampError("the token's imprint is not of these bytes (the checkpoint was changed)")
    at = info["gen_time"].native
    signer = verified.signer
    try:
        usage = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.critical or list(usage.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise TimestampError(f"{signer.subject.rfc4514_string()} is not a TSA certificate (RFC 3161 §2.3: "
                             "extendedKeyUsage timeStamping only, critical)")
    validator = CertificateValidator(anchors, [*intermediates, *verified.certificates], RevocationChecker("none"))
    try:
        validator.validate(signer, at=at, signing=False, what="time-stamp")
    except SignatureError as exc:
        raise TimestampError(exc.detail) from None
    return Stamp(at, signer.subject.rfc4514_string())
