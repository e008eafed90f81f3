"""The checkpoint writer: where it resumes, its store copy, its time-stamp token, and what a failure costs."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from gateway import checkpoints, timestamps
from gateway.checkpoints import _last_seq
from gateway.journal import Journal, JournalEntry
from gateway.security.keyfiles import load_credentials
from gateway.store import Store, sqlite_url
from simulators.pki.ca import TestPKI


def test_the_last_checkpoint_is_read_from_the_end(tmp_path):
    path = tmp_path / "journal-checkpoints.jsonl"
    assert _last_seq(path) == 0
    path.write_text("".join(json.dumps({"seq": seq, "hashes": ["ab" * 32] * seq}) + "\n" for seq in range(1, 40)))
    assert _last_seq(path) == 39
    assert _last_seq(path, block=7) == 39  # a last line much longer than one read
    path.write_text(json.dumps({"seq": 3}) + "\n")
    assert _last_seq(path, block=4) == 3


# -- the store's copy and the time-stamp token --------------------------------------------------------

@pytest.fixture
def writing(tmp_path):
    """A journal with records and a writer of checkpoints signed with the test PKI's gateway key."""
    pki = TestPKI(tmp_path)
    pki.init()
    store = Store(sqlite_url(tmp_path))
    store.create_schema()
    journal = Journal(store)
    now = datetime.now(timezone.utc)
    journal.append_many([JournalEntry("request-in", "in", "a", "b", "S", f"m{i}", None, "s", now, now, [], None,
                                      200, b"<x/>") for i in range(3)])
    key, cert = load_credentials(*pki.gateway_credentials("rsa"))
    yield pki, journal, key, cert, tmp_path / checkpoints.FILE_NAME
    store.close()


def test_a_failing_tsa_costs_the_token_not_the_checkpoint(writing, caplog):
    pki, journal, key, cert, path = writing

    def unreachable(query: bytes) -> bytes:
        raise ConnectionRefusedError("connection refused")

    line = checkpoints.CheckpointWriter(path, journal, key, cert, lambda: datetime.now(timezone.utc),
                                        unreachable).write()
    assert line["seq"] == 3 and "timestamp" not in line
    assert "written without a time-stamp: connection refused" in caplog.text
    assert [c["signature"] for c in checkpoints.read_store(journal)] == [line["signature"]]
    outcome = checkpoints.verify(journal, path, [cert], checkpoints.TokenTrust(pki.trust_anchors(), []))
    assert outcome.ok and (outcome.stamped, outcome.unstamped) == (0, 1)
    said = checkpoints.summary(outcome, path, tsa_configured=True)
    assert any("1 checkpoint(s) carry no time-stamp token" in s for s in said), said
    assert not any("no time-stamp" in s for s in checkpoints.summary(outcome, path, tsa_configured=False))


def test_a_token_is_over_the_signed_bytes(writing):
    pki, journal, key, cert, path = writing
    line = checkpoints.CheckpointWriter(path, journal, key, cert, lambda: datetime.now(timezone.utc),
                                        pki.timestamp).write()
    token = base64.b64decode(line["timestamp"])
    assert timestamps.check(token, checkpoints.signed_bytes(line), pki.trust_anchors(), pki.intermediates())
    trust = checkpoints.TokenTrust(pki.trust_anchors(), pki.intermediates())
    assert checkpoints.verify(journal, path, [cert], trust).stamped == 1
    # Trusted by nobody: the token does not prove the checkpoint.
    refused = checkpoints.verify(journal, path, [cert], checkpoints.TokenTrust([], []))
    assert not refused.ok and "does not chain to a trust anchor" in refused.reason


def test_a_store_that_fails_loses_only_the_copy(writing, caplog):
    pki, journal, key, cert, path = writing
    with journal.store.exclusive() as conn:
        conn.execute(text("DROP TABLE journal_checkpoints"))
    line = checkpoints.CheckpointWriter(path, journal, key, cert, lambda: datetime.now(timezone.utc)).write()
    assert [c["seq"] for c in checkpoints.read(path)] == [line["seq"]]
    assert "is in" in caplog.text and "but not in the store" in caplog.text
