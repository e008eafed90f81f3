"""Signed checkpoints of the journal (журнал): what makes a rewritten journal show.

The hash chain proves the records are consistent with each other, not that they are the ones written: the
head lives in the same database, so an attacker with the database can delete the tail and move the head,
or edit a record and recompute the chain. A checkpoint is the gateway's signature, with its own key, over
the chain's (seq, hash) pairs since the previous checkpoint, appended as one JSON line to a file outside
the database. `verify` compares the database with every checkpoint: a truncation, a changed record (chain
recomputed or not) or a removed body is named by its first record.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import select

from gateway.journal import Journal, JournalVerification
from gateway.security.algorithms import methods_for_key, sign_value, verify_value
from gateway.security.gost.x509 import public_key
from gateway.store.schema import journal

FILE_NAME = "journal-checkpoints.jsonl"


def _signed_bytes(line: dict) -> bytes:
    fields = {name: value for name, value in line.items() if name not in ("signature", "line")}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


class CheckpointWriter:
    """Appends a signed checkpoint of the records written since the last one (by this process)."""

    def __init__(self, path: Path, journal: Journal, key, cert: x509.Certificate, clock):
        self.path, self.journal, self.key, self.cert, self.clock = Path(path), journal, key, cert, clock
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
            line["signature"] = base64.b64encode(sign_value(self.key, line["signature_method"],
                                                            _signed_bytes(line))).decode()
            data = (json.dumps(line, ensure_ascii=False) + "\n").encode()
            # One write() on an O_APPEND descriptor: lines of several worker processes never interleave.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._last = line["seq"]
            return line


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


def read(path: Path) -> list[dict]:
    """The checkpoint lines of a file (none when it does not exist); ValueError names a line that is not one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        try:
            line = json.loads(raw)
            if not (isinstance(line, dict) and isinstance(line.get("hashes"), list)
                    and line.get("seq") == line.get("first", 0) + len(line["hashes"]) - 1):
                raise ValueError("not a checkpoint")
        except ValueError as exc:
            raise ValueError(f"{path}, line {number}: {exc}") from None
        lines.append({**line, "line": number})
    return lines


@dataclass
class CheckpointVerification(JournalVerification):
    checkpoints: int = 0


def verify(journal_: Journal, path: Path, certificates: list[x509.Certificate]) -> CheckpointVerification:
    """The journal against every checkpoint in `path` signed by one of `certificates` (the gateway's)."""
    by_fingerprint = {fingerprint(cert): cert for cert in certificates}
    lines = read(path)
    problems: list[tuple[int, str]] = []
    expected: dict[int, tuple[str, bool, int]] = {}  # seq -> (hash, bodies kept, checkpoint line)
    for line in lines:
        cert = by_fingerprint.get(line.get("certificate_sha256"))
        if cert is None:
            return _bad(len(lines), line["first"], f"checkpoint line {line['line']} is signed by a certificate "
                                                   f"that is not the gateway's ({line.get('certificate_sha256')})")
        try:
            value = base64.b64decode(line.get("signature", ""), validate=True)
        except binascii.Error:
            value = b""
        if not verify_value(public_key(cert), line.get("signature_method", ""), value, _signed_bytes(line)):
            return _bad(len(lines), line["first"], f"checkpoint line {line['line']}: the signature does not "
                                                   "verify (the checkpoint file was changed)")
        for offset, chained in enumerate(line["hashes"]):
            expected[line["first"] + offset] = (chained, bool(line.get("bodies")), line["line"])
    if not expected:
        return CheckpointVerification(ok=True, checked=0, broken_seq=None, reason=None, checkpoints=0)
    with journal_.store.snapshot() as conn:
        rows = {row.seq: row for row in conn.execute(
            select(journal.c.seq, journal.c.hash, journal.c.body_size, journal.c.body.is_(None).label("no_body"),
                   journal.c.body_sha256)
            .where(journal.c.seq <= max(expected)).order_by(journal.c.seq))}
    for seq in sorted(expected):
        chained, bodies, number = expected[seq]
        row = rows.get(seq)
        if row is None:
            problems.append((seq, f"record {seq} is gone: checkpoint line {number} signed it (the journal was "
                                  f"truncated or the record deleted; it now ends at {max(rows, default=0)})"))
        elif row.hash != chained:
            problems.append((seq, f"record {seq} is not the one checkpoint line {number} signed: it was changed "
                                  "(and the chain recomputed, if the chain itself verifies)"))
        elif bodies and row.no_body and row.body_size:
            problems.append((seq, f"the body of record {seq} was removed (checkpoint line {number} was written "
                                  "with bodies kept)"))
        if problems:
            break
    if problems:
        seq, reason = problems[0]
        return _bad(len(lines), seq, reason, checked=sum(1 for s in expected if s < seq))
    return CheckpointVerification(ok=True, checked=len(expected), broken_seq=None, reason=None,
                                  checkpoints=len(lines))


def _bad(count: int, seq: int, reason: str, checked: int = 0) -> CheckpointVerification:
    return CheckpointVerification(ok=False, checked=checked, broken_seq=seq, reason=reason, checkpoints=count)

