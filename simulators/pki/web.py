"""HTTP face of the test PKI, mounted at `/pki`: CA certificates, CRLs, OCSP (RFC 6960 appendix A) and the
time-stamp authority (RFC 3161 §3.4)."""
from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.serialization import Encoding
from twisted.web import resource

from gateway.web.body import read_body
from simulators.pki.ca import NotInitialised, TestPKI
from simulators.pki.hierarchy import ISSUING

MAX_OCSP_REQUEST = 64 * 1024  # a request holds one CertID and a nonce: a few hundred bytes
MAX_TSA_REQUEST = 64 * 1024  # an imprint, a nonce, a policy: about a hundred bytes
# POST path -> (what it takes, its media type, its largest size, the answer's media type, the PKI's answer).
_OCSP = ("an OCSP request", b"application/ocsp-request", MAX_OCSP_REQUEST, b"application/ocsp-response")
_TSA = ("a time-stamp query", b"application/timestamp-query", MAX_TSA_REQUEST, b"application/timestamp-reply")
_POSTS = {
    ("ocsp",): (*_OCSP, lambda pki, der: pki.ocsp(der)),
    ("tsa",): (*_TSA, lambda pki, der: pki.timestamp(der)),  # the TSA of the gateway's algorithm
    **{("tsa", alg): (*_TSA, lambda pki, der, alg=alg: pki.timestamp(der, alg)) for alg in ISSUING},
}


def _decode_get_request(encoded: str) -> bytes:
    """The DER request of a GET: base64 (standard or URL-safe alphabet, padding optional) after URL decoding.

    Undecodable text gives b"", which the CA answers with malformedRequest like any other bad request.
    """
    text = encoded.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return b""


class PKIResource(resource.Resource):
    """GET crl/<slug>.crl, GET ca/<slug>.cer, POST ocsp, GET ocsp/<base64 request>, POST tsa[/<alg>]."""

    isLeaf = True

    def __init__(self, pki: TestPKI):
        super().__init__()
        self.pki = pki

    def _reply(self, request, status: int, content_type: bytes, body: bytes) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", content_type)
        return body

    def _text(self, request, status: int, message: str) -> bytes:
        return self._reply(request, status, b"text/plain; charset=utf-8", (message + "\n").encode("utf-8"))

    def _ocsp(self, request, der: bytes) -> bytes:
        return self._reply(request, 200, b"application/ocsp-response", self.pki.ocsp(der))

    def _guarded(self, request, handler) -> bytes:
        try:
            return handler()
        except NotInitialised as exc:
            return self._text(request, 503, str(exc))
        except KeyError:
            return self._text(request, 404, "no such CA")

    def render_GET(self, request):
        # Twisted URL-decodes each path segment; an unescaped "/" of base64 splits the request, so rejoin it.
        segments = [s.decode("utf-8", "replace") for s in request.postpath]
        if len(segments) >= 2 and segments[0] == "ocsp":
            return self._guarded(request, lambda: self._ocsp(request, _decode_get_request("/".join(segments[1:]))))
        if len(segments) == 2 and segments[0] == "crl" and segments[1].endswith(".crl"):
            slug = segments[1][:-len(".crl")]
            return self._guarded(request, lambda: self._reply(request, 200, b"application/pkix-crl",
                                                              self.pki.crl(slug)))
        if len(segments) == 2 and segments[0] == "ca" and segments[1].endswith(".cer"):
            slug = segments[1][:-len(".cer")]
            return self._guarded(request, lambda: self._reply(
                request, 200, b"application/pkix-cert", self.pki.ca_certificate(slug).public_bytes(Encoding.DER)))
        return self._text(request, 404, "not found")

    def render_POST(self, request):
        path = tuple(s.decode("utf-8", "replace") for s in request.postpath if s)
        if path not in _POSTS:
            return self._text(request, 404, "not found")
        what, wanted, limit, answer_type, answer = _POSTS[path]
        content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if content_type != wanted:
            return self._text(request, 415, f"{what} is sent as Content-Type: {wanted.decode()}")
        body = read_body(request, limit)
        if body is None:
            return self._text(request, 413, f"{what} is at most {limit} bytes")
        return self._guarded(request, lambda: self._reply(request, 200, answer_type, answer(self.pki, body)))


def pki_resource(pki: TestPKI) -> resource.Resource:
    """The `/pki` resource: mount it with `root.putChild(b"pki", pki_resource(pki))`."""
    return PKIResource(pki)
