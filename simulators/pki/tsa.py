"""The test CA's time-stamp authority (TSA, уақыт белгісі қызметі; НУЦ РК's is tsp.pki.gov.kz): RFC 3161.

One TSA certificate per issuing CA (extendedKeyUsage timeStamping, critical, as RFC 3161 §2.3 requires),
issued on first use. A TimeStampReq's message imprint is answered with a TimeStampResp whose token is a
CMS SignedData over a TSTInfo (gateway.security.cms); refusals are `rejection` statuses, never exceptions.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from asn1crypto import tsp
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.security import cms
from gateway.timestamps import TimeStampResp
from simulators.pki.hierarchy import ALGORITHMS, CLOCK_SKEW, GATEWAY_VALID_DAYS, ISSUING, available, utc_now

# The test TSA's policy: an OID of the UUID arc (X.667), owned by nobody else and by no real TSA.
POLICY = "2.25.60994805642124354406238987547802908782"
# Imprint hashes a request may use, and their lengths.
IMPRINT_HASHES = {"sha256": 32, "sha384": 48, "sha512": 64}


class TimeStamping:
    """RFC 3161 for TestPKI, which it is mixed into (its lock, index, keys and CA certificates)."""

    def _tsa_folder(self, alg: str) -> str:
        return f"ca/{ISSUING[alg].slug}/tsa"

    def tsa_certificate(self, alg: str) -> x509.Certificate:
        """The TSA certificate issued by the CA of `alg` (made on first use); KeyError for an unknown alg."""
        ca = self._issuing(alg)
        if available(alg) is not None:
            raise KeyError(f"{alg}: {available(alg)}")
        self._require_initialised()
        folder = self._tsa_folder(alg)
        if not (self.dir / folder / "cert.pem").exists():
            with self._locked():
                if not (self.dir / folder / "cert.pem").exists():
                    self._save_index(self._read_index() + [self._make_tsa(ca)])
        return self._cert(f"{folder}/cert.pem")

    def _make_tsa(self, ca) -> dict:
        now = utc_now()
        key = ALGORITHMS[ca.alg]()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{ca.name} TSA"),
                          x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ")])
        cert = self._sign(
            self._builder(ca, name, key.public_key(), now - CLOCK_SKEW, now + timedelta(days=GATEWAY_VALID_DAYS),
                          self.base_url)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True),
            ca, key.public_key())
        self._store(self._tsa_folder(ca.alg), key, cert)
        return self._record(cert, kind="tsa", alg=ca.alg, usage=None, subject={"cn": f"{ca.name} TSA"}, issuer=ca)

    def timestamp(self, request_der: bytes, alg: str | None = None) -> bytes:
        """The DER TimeStampResp to a DER TimeStampReq, signed by the TSA of `alg` (default: `default_alg`)."""
        try:
            request = tsp.TimeStampReq.load(request_der, strict=True)
            request.native  # noqa: B018 (asn1crypto parses lazily: a malformed field is refused here)
        except (ValueError, TypeError, KeyError):
            return _rejected("bad_data_format", "not a DER TimeStampReq")
        if request["version"].native != "v1":
            return _rejected("bad_request", "only version 1 requests are answered")
        imprint = request["message_imprint"]
        hash_name = imprint["hash_algorithm"]["algorithm"].native
        if hash_name not in IMPRINT_HASHES:
            return _rejected("bad_alg", f"imprint hash {hash_name} is not accepted; one of "
                                        f"{', '.join(IMPRINT_HASHES)}")
        if len(imprint["hashed_message"].native) != IMPRINT_HASHES[hash_name]:
            return _rejected("bad_data_format", f"the imprint is not a {hash_name} value")
        if request["req_policy"].native not in (None, POLICY):
            return _rejected("unaccepted_policy", f"this TSA issues under policy {POLICY} only")
        if len(request["extensions"]):
            return _rejected("unaccepted_extensions", "no request extension is supported")
        alg = alg or self.default_alg
        cert = self.tsa_certificate(alg)
        now = utc_now()
        info = {"version": "v1", "policy": POLICY, "message_imprint": imprint,
                "serial_number": secrets.randbits(63) | 1, "gen_time": now,
                "accuracy": {"seconds": 1}}
        if request["nonce"].native is not None:
            info["nonce"] = request["nonce"].native
        # Without certReq the token carries no certificate (RFC 3161 §2.4.1): the verifier has them.
        token = cms.sign(tsp.TSTInfo(info).dump(), self._key(f"{self._tsa_folder(alg)}/key.pem"), cert,
                         content_type="tst_info", signing_time=now, ess_certificate=True,
                         certificates=(cert, self.issuing_ca(alg)) if request["cert_req"].native else ())
        return TimeStampResp({"status": {"status": "granted"},
                              "time_stamp_token": tsp.ContentInfo.load(token)}).dump()


def _rejected(failure: str, text: str) -> bytes:
    return TimeStampResp({"status": {"status": "rejection", "status_string": [text],
                                     "fail_info": tsp.PKIFailureInfo({failure})}}).dump()
