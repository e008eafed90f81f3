"""The test national CA (НУЦ РК / ҰКО): its state, initialisation, issuance and revocation; the hierarchy and
how certificates are built are in `hierarchy`, the CRL and OCSP services in `status`, the time-stamp
authority in `tsa`.

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
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from gateway.security.gost import x509 as gost_x509
from gateway.security.keyfiles import key_pem, load_private_key, save_credentials, write_atomically
from simulators.pki import profile
from simulators.pki.hierarchy import (ALGORITHMS, available, CA, CA_BACKDATE, CAS, CLOCK_SKEW, DEFAULT_BASE_URL,
                                      GATEWAY_VALID_DAYS, ISSUING, ISSUING_YEARS, ROOT_YEARS, ROOTS,
                                      UPDATE_INTERVAL, ca_name, cert_pem, certificate_builder, iso, reason_flag,
                                      signed, utc_now)
from simulators.pki.status import RevocationStatus
from simulators.pki.tsa import TimeStamping


class NotInitialised(RuntimeError):
    pass


class BrokenPKI(RuntimeError):
    """A state dir's PKI files that cannot be read or used (edited, truncated, unreadable)."""

    def __init__(self, folder: Path, error: Exception):
        reason = (f"{error.strerror}: {error.filename}" if isinstance(error, OSError) and error.filename
                  else f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}")
        super().__init__(f"the test PKI in {folder} cannot be used ({reason})")


@dataclass(frozen=True)
class IssuedCertificate:
    key: CertificateIssuerPrivateKeyTypes
    cert: x509.Certificate
    serial: int


class TestPKI(RevocationStatus, TimeStamping):
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

    @property
    def index_path(self) -> Path:
        """The index of issued certificates; rewritten by every issue and revocation."""
        return self.dir / "index.json"

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
        write_atomically(self.dir / relative / "cert.pem", cert_pem(cert))
        self._keys[f"{relative}/key.pem"] = key
        self._certs[f"{relative}/cert.pem"] = cert

    # -- certificate building ------------------------------------------------------------------

    def _ca_cert(self, ca: CA) -> x509.Certificate:
        return self._cert(f"ca/{ca.slug}/cert.pem")

    def _sign(self, builder, ca: CA, subject_key=None):
        return signed(builder, self._key(f"ca/{ca.slug}/key.pem"), subject_key)

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
        return (certificate_builder(subject, public_key)
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
                "not_before": iso(cert.not_valid_before_utc), "not_after": iso(cert.not_valid_after_utc),
                "status": "good", "revoked_at": None, "reason": None}

    def _make_root(self, root: CA, now: datetime) -> None:
        key = ALGORITHMS[root.alg]()
        name = ca_name(root)
        cert = signed(certificate_builder(name, key.public_key())
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
        parent = CAS[ca.parent]
        cert = self._sign(
            self._builder(parent, ca_name(ca), key.public_key(), now - CA_BACKDATE, not_after, base, ocsp_url=False)
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
        if available(alg) is not None:
            raise ValueError(f"{alg}: {available(alg)}")
        if usage not in profile.USAGES:
            raise ValueError(f"usage must be one of {', '.join(profile.USAGES)}, got {usage!r}")
        if expired and not_yet_valid:
            raise ValueError("a certificate cannot be both expired and not yet valid")
        if valid_days < 1:
            raise ValueError(f"valid_days must be at least 1, got {valid_days}")
        subject = profile.make_subject(kind, rng or random.Random(), **subject_fields)
        now, span = utc_now(), timedelta(days=valid_days)
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
            base, now = (base_url.rstrip("/") if fresh else self.base_url), utc_now()
            records = [] if fresh else self._read_index()
            # A CA whose algorithm cannot sign here (GOST 2004 without the OpenSSL GOST provider) waits for a
            # later init on a machine that has it.
            missing = [ca for ca in CAS.values() if available(ca.alg) is None and (fresh or not self.has_ca(ca))]
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
                config = {"base_url": base, "created_at": iso(now)}
                write_atomically(self.dir / "config.json", (json.dumps(config, indent=1) + "\n").encode())
                self._config = config
            return bool(missing)

    def _gateway_dir(self, alg: str) -> str:
        return "gateway" if alg == "rsa" else f"gateway-{alg}"

    def _make_gateway(self, alg: str, base: str) -> dict:
        gateway, record = self._build(base, "gateway", alg, "sign", valid_days=GATEWAY_VALID_DAYS, expired=False,
                                      not_yet_valid=False, rng=None)
        self._store(self._gateway_dir(alg), gateway.key, gateway.cert)
        write_atomically(self.dir / "certs" / f"{gateway.serial}.pem", cert_pem(gateway.cert))
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
        write_atomically(self.dir / "certs" / f"{issued.serial}.pem", cert_pem(issued.cert))
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
                    cert.not_valid_after_utc - UPDATE_INTERVAL > utc_now():
                return load_private_key(key_path.read_bytes()), cert
        issued = self.issue(kind, **subject)
        save_credentials(key_path, cert_path, issued.key, issued.cert)
        return issued.key, issued.cert

    def revoke(self, serial: int | str, reason: str = "unspecified") -> dict:
        """Mark a certificate revoked now; returns its index record. KeyError for an unknown serial."""
        flag = reason_flag(reason)
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
            record.update(status="revoked", revoked_at=iso(utc_now()), reason=flag.name)
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
        return self._ca_cert(CAS[self._issuing(alg).parent])

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
        if slug not in CAS:
            raise KeyError(f"no CA {slug!r}; one of: {', '.join(CAS)}")
        self._require_initialised()
        return self._ca_cert(CAS[slug])

    def trust_anchors(self) -> list[x509.Certificate]:
        self._require_initialised()
        return [self._ca_cert(root) for root in ROOTS]

    def has_ca(self, ca: CA) -> bool:
        """Whether this PKI made `ca` (not GOST 2004 on a machine that cannot sign with it)."""
        return (self.dir / "ca" / ca.slug / "cert.pem").exists()

    def intermediates(self) -> list[x509.Certificate]:
        return [self.issuing_ca(alg) for alg, ca in ISSUING.items() if self.has_ca(ca)]
