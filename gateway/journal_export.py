"""A range of the journal as a signed bundle that standard tools verify without this project.

The bundle is a tar archive of one folder: the records as stored (records.jsonl), the chain's links
(chain.txt), the signed checkpoints covering them with their time-stamp tokens (checkpoints.jsonl and, per
checkpoint, its signed bytes, signature and token as files), the certificates, and manifest.txt (in
`sha256sum` format) signed by the gateway as a detached CMS signature (manifest.p7s). docs/security.md
gives the `sha256sum`, `openssl cms`, `openssl ts` and `python3` commands that check it.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select

from gateway import checkpoints
from gateway.journal import GENESIS_HASH, Journal, _chain_hash, _sha256
from gateway.security.algorithms import SignatureError
from gateway.security.certs import CertificateValidator, RevocationChecker, load_certificates
from gateway.security.cms import CMSError
from gateway.security.cms import sign as cms_sign
from gateway.security.cms import verify as cms_verify
from gateway.security.gost.x509 import issued_by, public_key
from gateway.security.keyfiles import load_credentials
from gateway.security.trust import configured_trust
from gateway.store.schema import journal

FORMAT = "shep-journal-bundle/1"
MANIFEST, SIGNATURE = "manifest.txt", "manifest.p7s"
_MANIFEST_LINE = re.compile(r"([0-9a-f]{64})  (\S+)")
_MAX_MEMBER = 1 << 30  # a bundle's file is read whole: refuse what no export writes


class BundleError(ValueError):
    """A bundle that does not verify; the message names the first problem."""


@dataclass(frozen=True)
class Signer:
    """The gateway's key, its certificate and the CA certificates above it."""
    key: object
    certificate: x509.Certificate
    chain: list[x509.Certificate]  # issuing CAs, nearest first
    roots: list[x509.Certificate]


def offline_trust(settings, state_dir: Path) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """(anchors, intermediates) as `shep serve` would trust them, read by a command that runs beside it."""
    from simulators.pki.ca import TestPKI

    return configured_trust(settings.gateway.trust_anchors, TestPKI(Path(state_dir)))


def gateway_signer(settings, state_dir: Path) -> Signer:
    """The key and certificate `shep serve` signs with (configured, or the test PKI's), and its chain."""
    from simulators.pki.ca import TestPKI

    gw = settings.gateway
    if gw.signing_key is not None:
        key_path, cert_path = gw.signing_key, gw.signing_cert
    else:
        key_path, cert_path = TestPKI(Path(state_dir)).gateway_credentials(gw.signing_alg)
    key, cert = load_credentials(Path(key_path), Path(cert_path))
    anchors, intermediates = offline_trust(settings, state_dir)
    return Signer(key, cert, *chain_of(cert, anchors, intermediates))


def chain_of(cert: x509.Certificate, anchors: list, intermediates: list) -> tuple[list, list]:
    """(the intermediates from `cert` up, the root it reaches) among the given certificates."""
    chain, current = [], cert
    for _ in range(6):
        root = next((a for a in anchors if issued_by(current, a)), None)
        if root is not None:
            return chain, [root]
        issuer = next((i for i in intermediates if i not in chain and issued_by(current, i)), None)
        if issuer is None:
            break
        chain.append(issuer)
        current = issuer
    return chain, []


def _record(row) -> dict:
    """A stored record as records.jsonl has it: the hashed fields exactly as the hash saw them, its hash,
    and its bytes in base64 (null when not kept)."""
    fields = {c.name: row[c.name] for c in journal.c if c.name not in ("hash", "body")}
    fields["verdicts"], fields["deviations"] = (_parsed(row["verdicts"]), _parsed(row["deviations"]))
    fields = json.loads(json.dumps(fields, default=_iso))  # the datetimes as the preimage writes them
    body = row["body"]
    return {**fields, "hash": row["hash"], "body_base64": None if body is None else base64.b64encode(body).decode()}


def _parsed(stored: str):
    try:
        return json.loads(stored)
    except ValueError:
        return stored


def _iso(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def seq_range(journal_: Journal, first: int | None, last: int | None, since: datetime | None,
              until: datetime | None) -> tuple[int, int]:
    """The first and last seq to export: the given bounds, narrowed to the records started in [since, until)."""
    stmt = select(func.min(journal.c.seq), func.max(journal.c.seq))
    for column, bound, compare in ((journal.c.seq, first, "__ge__"), (journal.c.seq, last, "__le__"),
                                   (journal.c.started_at, since, "__ge__"), (journal.c.started_at, until, "__lt__")):
        if bound is not None:
            stmt = stmt.where(getattr(column, compare)(bound))
    with journal_.store.snapshot() as conn:
        low, high = conn.execute(stmt).one()
    if low is None:
        raise BundleError("no record in that range")
    return low, high


def _signature_file(line: dict, cert: x509.Certificate) -> bytes:
    """The checkpoint's signature as `openssl dgst -verify` reads it: PKCS#1 v1.5 as is, ECDSA's r||s as DER."""
    value = base64.b64decode(line["signature"])
    if isinstance(public_key(cert), ec.EllipticCurvePublicKey):
        half = len(value) // 2
        return encode_dss_signature(int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big"))
    return value


def _pem(certs) -> bytes:
    return b"".join(cert.public_bytes(Encoding.PEM) for cert in certs)


def export(journal_: Journal, first: int, last: int, checkpoint_path: Path, signer: Signer,
           out: Path, now: datetime, earlier: tuple[x509.Certificate, ...] = ()) -> dict:
    """Write the bundle of records first..last to `out` (a tar file); its bundle.json is returned.
    `earlier`: certificates the gateway signed checkpoints with before its current one."""
    with journal_.store.snapshot() as conn:
        rows = conn.execute(select(journal).where(journal.c.seq.between(first, last))
                            .order_by(journal.c.seq)).mappings().all()
    records = [_record(row) for row in rows]
    lines = checkpoints.read(checkpoint_path) or checkpoints.read_store(journal_)
    covering = [{k: v for k, v in line.items() if k not in ("line", "id")} for line in lines
                if line["first"] <= last and line["seq"] >= first]
    covered = {line["first"] + i for line in covering for i in range(len(line["hashes"]))}
    gateway_certs = {checkpoints.fingerprint(cert): cert for cert in (*earlier, signer.certificate)}
    signers = {line.get("certificate_sha256") for line in covering} - {checkpoints.fingerprint(signer.certificate)}
    former = [gateway_certs[f] for f in sorted(signers) if f in gateway_certs]
    files: dict[str, bytes] = {
        "records.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode(),
        "chain.txt": "".join(f"{r['seq']} {r['prev_hash']} {r['hash']}\n" for r in records).encode(),
        "checkpoints.jsonl": "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in covering).encode(),
        "certificates/gateway.pem": _pem([signer.certificate, *signer.chain, *former]),
        "certificates/ca.pem": _pem(signer.roots),
    }
    tsa: dict[str, x509.Certificate] = {}
    for line in covering:
        name = f"checkpoints/{line['first']}-{line['seq']}"
        files[f"{name}.json"] = checkpoints.signed_bytes(line)
        cert = gateway_certs.get(line.get("certificate_sha256"))
        if cert is not None:  # signed by a certificate no longer known: `verify --bundle` says so
            files[f"{name}.sig"] = _signature_file(line, cert)
        if "timestamp" in line:
            files[f"{name}.tst"] = base64.b64decode(line["timestamp"])
            for carried in cms_verify(files[f"{name}.tst"]).certificates:
                tsa[checkpoints.fingerprint(carried)] = carried
    if tsa:
        files["certificates/tsa.pem"] = _pem(tsa.values())
    description = {"format": FORMAT, "from": first, "to": last, "records": len(records),
                   "created_at": now.isoformat(), "checkpoints": len(covering),
                   "uncovered": sorted(r["seq"] for r in records if r["seq"] not in covered),
                   "gateway_certificate_sha256": checkpoints.fingerprint(signer.certificate)}
    files["bundle.json"] = (json.dumps(description, ensure_ascii=False, indent=1) + "\n").encode()
    manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
    files[MANIFEST] = manifest.encode()
    files[SIGNATURE] = cms_sign(files[MANIFEST], signer.key, signer.certificate, detached=True,
                                certificates=(signer.certificate, *signer.chain), signing_time=now)
    folder = out.name.split(".")[0]
    with tarfile.open(out, "w") as archive:
        for name, data in files.items():
            member = tarfile.TarInfo(f"{folder}/{name}")
            member.size, member.mtime, member.mode = len(data), int(time.time()), 0o644
            archive.addfile(member, io.BytesIO(data))
    return description


def read_bundle(path: Path) -> dict[str, bytes]:
    """The bundle's files by name (relative to its folder), from the tar file or the folder it was unpacked to."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such bundle")
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    try:
        with tarfile.open(path) as archive:
            files = {}
            for member in archive.getmembers():
                if not member.isfile() or member.size > _MAX_MEMBER:
                    continue
                name = member.name.split("/", 1)[1] if "/" in member.name else member.name
                files[name] = archive.extractfile(member).read()
            return files
    except (tarfile.TarError, OSError):
        raise BundleError(f"{path}: not a bundle (a tar file, or the folder it unpacks to)") from None


def _manifest(files: dict[str, bytes]) -> dict[str, str]:
    if MANIFEST not in files or SIGNATURE not in files:
        raise BundleError(f"the bundle lacks {MANIFEST} or {SIGNATURE}")
    listed = {}
    for number, line in enumerate(files[MANIFEST].decode("utf-8", "replace").splitlines(), 1):
        match = _MANIFEST_LINE.fullmatch(line)
        if match is None:
            raise BundleError(f"{MANIFEST}, line {number} is not '<sha256>  <file>'")
        listed[match.group(2)] = match.group(1)
    for name in sorted(set(files) - {MANIFEST, SIGNATURE} | set(listed)):
        if name not in listed:
            raise BundleError(f"{name} is not in {MANIFEST}: it was added")
        if name not in files:
            raise BundleError(f"{name}, listed in {MANIFEST}, is missing")
        if hashlib.sha256(files[name]).hexdigest() != listed[name]:
            raise BundleError(f"{name} does not match its SHA-256 in {MANIFEST}: it was changed")
    return listed


def verify_bundle(path: Path, anchors: list[x509.Certificate], intermediates: list[x509.Certificate]) -> dict:
    """Check a bundle with nothing but itself and the trust anchors; its bundle.json, or BundleError."""
    files = read_bundle(path)
    _manifest(files)
    try:
        signed = cms_verify(files[SIGNATURE], files[MANIFEST])
    except CMSError as exc:
        raise BundleError(f"{SIGNATURE}: {exc}") from None
    if signed.signing_time is None:
        raise BundleError(f"{SIGNATURE} has no signing time")
    carried = [*signed.certificates, *_certificates(files, "certificates/gateway.pem")]
    validator = CertificateValidator(anchors, [*intermediates, *carried], RevocationChecker("none"))
    try:
        validator.validate(signed.signer, at=signed.signing_time, signing=False, what=SIGNATURE)
    except SignatureError as exc:
        raise BundleError(exc.detail) from None
    description = json.loads(files["bundle.json"])
    records = [json.loads(line) for line in files["records.jsonl"].decode().splitlines()]
    _check_records(records, description)
    gateway = {checkpoints.fingerprint(cert): cert for cert in carried}
    trust = checkpoints.TokenTrust(anchors, intermediates)
    by_seq = {r["seq"]: r["hash"] for r in records}
    covered = set()
    for number, raw in enumerate(files["checkpoints.jsonl"].decode().splitlines(), 1):
        line = {**json.loads(raw), "line": number}
        problem = checkpoints.line_problem(line, gateway, trust)
        if problem:
            raise BundleError(f"checkpoints.jsonl: {problem}")
        if files.get(f"checkpoints/{line['first']}-{line['seq']}.json") != checkpoints.signed_bytes(line):
            raise BundleError(f"checkpoints/{line['first']}-{line['seq']}.json is not what line {number} signs")
        for offset, chained in enumerate(line["hashes"]):
            seq = line["first"] + offset
            if seq in by_seq and by_seq[seq] != chained:
                raise BundleError(f"record {seq} is not the one checkpoints.jsonl line {number} signed")
            covered.add(seq)
    if sorted(set(by_seq) - covered) != description.get("uncovered"):
        raise BundleError("bundle.json's uncovered records are not the ones no checkpoint signs")
    return description


def _certificates(files: dict[str, bytes], name: str) -> list[x509.Certificate]:
    try:
        return load_certificates(files[name]) if name in files else []
    except ValueError as exc:
        raise BundleError(f"{name}: {exc}") from None


def _check_records(records: list[dict], description: dict) -> None:
    seqs = [r["seq"] for r in records]
    if seqs != list(range(description["from"], description["to"] + 1)) or len(seqs) != description["records"]:
        raise BundleError(f"records.jsonl does not hold records {description['from']}-{description['to']} "
                          "in order, each once")
    previous = None
    for record in records:
        fields = {k: v for k, v in record.items() if k not in ("hash", "body_base64")}
        if _chain_hash(fields) != record["hash"]:
            raise BundleError(f"record {record['seq']} does not match its hash (it was changed)")
        if previous is not None and record["prev_hash"] != previous:
            raise BundleError(f"record {record['seq']} does not link to record {record['seq'] - 1}")
        if record["seq"] == 1 and record["prev_hash"] != GENESIS_HASH:
            raise BundleError("record 1 does not start the chain")
        body = record.get("body_base64")
        if body is not None and _sha256(base64.b64decode(body)) != record["body_sha256"]:
            raise BundleError(f"the body of record {record['seq']} does not match its SHA-256")
        previous = record["hash"]
