"""The test national CA (НУЦ РК / ҰКО): a root, issuing CAs per algorithm, OCSP responders, CRLs.

State lives in files under `<state_dir>/pki/` so that `shep pki` commands and a running server share
it: every change takes an exclusive `flock` on `.lock` and replaces `index.json` atomically; readers
re-read the index when it changes on disk. Keys are unencrypted PEM (0600): this CA is synthetic.
"""
from __future__ import annotations

import copy
import fcntl
import json
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from gateway.security.gost import x509 as gost_x509
from gateway.security.gost.keys import GOST2004, GOST2015, GostPrivateKey, GostPublicKey
from gateway.security.keyfiles import key_pem, load_private_key, save_credentials, write_atomically
from simulators.pki import profile

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
ROOT_YEARS = 20
ISSUING_YEARS = 15
# CA certificates start in the past so that expired and back-dated certificates fall inside their issuer's validity.
CA_BACKDATE = timedelta(days=5 * 365)
# End-entity certificates start a little before now: a verifier whose clock lags must still accept them.
CLOCK_SKEW = timedelta(minutes=5)
UPDATE_INTERVAL = timedelta(days=1)
GATEWAY_VALID_DAYS = 5 * 365
# remove_from_crl belongs to delta CRLs only, which this CA does not publish.
REVOCATION_REASONS = tuple(r.name for r in x509.ReasonFlags if r is not x509.ReasonFlags.remove_from_crl)


# Algorithm -> how to make a key; RSA and EC sign with SHA-256, GOST with its profile's hash.
ALGORITHMS: dict[str, Callable[[], CertificateIssuerPrivateKeyTypes | GostPrivateKey]] = {
    "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
    "gost2015": lambda: GostPrivateKey.generate(GOST2015),
    "gost2004": lambda: GostPrivateKey.generate(GOST2004),
}


@dataclass(frozen=True)
class CA:
    slug: str
    name: str
    alg: str
    parent: str  # the slug of the CA that signs this one's certificate (its own, for a root)


ROOT = CA("root", "ҰКО TEST ROOT", "rsa", "root")
# The national CA's GOST hierarchy has its own root (НЕГІЗГІ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (GOST) 2022, GOST 2015/512).
GOST_ROOT = CA("root_gost_test", "ҰКО TEST ROOT (GOST)", "gost2015", "root_gost_test")
ISSUING = {"rsa": CA("nca_rsa_test", "ҰКО TEST (RSA)", "rsa", ROOT.slug),
           "ec": CA("nca_ec_test", "ҰКО TEST (EC)", "ec", ROOT.slug),
           "gost2015": CA("nca_gost2015_test", "ҰКО TEST (GOST 2015)", "gost2015", GOST_ROOT.slug),
           "gost2004": CA("nca_gost2004_test", "ҰКО TEST (GOST 2004)", "gost2004", GOST_ROOT.slug)}
ROOTS = (ROOT, GOST_ROOT)
_CAS = {ca.slug: ca for ca in (*ROOTS, *ISSUING.values())}
# cryptography's builders need a key of theirs; for a GOST subject this one stands in until `with_gost`.
_PLACEHOLDER = gost_x509.placeholder_key()


class NotInitialised(RuntimeError):
    pass


@dataclass(frozen=True)
class IssuedCertificate:
    key: CertificateIssuerPrivateKeyTypes
    cert: x509.Certificate
    serial: int


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def _ca_name(ca: CA) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca.name), x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ")])


def _reason(reason: str) -> x509.ReasonFlags:
    """A ReasonFlags member from its name (key_compromise) or its RFC 5280 value (keyCompromise)."""
    for flag in x509.ReasonFlags:
        if reason in (flag.name, flag.value) and flag.name in REVOCATION_REASONS:
            return flag
    raise ValueError(f"unknown revocation reason {reason!r}; one of: {', '.join(REVOCATION_REASONS)}")


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _certificate_builder(subject: x509.Name, public_key) -> x509.CertificateBuilder:
    """A builder with the subject, its key and SKI (RFC 5280 method 1), a GOST key by its placeholder."""
    if isinstance(public_key, GostPublicKey):
        return (x509.CertificateBuilder().subject_name(subject).public_key(_PLACEHOLDER.public_key())
                .add_extension(x509.SubjectKeyIdentifier(public_key.key_identifier()), critical=False))
    return (x509.CertificateBuilder().subject_name(subject).public_key(public_key)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def _signed(builder, signer, subject_key=None):
    """The certificate or CRL of `builder`, signed by `signer`; a GOST one through `gost_x509.with_gost`."""
    crl = isinstance(builder, x509.CertificateRevocationListBuilder)
    if not isinstance(signer, GostPrivateKey):
        return builder.sign(signer, hashes.SHA256())
    der = builder.sign(_PLACEHOLDER, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    if crl:
        return x509.load_der_x509_crl(gost_x509.with_gost(der, "crl", signer))
    gost_key = subject_key if isinstance(subject_key, GostPublicKey) else None
    return x509.load_der_x509_certificate(gost_x509.with_gost(der, "certificate", signer, gost_key))


class TestPKI:
    """The test CA over one state directory; cheap to construct, loads keys and certificates on first use."""

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, state_dir: Path, default_alg: str = "rsa"):
        """`default_alg`: what `issue` makes when not told (the composition root sets the parties' algorithm)."""
        if default_alg not in ISSUING:
            raise ValueError(f"alg must be one of {', '.join(ISSUING)}, got {default_alg!r}")
        self.dir = Path(state_dir) / "pki"
        self.default_alg = default_alg
        self._config: dict | None = None
        self._keys: dict[str, CertificateIssuerPrivateKeyTypes] = {}
        self._certs: dict[str, x509.Certificate] = {}
        self._index: list[dict] = []
        self._index_stamp: tuple | None = None
        self._cert_id_hashes: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        self._last_crl_number = 0

    # -- state on disk -------------------------------------------------------------------------

    def initialised(self) -> bool:
        return (self.dir / "config.json").exists()

    def _require_initialised(self) -> dict:
        if self._config is None:
            try:
                self._config = json.loads((self.dir / "config.json").read_text("utf-8"))
            except FileNotFoundError:
                raise NotInitialised(f"the test PKI in {self.dir} is not initialised: run `shep pki init`") from None
        return self._config

    @property
    def base_url(self) -> str:
        """The URL prefix in issued certificates' CRL DP and AIA; NotInitialised before `init`."""
        return self._require_initialised()["base_url"]

    @contextmanager
    def _locked(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _read_index(self) -> list[dict]:
        try:
            return json.loads((self.dir / "index.json").read_text("utf-8"))["certificates"]
        except FileNotFoundError:
            return []

    def _save_index(self, records: list[dict]) -> None:
        body = json.dumps({"certificates": records}, ensure_ascii=False, indent=1) + "\n"
        write_atomically(self.dir / "index.json", body.encode("utf-8"))

    def _records(self) -> list[dict]:
        """The index, re-read only when the file changed (another process revoked or issued)."""
        self._require_initialised()
        st = (self.dir / "index.json").stat()
        # os.replace gives a new inode, so the stamp changes even within the mtime granularity.
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._index_stamp:
            self._index = self._read_index()
            self._index_stamp = stamp
        return self._index

    def _key(self, relative: str) -> CertificateIssuerPrivateKeyTypes:
        if relative not in self._keys:
            self._keys[relative] = load_private_key((self.dir / relative).read_bytes())
        return self._keys[relative]

    def _cert(self, relative: str) -> x509.Certificate:
        if relative not in self._certs:
            self._certs[relative] = x509.load_pem_x509_certificate((self.dir / relative).read_bytes())
        return self._certs[relative]

    def _store(self, relative: str, key, cert: x509.Certificate) -> None:
        write_atomically(self.dir / relative / "key.pem", key_pem(key), 0o600)
        write_atomically(self.dir / relative / "cert.pem", _cert_pem(cert))
        self._keys[f"{relative}/key.pem"] = key
        self._certs[f"{relative}/cert.pem"] = cert

    # -- certificate building ------------------------------------------------------------------

    def _ca_cert(self, ca: CA) -> x509.Certificate:
        return self._cert(f"ca/{ca.slug}/cert.pem")

    def _sign(self, builder, ca: CA, subject_key=None):
        return _signed(builder, self._key(f"ca/{ca.slug}/key.pem"), subject_key)

    def _builder(self, issuer: CA, subject: x509.Name, public_key, not_before: datetime, not_after: datetime,
                 base: str, *, ocsp_url: bool = True) -> x509.CertificateBuilder:
        """Serial, names, validity, key identifiers, CRL DP and AIA: what every issued certificate carries."""
        issuer_ski = self._ca_cert(issuer).extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        access = [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                         x509.UniformResourceIdentifier(f"{base}/pki/ca/{issuer.slug}.cer"))]
        if ocsp_url:
            access.insert(0, x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                                    x509.UniformResourceIdentifier(f"{base}/pki/ocsp")))
        crl_dp = x509.DistributionPoint([x509.UniformResourceIdentifier(f"{base}/pki/crl/{issuer.slug}.crl")],
                                        None, None, None)
        return (_certificate_builder(subject, public_key)
                .serial_number(x509.random_serial_number())
                .issuer_name(self._ca_cert(issuer).subject)
                .not_valid_before(not_before)
                .not_valid_after(not_after)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
                               critical=False)
                .add_extension(x509.CRLDistributionPoints([crl_dp]), critical=False)
                .add_extension(x509.AuthorityInformationAccess(access), critical=False))

    @staticmethod
    def _record(cert: x509.Certificate, *, kind: str, alg: str, usage: str | None, subject: dict,
                issuer: CA) -> dict:
        return {"serial": str(cert.serial_number), "kind": kind, "alg": alg, "usage": usage, "subject": subject,
                "issuer": issuer.name, "issuer_slug": issuer.slug,
                "not_before": _iso(cert.not_valid_before_utc), "not_after": _iso(cert.not_valid_after_utc),
                "status": "good", "revoked_at": None, "reason": None}

    def _make_root(self, root: CA, now: datetime) -> None:
        key = ALGORITHMS[root.alg]()
        name = _ca_name(root)
        cert = _signed(_certificate_builder(name, key.public_key())
                .serial_number(x509.random_serial_number())
                .issuer_name(name)
                .not_valid_before(now - CA_BACKDATE)
                .not_valid_after(now + timedelta(days=ROOT_YEARS * 365))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True), key, key.public_key())
        self._store(f"ca/{root.slug}", key, cert)

    def _make_issuing(self, ca: CA, now: datetime, base: str) -> list[dict]:
        """The issuing CA (signed by the root) and its delegated OCSP responder; their index records."""
        key = ALGORITHMS[ca.alg]()
        not_after = now + timedelta(days=ISSUING_YEARS * 365)
        parent = _CAS[ca.parent]
        cert = self._sign(
            self._builder(parent, _ca_name(ca), key.public_key(), now - CA_BACKDATE, not_after, base, ocsp_url=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True),
            parent, key.public_key())
        self._store(f"ca/{ca.slug}", key, cert)
        responder_key = ALGORITHMS[ca.alg]()
        responder_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{ca.name} OCSP"),
                                    x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ")])
        # OCSPNoCheck: nobody asks this responder about its own certificate (RFC 6960 §4.2.2.2.1).
        responder = self._sign(
            self._builder(ca, responder_name, responder_key.public_key(), now - CA_BACKDATE, not_after, base,
                          ocsp_url=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
            .add_extension(x509.OCSPNoCheck(), critical=False),
            ca, responder_key.public_key())
        self._store(f"ca/{ca.slug}/ocsp", responder_key, responder)
        return [self._record(cert, kind="ca", alg=ca.alg, usage=None, subject={"cn": ca.name}, issuer=parent),
                self._record(responder, kind="ocsp", alg=ca.alg, usage=None, subject={"cn": f"{ca.name} OCSP"},
                             issuer=ca)]

    def _build(self, base: str, kind: str, alg: str, usage: str, *, valid_days: int, expired: bool,
               not_yet_valid: bool, rng: random.Random | None, **subject_fields) -> tuple[IssuedCertificate, dict]:
        if alg not in ISSUING:
            raise ValueError(f"alg must be one of {', '.join(ISSUING)}, got {alg!r}")
        if usage not in profile.USAGES:
            raise ValueError(f"usage must be one of {', '.join(profile.USAGES)}, got {usage!r}")
        if expired and not_yet_valid:
            raise ValueError("a certificate cannot be both expired and not yet valid")
        if valid_days < 1:
            raise ValueError(f"valid_days must be at least 1, got {valid_days}")
        subject = profile.make_subject(kind, rng or random.Random(), **subject_fields)
        now, span = _utc_now(), timedelta(days=valid_days)
        if expired:
            not_after = now - timedelta(days=1)
            not_before = not_after - span
        elif not_yet_valid:
            not_before = now + timedelta(days=1)
            not_after = not_before + span
        else:
            not_before, not_after = now - CLOCK_SKEW, now + span
        ca = ISSUING[alg]
        key = ALGORITHMS[alg]()
        policy = x509.PolicyInformation(profile.policy(kind, usage), None)
        cert = self._sign(
            self._builder(ca, subject.name_dn(), key.public_key(), not_before, not_after, base)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(profile.key_usage(usage), critical=True)
            .add_extension(profile.extended_key_usage(kind, usage), critical=False)
            .add_extension(x509.CertificatePolicies([policy]), critical=False),
            ca, key.public_key())
        record = self._record(cert, kind=kind, alg=alg, usage=usage, subject=subject.summary(), issuer=ca)
        return IssuedCertificate(key=key, cert=cert, serial=cert.serial_number), record

    # -- public API ----------------------------------------------------------------------------

    def init(self, base_url: str = DEFAULT_BASE_URL) -> bool:
        """Create the roots, issuing CAs, OCSP responders and the gateway's RSA certificate, or what of them
        a PKI made by an earlier version lacks (the GOST hierarchy); False if nothing was missing."""
        with self._locked():
            fresh = not self.initialised()
            base, now = (base_url.rstrip("/") if fresh else self.base_url), _utc_now()
            records = [] if fresh else self._read_index()
            missing = [ca for ca in _CAS.values() if fresh or not (self.dir / "ca" / ca.slug / "cert.pem").exists()]
            for ca in missing:
                if ca in ROOTS:
                    self._make_root(ca, now)
            for ca in missing:
                if ca not in ROOTS:
                    records += self._make_issuing(ca, now, base)
            if fresh:
                records.append(self._make_gateway("rsa", base))
            if missing:
                self._save_index(records)
            if fresh:
                # Written last: its presence is what "initialised" means, so an interrupted init starts over.
                config = {"base_url": base, "created_at": _iso(now)}
                write_atomically(self.dir / "config.json", (json.dumps(config, indent=1) + "\n").encode())
                self._config = config
            return bool(missing)

    def _gateway_dir(self, alg: str) -> str:
        return "gateway" if alg == "rsa" else f"gateway-{alg}"

    def _make_gateway(self, alg: str, base: str) -> dict:
        gateway, record = self._build(base, "gateway", alg, "sign", valid_days=GATEWAY_VALID_DAYS, expired=False,
                                      not_yet_valid=False, rng=None)
        self._store(self._gateway_dir(alg), gateway.key, gateway.cert)
        write_atomically(self.dir / "certs" / f"{gateway.serial}.pem", _cert_pem(gateway.cert))
        return record

    def gateway_credentials(self, alg: str = "rsa") -> tuple[Path, Path]:
        """(key, certificate) files of the gateway's own certificate for `alg`, issued on first use."""
        if alg not in ISSUING:
            raise KeyError(f"no gateway certificate for algorithm {alg!r}; one of: {', '.join(ISSUING)}")
        folder = self.dir / self._gateway_dir(alg)
        with self._locked():
            if not (folder / "cert.pem").exists():
                record = self._make_gateway(alg, self.base_url)
                self._save_index(self._read_index() + [record])
        return folder / "key.pem", folder / "cert.pem"

    def issue(self, kind: str, alg: str | None = None, usage: str = "sign", *, iin: str | None = None,
              bin: str | None = None, surname: str | None = None, name: str | None = None,
              patronymic: str | None = None, org: str | None = None, birth_date: date | None = None,
              sex: str | None = None, valid_days: int = 365, expired: bool = False, not_yet_valid: bool = False,
              rng: random.Random | None = None) -> IssuedCertificate:
        """Issue an end-entity certificate per the national CA profile and record it in the index."""
        issued, record = self._build(self.base_url, kind, alg or self.default_alg, usage,
                                     valid_days=valid_days, expired=expired, not_yet_valid=not_yet_valid, rng=rng,
                                     iin=iin, bin=bin, surname=surname, name=name, patronymic=patronymic, org=org,
                                     birth_date=birth_date, sex=sex)
        write_atomically(self.dir / "certs" / f"{issued.serial}.pem", _cert_pem(issued.cert))
        with self._locked():
            self._save_index(self._read_index() + [record])
        return issued

    def credentials(self, folder: Path, kind: str, **subject) -> tuple:
        """(key, certificate) a party keeps in `folder` (key.pem, cert.pem): issued here on first use, and again
        when the kept one is of another algorithm than `default_alg` or expires within a day."""
        key_path, cert_path = Path(folder) / "key.pem", Path(folder) / "cert.pem"
        if cert_path.exists() and key_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if gost_x509.certificate_alg(cert) == self.default_alg and \
                    cert.not_valid_after_utc - UPDATE_INTERVAL > _utc_now():
                return load_private_key(key_path.read_bytes()), cert
        issued = self.issue(kind, **subject)
        save_credentials(key_path, cert_path, issued.key, issued.cert)
        return issued.key, issued.cert

    def revoke(self, serial: int | str, reason: str = "unspecified") -> dict:
        """Mark a certificate revoked now; returns its index record. KeyError for an unknown serial."""
        flag = _reason(reason)
        try:
            key = str(int(serial))
        except ValueError:
            raise ValueError(f"serial must be a decimal number, got {serial!r}") from None
        self._require_initialised()
        with self._locked():
            records = self._read_index()
            record = next((r for r in records if r["serial"] == key), None)
            if record is None:
                raise KeyError(f"no certificate with serial {key} in {self.dir / 'index.json'}")
            if record["status"] == "revoked":
                raise ValueError(f"certificate {key} is already revoked ({record['reason']}, {record['revoked_at']})")
            record.update(status="revoked", revoked_at=_iso(_utc_now()), reason=flag.name)
            self._save_index(records)
        return dict(record)

    def certificates(self) -> list[dict]:
        return copy.deepcopy(self._records())

    def issued_certificate(self, serial: int) -> x509.Certificate | None:
        """An end-entity certificate by serial (`issue` writes it before the index), from any process."""
        relative = f"certs/{int(serial)}.pem"
        return self._cert(relative) if (self.dir / relative).is_file() else None

    def root(self, alg: str = "rsa") -> x509.Certificate:
        """The root above the issuing CA of `alg` (RSA and EC share one, the GOST generations another)."""
        self._require_initialised()
        return self._ca_cert(_CAS[self._issuing(alg).parent])

    @staticmethod
    def _issuing(alg: str) -> CA:
        if alg not in ISSUING:
            raise KeyError(f"no issuing CA for algorithm {alg!r}; one of: {', '.join(ISSUING)}")
        return ISSUING[alg]

    def issuing_ca(self, alg: str) -> x509.Certificate:
        ca = self._issuing(alg)
        self._require_initialised()
        return self._ca_cert(ca)

    def ocsp_responder(self, alg: str) -> x509.Certificate:
        """The delegated OCSP responder certificate of the issuing CA for `alg`."""
        self.issuing_ca(alg)
        return self._cert(f"ca/{ISSUING[alg].slug}/ocsp/cert.pem")

    def ca_certificate(self, slug: str) -> x509.Certificate:
        """A CA certificate by its slug in URLs (`root`, `nca_rsa_test`, …); KeyError for an unknown slug."""
        if slug not in _CAS:
            raise KeyError(f"no CA {slug!r}; one of: {', '.join(_CAS)}")
        self._require_initialised()
        return self._ca_cert(_CAS[slug])

    def trust_anchors(self) -> list[x509.Certificate]:
        self._require_initialised()
        return [self._ca_cert(root) for root in ROOTS]

    def intermediates(self) -> list[x509.Certificate]:
        return [self.issuing_ca(alg) for alg in ISSUING]

    def crl(self, ca_slug: str) -> bytes:
        """The current CRL of one CA (DER), built now from the index."""
        issuer = self.ca_certificate(ca_slug)
        ca = _CAS[ca_slug]
        now = _utc_now()
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
                     .revocation_date(_parse_iso(record["revoked_at"])))
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
        ca = next((ca for ca in ISSUING.values() if self._cert_id_hashes_of(ca, algorithm) == cert_id), None)
        if ca is None:  # not one of our issuing CAs: no responder of ours may answer for it
            return self._unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        record = next((r for r in self._records() if r["serial"] == str(serial) and r["issuer_slug"] == ca.slug),
                      None)
        revoked_at = reason = None
        if record is None:
            status = ocsp.OCSPCertStatus.UNKNOWN
        elif record["status"] == "revoked":
            status = ocsp.OCSPCertStatus.REVOKED
            revoked_at = _parse_iso(record["revoked_at"])
            if record["reason"] != x509.ReasonFlags.unspecified.name:
                reason = x509.ReasonFlags[record["reason"]]
        else:
            status = ocsp.OCSPCertStatus.GOOD
        now = _utc_now()
        responder, key = self._cert(f"ca/{ca.slug}/ocsp/cert.pem"), self._key(f"ca/{ca.slug}/ocsp/key.pem")
        gost = isinstance(key, GostPrivateKey)
        # cryptography's builder reads the responder's key: a GOST responder is answered for by a stand-in
        # of the same name, replaced with the real certificate and signature afterwards.
        named = gost_x509.placeholder_certificate(responder.subject, _PLACEHOLDER) if gost else responder
        builder = (ocsp.OCSPResponseBuilder()
                   .add_response_by_hash(cert_id[0], cert_id[1], serial, algorithm, status, now,
                                         now + UPDATE_INTERVAL, revoked_at, reason)
                   .responder_id(ocsp.OCSPResponderEncoding.NAME if gost else ocsp.OCSPResponderEncoding.HASH,
                                 named)
                   .certificates([named]))
        for nonce in nonces:
            builder = builder.add_extension(nonce, critical=False)
        response = builder.sign(_PLACEHOLDER if gost else key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        return gost_x509.ocsp_with_gost(response, key, [responder]) if gost else response

    @staticmethod
    def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
        return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)
