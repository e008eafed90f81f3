"""Signed checkpoints of the journal (журнал): what makes a rewritten journal show.

The hash chain proves the records are consistent with each other, not that they are the ones written: the
head lives in the same database, so an attacker with the database can delete the tail and move the head,
or edit a record and recompute the chain. A checkpoint is the gateway's signature, with its own key, over
the chain's (seq, hash) pairs since the previous checkpoint, appended as one JSON line to a file outside
the database. `verify` compares the database with every checkpoint: a truncation, a changed record (chain
recomputed or not) or a removed body is named by its first record.

Each checkpoint is also copied into the store (journal_checkpoints), so that every node and the operator
see them; the file stays the authority, and `verify` reports a store copy the file does not have or that
differs from it. With a time-stamp authority configured, each checkpoint carries its RFC 3161 token over
the checkpoint's signed bytes (gateway.timestamps): a TSA that fails does not cost the checkpoint, which is
written without one.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from gateway import timestamps
from gateway.journal import Journal, JournalVerification
from gateway.security.algorithms import methods_for_key, sign_value, verify_value
from gateway.security.gost.x509 import public_key
from gateway.store.schema import journal, journal_checkpoints

FILE_NAME = "journal-checkpoints.jsonl"
log = logging.getLogger("shep.journal")
# What a line holds besides what the gateway signs: the signature, the TSA's token over the signed bytes,
# and where it was read (the file's line number, the store's row id).
_UNSIGNED = ("signature", "timestamp", "line", "id")


def signed_bytes(line: dict) -> bytes:
    """What the checkpoint's signature and its time-stamp token cover: the line's other fields as canonical
    JSON (keys sorted, no spaces, UTF-8)."""
    fields = {name: value for name, value in line.items() if name not in _UNSIGNED}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


class CheckpointWriter:
    """Appends a signed checkpoint of the records written since the last one (by this process)."""

    def __init__(self, path: Path, journal: Journal, key, cert: x509.Certificate, clock,
                 timestamper: timestamps.Timestamper | None = None):
        self.path, self.journal, self.key, self.cert, self.clock = Path(path), journal, key, cert, clock
        self.timestamper = timestamper
        self._lock = threading.Lock()
        self._last = _last_seq(self.path)

    def write(self) -> dict | None:
        """The checkpoint appended now, or None when no record was written since the last one."""
        with self._lock:
            with self.journal.store.snapshot() as conn:
                rows = conn.execute(select(journal.c.seq, journal.c.hash).where(journal.c.seq > self._last)
                                    .order_by(journal.c.seq)).all()
            if not rows:
                return None
            line = {"first": rows[0].seq, "seq": rows[-1].seq, "hashes": [row.hash for row in rows],
                    "at": self.clock().isoformat(), "bodies": self.journal.store_bytes,
                    "signature_method": methods_for_key(self.key)[0], "certificate_sha256": fingerprint(self.cert)}
            signed = signed_bytes(line)
            line["signature"] = base64.b64encode(sign_value(self.key, line["signature_method"], signed)).decode()
            if self.timestamper is not None:
                try:
                    line["timestamp"] = base64.b64encode(timestamps.obtain(self.timestamper, signed)).decode()
                except (timestamps.TimestampError, OSError) as exc:
                    log.error("journal checkpoint of records %d-%d written without a time-stamp: %s",
                              line["first"], line["seq"], exc)
            text = json.dumps(line, ensure_ascii=False)
            data = (text + "\n").encode()
            # One write() on an O_APPEND descriptor: lines of several worker processes never interleave.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._last = line["seq"]
            self._copy_to_store(line, text)
            return line

    def _copy_to_store(self, line: dict, text: str) -> None:
        # After the file: a store that fails loses only the copy, and `verify` reads the file.
        try:
            with self.journal.store.exclusive() as conn:
                conn.execute(journal_checkpoints.insert().values(
                    first_seq=line["first"], seq=line["seq"], written_at=datetime.fromisoformat(line["at"]),
                    checkpoint=text))
        except SQLAlchemyError as exc:
            log.error("journal checkpoint of records %d-%d is in %s but not in the store: %s",
                      line["first"], line["seq"], self.path, exc)


def _last_seq(path: Path, block: int = 1 << 16) -> int:
    """The seq of the file's last checkpoint, read from its end: the file only grows, start-up stays cheap."""
    try:
        with open(path, "rb") as file:
            end = file.seek(0, os.SEEK_END)
            tail = b""
            while end and tail.rstrip(b"\n").count(b"\n") < 1:
                start = max(0, end - block)
                file.seek(start)
                tail = file.read(end - start) + tail
                end = start
    except FileNotFoundError:
        return 0
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return json.loads(last)["seq"] if last else 0


def _parsed(raw: str, where: str) -> dict:
    try:
        line = json.loads(raw)
        if not (isinstance(line, dict) and isinstance(line.get("hashes"), list)
                and line.get("seq") == line.get("first", 0) + len(line["hashes"]) - 1):
            raise ValueError("not a checkpoint")
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return line


def read(path: Path) -> list[dict]:
    """The checkpoint lines of a file (none when it does not exist); ValueError names a line that is not one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [{**_parsed(raw, f"{path}, line {number}"), "line": number}
            for number, raw in enumerate(text.splitlines(), 1)]


def read_store(journal_: Journal) -> list[dict]:
    """The store's copies, oldest first, each with its row `id`; ValueError names a row that is not one."""
    with journal_.store.snapshot() as conn:
        rows = conn.execute(select(journal_checkpoints).order_by(journal_checkpoints.c.id)).all()
    return [{**_parsed(row.checkpoint, f"journal_checkpoints row {row.id}"), "id": row.id} for row in rows]


@dataclass
class CheckpointVerification(JournalVerification):
    checkpoints: int = 0
    source: str = "file"  # file | store: the store's copies are used when the file has no checkpoint
    stamped: int = 0  # checkpoints whose time-stamp token verified
    unstamped: int = 0  # checkpoints without a token
    store_copies: int = 0
    not_in_store: int = 0  # file checkpoints the store has no copy of (a failed insert, or deleted rows)


@dataclass(frozen=True)
class TokenTrust:
    """What a checkpoint's TSA certificate must chain to."""
    anchors: list[x509.Certificate]
    intermediates: list[x509.Certificate]


def _where(line: dict) -> str:
    return f"checkpoint line {line['line']}" if "line" in line else f"store checkpoint {line['id']}"


def line_problem(line: dict, by_fingerprint: dict, trust: TokenTrust | None) -> str | None:
    """What is wrong with a checkpoint itself (its signer, signature, time-stamp token), or None."""
    cert = by_fingerprint.get(line.get("certificate_sha256"))
    if cert is None:
        return f"{_where(line)} is signed by a certificate that is not the gateway's ({line.get('certificate_sha256')})"
    signed = signed_bytes(line)
    if not verify_value(public_key(cert), line.get("signature_method", ""), _b64(line.get("signature")), signed):
        return f"{_where(line)}: the signature does not verify (the checkpoint was changed)"
    if "timestamp" in line:
        try:
            timestamps.check(_b64(line["timestamp"]), signed, trust.anchors if trust else [],
                             trust.intermediates if trust else [])
        except timestamps.TimestampError as exc:
            return f"{_where(line)}: its time-stamp token does not prove it: {exc}"
    return None


def _b64(text) -> bytes:
    try:
        return base64.b64decode(text or "", validate=True)
    except (binascii.Error, TypeError):
        return b""


def _store_problem(copies: list[dict], lines: list[dict]) -> tuple[int, str] | None:
    """(first record, reason) of the first store copy the file does not have as it is."""
    written = {}
    for line in lines:
        written.setdefault((line["first"], line["seq"], line.get("at")), []).append(
            {k: v for k, v in line.items() if k != "line"})
    for copy in copies:
        same = written.get((copy["first"], copy["seq"], copy.get("at")))
        content = {k: v for k, v in copy.items() if k != "id"}
        if same is None:
            return copy["first"], (f"store checkpoint {copy['id']} (records {copy['first']}-{copy['seq']}) is not "
                                   "in the checkpoint file: it was added to the database")
        if content not in same:
            return copy["first"], (f"store checkpoint {copy['id']} (records {copy['first']}-{copy['seq']}) differs "
                                   "from the checkpoint file's: the database copy was rewritten")
    return None


def verify(journal_: Journal, path: Path, certificates: list[x509.Certificate],
           trust: TokenTrust | None = None) -> CheckpointVerification:
    """The journal against every checkpoint in `path` signed by one of `certificates` (the gateway's), their
    time-stamp tokens against `trust`, and the store's copies against the file (the store's copies stand in
    for a file that has none)."""
    by_fingerprint = {fingerprint(cert): cert for cert in certificates}
    copies = read_store(journal_)
    lines, source = read(path), "file"
    if not lines and copies:
        lines, source = copies, "store"
    counts = {"source": source, "store_copies": len(copies),
              "unstamped": sum(1 for line in lines if "timestamp" not in line)}
    expected: dict[int, tuple[str, bool, str]] = {}  # seq -> (hash, bodies kept, which checkpoint)
    for line in lines:
        problem = line_problem(line, by_fingerprint, trust)
        if problem:
            return _bad(len(lines), line["first"], problem, **counts)
        for offset, chained in enumerate(line["hashes"]):
            expected[line["first"] + offset] = (chained, bool(line.get("bodies")), _where(line))
    counts["stamped"] = len(lines) - counts["unstamped"]
    if source == "file":
        store_problem = _store_problem(copies, lines)
        if store_problem:
            return _bad(len(lines), *store_problem, **counts)
        stored = {(c["first"], c["seq"], c.get("at"), c.get("signature")) for c in copies}
        counts["not_in_store"] = sum(1 for line in lines
                                     if (line["first"], line["seq"], line.get("at"), line.get("signature"))
                                     not in stored)
    if not expected:
        return CheckpointVerification(ok=True, checked=0, broken_seq=None, reason=None, checkpoints=0, **counts)
    with journal_.store.snapshot() as conn:
        rows = {row.seq: row for row in conn.execute(
            select(journal.c.seq, journal.c.hash, journal.c.body_size, journal.c.body.is_(None).label("no_body"),
                   journal.c.body_sha256)
            .where(journal.c.seq <= max(expected)).order_by(journal.c.seq))}
    for seq in sorted(expected):
        chained, bodies, where = expected[seq]
        row = rows.get(seq)
        problem = None
        if row is None:
            problem = (f"record {seq} is gone: {where} signed it (the journal was truncated or the record "
                       f"deleted; it now ends at {max(rows, default=0)})")
        elif row.hash != chained:
            problem = (f"record {seq} is not the one {where} signed: it was changed (and the chain recomputed, "
                       "if the chain itself verifies)")
        elif bodies and row.no_body and row.body_size:
            problem = f"the body of record {seq} was removed ({where} was written with bodies kept)"
        if problem:
            return _bad(len(lines), seq, problem, checked=sum(1 for s in expected if s < seq), **counts)
    return CheckpointVerification(ok=True, checked=len(expected), broken_seq=None, reason=None,
                                  checkpoints=len(lines), **counts)


def _bad(count: int, seq: int, reason: str, checked: int = 0, **counts) -> CheckpointVerification:
    return CheckpointVerification(ok=False, checked=checked, broken_seq=seq, reason=reason, checkpoints=count,
                                  **counts)


def summary(outcome: CheckpointVerification, path: Path, tsa_configured: bool) -> list[str]:
    """What `shep journal verify` says of checkpoints that verified."""
    if not outcome.checkpoints:
        return [f"no signed checkpoints in {path} or the store: only the chain was checked"]
    where = str(path) if outcome.source == "file" else f"the store (the file {path} has none)"
    said = [f"checkpoints OK: {outcome.checked} record(s) match {outcome.checkpoints} signed checkpoint(s) in "
            f"{where}; {outcome.stamped} time-stamped"]
    if outcome.source == "file":
        said.append(f"store copies OK: {outcome.store_copies} match the file" +
                    (f"; {outcome.not_in_store} checkpoint(s) of the file have no store copy"
                     if outcome.not_in_store else ""))
    if tsa_configured and outcome.unstamped:
        said.append(f"warning: {outcome.unstamped} checkpoint(s) carry no time-stamp token although a TSA is "
                    "configured (the TSA failed when they were written: see the gateway's log)")
    return said
