"""The export bundle for every algorithm of the gateway (GOST too, which only `shep` verifies), and what its
check refuses: a file added, one missing, the chain's links, a record outside its range."""
from __future__ import annotations

import io
import json
import re
import tarfile
from datetime import datetime, timezone

import pytest

from gateway import checkpoints, journal_export
from gateway.journal import Journal, JournalEntry, _chain_hash
from gateway.security.keyfiles import load_credentials
from gateway.store import Store, sqlite_url
from simulators.pki.ca import TestPKI


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> TestPKI:
    ca = TestPKI(tmp_path_factory.mktemp("pki"))
    ca.init()
    return ca


def _bundle(pki: TestPKI, tmp_path, alg: str):
    store = Store(sqlite_url(tmp_path))
    store.create_schema()
    journal = Journal(store)
    now = datetime.now(timezone.utc)
    entries = [JournalEntry("request-in", "in", "a", "b", "S", f"m{i}", None, "s", now, now,
                            [{"check": "c", "verdict": "pass", "detail": "", "ms": 0.25}], None, 200,
                            "<сәлем/>".encode()) for i in range(6)]
    journal.append_many(entries[:4])
    key, cert = load_credentials(*pki.gateway_credentials(alg))
    path = tmp_path / checkpoints.FILE_NAME
    checkpoints.CheckpointWriter(path, journal, key, cert, lambda: now,
                                 lambda query: pki.timestamp(query, alg)).write()
    journal.append_many(entries[4:])  # records 5 and 6: no checkpoint signs them yet
    chain, roots = journal_export.chain_of(cert, pki.trust_anchors(), pki.intermediates())
    out = tmp_path / "bundle.tar"
    described = journal_export.export(journal, 2, 6, path, journal_export.Signer(key, cert, chain, roots), out, now)
    store.close()
    return out, described


@pytest.mark.parametrize("alg", ["rsa", "ec", "gost2015"])
def test_a_bundle_verifies_with_itself_and_the_roots(pki, tmp_path, alg):
    out, described = _bundle(pki, tmp_path, alg)
    assert (described["from"], described["to"], described["checkpoints"], described["uncovered"]) == (2, 6, 1, [5, 6])
    checked = journal_export.verify_bundle(out, pki.trust_anchors(), [])
    assert checked == described
    with pytest.raises(journal_export.BundleError, match="does not chain to a trust anchor"):
        journal_export.verify_bundle(out, [], [])


def _rewritten(out, change) -> dict[str, bytes]:
    files = journal_export.read_bundle(out)
    change(files)
    with tarfile.open(out, "w") as archive:
        for name, data in files.items():
            member = tarfile.TarInfo(f"bundle/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return files


@pytest.mark.parametrize(("change", "says"), [
    (lambda files: files.update({"extra.txt": b"x"}), "extra.txt is not in manifest.txt: it was added"),
    (lambda files: files.pop("chain.txt"), "chain.txt, listed in manifest.txt, is missing"),
    (lambda files: files.update({"manifest.txt": files["manifest.txt"] + b"oops\n"}), "is not '<sha256>  <file>'"),
    (lambda files: files.update({"manifest.p7s": b"\x30\x00"}), "manifest.p7s: not a DER CMS SignedData"),
], ids=["added", "missing", "bad-manifest-line", "not-cms"])
def test_a_changed_bundle_is_refused(pki, tmp_path, change, says):
    out, _ = _bundle(pki, tmp_path, "ec")
    _rewritten(out, change)
    with pytest.raises(journal_export.BundleError, match=re.escape(says)):
        journal_export.verify_bundle(out, pki.trust_anchors(), [])


def test_the_records_are_checked_past_the_manifest(pki, tmp_path):
    """What the gateway signed is checked too: an export that signs records out of their chain is refused."""
    out, _ = _bundle(pki, tmp_path, "rsa")
    files = journal_export.read_bundle(out)
    records = [json.loads(line) for line in files["records.jsonl"].decode().splitlines()]
    records[1]["prev_hash"] = "0" * 64
    with pytest.raises(journal_export.BundleError, match="record 3 does not match its hash"):
        journal_export._check_records(records, {"from": 2, "to": 6, "records": 5})
    records[1]["hash"] = _chain_hash({k: v for k, v in records[1].items() if k not in ("hash", "body_base64")})
    with pytest.raises(journal_export.BundleError, match="record 3 does not link to record 2"):
        journal_export._check_records(records, {"from": 2, "to": 6, "records": 5})
    with pytest.raises(journal_export.BundleError, match="does not hold records 2-7"):
        journal_export._check_records(records, {"from": 2, "to": 7, "records": 6})
