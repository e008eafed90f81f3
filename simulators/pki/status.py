"""The test CA's revocation status services: CRLs per CA and an RFC 6960 OCSP responder (НУЦ РК's are
at crl.pki.gov.kz and ocsp.pki.gov.kz)."""
from __future__ import annotations

import time

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from gateway.security.gost import x509 as gost_x509
from gateway.security.gost.keys import GostPrivateKey
from simulators.pki.hierarchy import CA, CAS, ISSUING, PLACEHOLDER, UPDATE_INTERVAL, parse_iso, utc_now



class RevocationStatus:
    """CRL and OCSP for TestPKI, which it is mixed into (its index, keys and CA certificates)."""

    def crl(self, ca_slug: str) -> bytes:
        """The current CRL of one CA (DER), built now from the index."""
        issuer = self.ca_certificate(ca_slug)
        ca = CAS[ca_slug]
        now = utc_now()
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = (x509.CertificateRevocationListBuilder()
                   .issuer_name(issuer.subject)
                   .last_update(now)
                   .next_update(now + UPDATE_INTERVAL)
                   .add_extension(x509.CRLNumber(self._next_crl_number()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                                  critical=False))
        for record in self._records():
            if record["issuer_slug"] != ca_slug or record["status"] != "revoked":
                continue
            entry = (x509.RevokedCertificateBuilder()
                     .serial_number(int(record["serial"]))
                     .revocation_date(parse_iso(record["revoked_at"])))
            # RFC 5280 §5.3.1: the reason code is absent rather than "unspecified".
            if record["reason"] != x509.ReasonFlags.unspecified.name:
                entry = entry.add_extension(x509.CRLReason(x509.ReasonFlags[record["reason"]]), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return self._sign(builder, ca).public_bytes(serialization.Encoding.DER)

    def _next_crl_number(self) -> int:
        # Microseconds since the epoch increase from CRL to CRL, across processes too, without a stored
        # counter; within this process two CRLs in one microsecond still get distinct, increasing numbers.
        self._last_crl_number = max(time.time_ns() // 1000, self._last_crl_number + 1)
        return self._last_crl_number

    def _cert_id_hashes_of(self, ca: CA, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
        cache_key = (ca.slug, algorithm.name)
        if cache_key not in self._cert_id_hashes:
            # cryptography computes the CertID hashes from any certificate this CA issued: its responder's.
            request = (ocsp.OCSPRequestBuilder()
                       .add_certificate(self._cert(f"ca/{ca.slug}/ocsp/cert.pem"), self._ca_cert(ca), algorithm)
                       .build())
            self._cert_id_hashes[cache_key] = (request.issuer_name_hash, request.issuer_key_hash)
        return self._cert_id_hashes[cache_key]

    def ocsp(self, request_der: bytes) -> bytes:
        """An RFC 6960 response (DER) to a DER request; refusals are OCSP error statuses, never exceptions."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            cert_id = (request.issuer_name_hash, request.issuer_key_hash)
            serial = request.serial_number
            nonces = [e.value for e in request.extensions if isinstance(e.value, x509.OCSPNonce)]
        except (ValueError, UnsupportedAlgorithm, NotImplementedError):
            # NotImplementedError: several CertIDs in one request; cryptography answers one per response.
            return self._unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        self._require_initialised()
        ca = next((ca for ca in ISSUING.values()
                   if self.has_ca(ca) and self._cert_id_hashes_of(ca, algorithm) == cert_id), None)
        if ca is None:  # not one of our issuing CAs: no responder of ours may answer for it
            return self._unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        record = next((r for r in self._records() if r["serial"] == str(serial) and r["issuer_slug"] == ca.slug),
                      None)
        revoked_at = reason = None
        if record is None:
            status = ocsp.OCSPCertStatus.UNKNOWN
        elif record["status"] == "revoked":
            status = ocsp.OCSPCertStatus.REVOKED
            revoked_at = parse_iso(record["revoked_at"])
            if record["reason"] != x509.ReasonFlags.unspecified.name:
                reason = x509.ReasonFlags[record["reason"]]
        else:
            status = ocsp.OCSPCertStatus.GOOD
        now = utc_now()
        responder, key = self._cert(f"ca/{ca.slug}/ocsp/cert.pem"), self._key(f"ca/{ca.slug}/ocsp/key.pem")
        gost = isinstance(key, GostPrivateKey)
        # cryptography's builder reads the responder's key: a GOST responder is answered for by a stand-in
        # of the same name, replaced with the real certificate and signature afterwards.
        named = gost_x509.placeholder_certificate(responder.subject, PLACEHOLDER) if gost else responder
        builder = (ocsp.OCSPResponseBuilder()
                   .add_response_by_hash(cert_id[0], cert_id[1], serial, algorithm, status, now,
                                         now + UPDATE_INTERVAL, revoked_at, reason)
                   .responder_id(ocsp.OCSPResponderEncoding.NAME if gost else ocsp.OCSPResponderEncoding.HASH,
                                 named)
                   .certificates([named]))
        for nonce in nonces:
            builder = builder.add_extension(nonce, critical=False)
        response = builder.sign(PLACEHOLDER if gost else key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        return gost_x509.ocsp_with_gost(response, key, [responder]) if gost else response

    @staticmethod
    def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
        return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)
