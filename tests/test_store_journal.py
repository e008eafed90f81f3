"""Store and journal on SQLite and, when SHEP_TEST_POSTGRES_URL is set, PostgreSQL."""

import base64
import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from gateway.context import FirstSeen, MessageClaim
from gateway.faults import Fault
from gateway.journal import Journal, JournalEntry
from gateway.store import Store, sqlite_url
from tests.postgres_schema import create_schema, drop_schema

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
ASTANA = timezone(timedelta(hours=5))
ZERO_HASH = "0" * 64


@contextmanager
def sqlite_store(tmp_path):
    store = Store(sqlite_url(tmp_path / "state"))
    try:
        yield store
    finally:
        store.close()


@contextmanager
def postgres_store():
    url, schema = create_schema("t")
    store = Store(url)
    try:
        yield store
    finally:
        store.close()
        drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    opened = sqlite_store(tmp_path) if request.param == "sqlite" else postgres_store()
    with opened as store:
        store.create_schema()
        yield store


def entry(n: int, **overrides) -> JournalEntry:
    fields = {
        "hop": "request-in",
        "direction": "in",
        "from_party": f"sender-{n % 2}",
        "to_party": "shep",
        "service_id": f"service-{n % 3}",
        "message_id": f"msg-{n}",
        "correlation_id": f"corr-{n}",
        "session_id": f"session-{n // 2}",
        "started_at": T0 + timedelta(minutes=n),
        "finished_at": T0 + timedelta(minutes=n, milliseconds=250),
        "verdicts": [{"check": "parse", "verdict": "pass", "detail": None, "ms": 0.25}],
        "fault_code": None,
        "http_status": 200,
        "body": f"<Envelope n='{n}'>тело</Envelope>".encode(),
    }
    fields.update(overrides)
    return JournalEntry(**fields)


def filled(store: Store, count: int = 5, **options) -> Journal:
    journal = Journal(store, **options)
    journal.append_many([entry(n) for n in range(1, count + 1)])
    return journal


def documented_hash(record: dict) -> str:
    """The chain hash as the journal documents it, computed from a query() record."""
    fields = {k: v for k, v in record.items() if k not in ("hash", "body_base64")}
    canonical = json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256((record["prev_hash"] + canonical).encode()).hexdigest()


def execute(store: Store, sql: str, **params) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(sql), params)


def seqs(records: list[dict]) -> list[int]:
    return [r["seq"] for r in records]


# --- journal: append and query ---


def test_append_assigns_consecutive_seqs(store):
    journal = Journal(store)
    assert journal.append(entry(1)) == 1
    assert journal.append_many([entry(2), entry(3)]) == [2, 3]
    assert journal.append_many([]) == []
    assert journal.append(entry(4)) == 4


def test_query_filters(store):
    journal = filled(store, 6)
    assert seqs(journal.query()) == [1, 2, 3, 4, 5, 6]
    assert seqs(journal.query(message_id="msg-4")) == [4]
    assert seqs(journal.query(session_id="session-1")) == [2, 3]
    assert seqs(journal.query(service_id="service-0")) == [3, 6]
    assert seqs(journal.query(sender="sender-1")) == [1, 3, 5]
    assert seqs(journal.query(since=T0 + timedelta(minutes=5))) == [5, 6]
    assert seqs(journal.query(until=T0 + timedelta(minutes=2))) == [1]
    assert seqs(
        journal.query(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4))
    ) == [2, 3]
    assert seqs(journal.query(sender="sender-0", service_id="service-1")) == [4]
    assert seqs(journal.query(limit=2)) == [1, 2]
    assert journal.query(message_id="msg-404") == []


def test_query_bounds_compare_instants_not_wall_clocks(store):
    journal = filled(store, 3)
    # 14:02 in Astana is 09:02 UTC.
    since = datetime(2024, 3, 1, 14, 2, tzinfo=ASTANA)
    assert seqs(journal.query(since=since)) == [2, 3]


def test_query_records_are_json_ready_and_chained(store):
    journal = Journal(store)
    journal.append(
        entry(
            1,
            started_at=datetime(2024, 3, 1, 14, 0, 0, 123456, tzinfo=ASTANA),
            deviations=["soap-action-unquoted"],
            fault_code="SHEP-42",
            http_status=500,
        )
    )
    journal.append(entry(2, body=None))
    first, second = journal.query(include_body=True)
    json.dumps([first, second])
    assert first["started_at"] == "2024-03-01T09:00:00.123456+00:00"
    assert first["finished_at"] == "2024-03-01T09:01:00.250000+00:00"
    assert first["verdicts"] == [
        {"check": "parse", "verdict": "pass", "detail": None, "ms": 0.25}
    ]
    assert first["deviations"] == ["soap-action-unquoted"]
    assert (first["fault_code"], first["http_status"]) == ("SHEP-42", 500)
    assert base64.b64decode(first["body_base64"]) == entry(1).body
    assert first["body_sha256"] == hashlib.sha256(entry(1).body).hexdigest()
    assert first["body_size"] == len(entry(1).body)
    assert first["prev_hash"] == ZERO_HASH
    assert first["hash"] == documented_hash(first)
    assert second["prev_hash"] == first["hash"]
    assert second["hash"] == documented_hash(second)
    assert (second["body_base64"], second["body_sha256"], second["body_size"]) == (
        None,
        None,
        None,
    )
    assert "body_base64" not in journal.query()[0]


def test_body_not_stored_keeps_digest_and_size(store):
    journal = filled(store, 2, store_bytes=False)
    record = journal.query(message_id="msg-1", include_body=True)[0]
    assert record["body_base64"] is None
    assert record["body_sha256"] == hashlib.sha256(entry(1).body).hexdigest()
    assert record["body_size"] == len(entry(1).body)
    with store.engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM journal WHERE body IS NOT NULL")
            ).scalar()
            == 0
        )
    assert journal.verify().ok


# --- journal: verification ---


def test_verify_untouched_journal(store):
    assert Journal(store).verify().ok
    result = filled(store, 5).verify()
    assert (result.ok, result.checked, result.broken_seq, result.reason) == (
        True,
        5,
        None,
        None,
    )


def test_verify_detects_edited_field(store):
    journal = filled(store)
    execute(store, "UPDATE journal SET service_id = 'forged' WHERE seq = 3")
    result = journal.verify()
    assert (result.ok, result.broken_seq, result.checked) == (False, 3, 2)
    assert result.reason == "record 3 was modified (hash mismatch)"


def test_verify_detects_edited_verdicts_text(store):
    journal = filled(store)
    execute(store, "UPDATE journal SET verdicts = 'not json' WHERE seq = 2")
    result = journal.verify()
    assert (result.ok, result.broken_seq) == (False, 2)
    assert result.reason == "record 2 was modified (hash mismatch)"
    assert journal.query(message_id="msg-2")[0]["verdicts"] == "not json"


def test_verify_detects_edited_body(store):
    journal = filled(store)
    execute(store, "UPDATE journal SET body = :body WHERE seq = 3", body=b"<Envelope/>")
    result = journal.verify()
    assert (result.ok, result.broken_seq) == (False, 3)
    assert result.reason == "body of record 3 does not match its SHA-256"


def test_verify_detects_deleted_middle_record(store):
    journal = filled(store)
    execute(store, "DELETE FROM journal WHERE seq = 3")
    result = journal.verify()
    assert (result.ok, result.broken_seq) == (False, 3)
    assert result.reason == "record 3 is missing (seq gap after 2)"


def test_verify_detects_deleted_tail(store):
    journal = filled(store)
    execute(store, "DELETE FROM journal WHERE seq >= 4")
    result = journal.verify()
    assert (result.ok, result.broken_seq, result.checked) == (False, 4, 3)
    assert result.reason == "the last record(s) after 3 were deleted (head says 5)"


def rehash(store: Store, journal: Journal, seq: int) -> None:
    """Recompute one record's hash after an edit, as a careless forger would."""
    record = journal.query(message_id=f"msg-{seq}")[0]
    execute(
        store,
        "UPDATE journal SET hash = :hash WHERE seq = :seq",
        hash=documented_hash(record),
        seq=seq,
    )


def test_verify_detects_edit_with_recomputed_hash(store):
    journal = filled(store)
    execute(store, "UPDATE journal SET fault_code = 'forged' WHERE seq = 3")
    rehash(store, journal, 3)
    result = journal.verify()
    assert (result.ok, result.broken_seq) == (False, 4)
    assert result.reason == "record 4 does not link to record 3"


def test_verify_detects_rehashed_last_record_against_head(store):
    journal = filled(store)
    execute(store, "UPDATE journal SET fault_code = 'forged' WHERE seq = 5")
    rehash(store, journal, 5)
    result = journal.verify()
    assert (result.ok, result.broken_seq) == (False, 5)
    assert result.reason == "record 5 does not match the head"


def run_together(count: int, work) -> list:
    """Run work(i) in `count` threads released at once; re-raises any thread's error."""
    start = threading.Barrier(count)

    def released(i: int):
        start.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(released, range(count)))


def test_concurrent_appends_form_one_chain(store):
    journal = Journal(store)
    writers, per_writer = 4, 25

    def write(w: int) -> list[int]:
        return [journal.append(entry(w * per_writer + i)) for i in range(per_writer)]

    assigned = [
        seq for seqs_of_writer in run_together(writers, write) for seq in seqs_of_writer
    ]
    assert sorted(assigned) == list(range(1, 101))
    result = journal.verify()
    assert (result.ok, result.checked) == (True, 100)


# --- replay guard ---


def remember(store, sender_id, message_id, seen_at, window, session_id="{s}") -> bool:
    """Claim the pair as the accepting transaction does: True when it is new (or stale), False for a replay."""
    try:
        with store.exclusive() as conn:
            store.claim_in(conn, MessageClaim(sender_id, message_id, session_id, seen_at, seen_at - window))
    except Fault as fault:
        assert fault.code == "SHEP-160"
        return False
    return True


def test_replay_guard_window(store):
    window = timedelta(minutes=5)
    assert remember(store, "sender-a", "m1", T0, window) is True
    assert remember(store, "sender-a", "m1", T0 + timedelta(minutes=1), window) is False
    assert remember(store, "sender-b", "m1", T0 + timedelta(minutes=1), window) is True
    assert remember(store, "sender-a", "m1", T0 + window, window) is False
    assert remember(store, "sender-a", "m1", T0 + timedelta(minutes=6), window) is True
    # The replay that got through restarted the window.
    assert remember(store, "sender-a", "m1", T0 + timedelta(minutes=10), window) is False


def test_replay_guard_compares_instants(store):
    window = timedelta(minutes=5)
    assert remember(store, "sender-a", "m1", T0, window) is True
    # 14:04 in Astana is 09:04 UTC, inside the window; 14:06 is outside.
    assert remember(store, "sender-a", "m1", datetime(2024, 3, 1, 14, 4, tzinfo=ASTANA), window) is False
    assert remember(store, "sender-a", "m1", datetime(2024, 3, 1, 14, 6, tzinfo=ASTANA), window) is True


def test_replay_guard_first_seen_tells_whether_the_sender_was_answered(store):
    journal = Journal(store)
    window = timedelta(minutes=5)
    assert store.first_seen("sender-a", "m1", T0, window) is None
    remember(store, "sender-a", "m1", T0, window, session_id="{one}")
    journal.append_many([entry(0, hop="request-in", session_id="{one}")])
    assert store.first_seen("sender-a", "m1", T0, window) == FirstSeen("{one}", T0, False, False)
    journal.append_many([entry(0, hop="response-in", session_id="{one}"),
                         entry(0, hop="response-out", session_id="{one}", fault_code="SHEP-299")])
    assert store.first_seen("sender-a", "m1", T0, window) == FirstSeen("{one}", T0, False, True)
    journal.append_many([entry(0, hop="response-out", session_id="{one}")])
    assert store.first_seen("sender-a", "m1", T0 + timedelta(minutes=1), window) == FirstSeen("{one}", T0, True, True)
    assert store.first_seen("sender-a", "m1", T0 + timedelta(minutes=6), window) is None


def test_a_claim_lost_to_a_replay_rolls_back_the_hops_it_came_with(store):
    journal = Journal(store)
    window = timedelta(minutes=5)
    claim = MessageClaim("sender-a", "m1", "{one}", T0, T0 - window)
    journal.append_many([entry(0, session_id="{one}")], claim=claim)
    with pytest.raises(Fault) as refused:
        journal.append_many([entry(0, session_id="{two}")],
                            claim=MessageClaim("sender-a", "m1", "{two}", T0, T0 - window))
    assert refused.value.code == "SHEP-160"
    assert [r["session_id"] for r in journal.query()] == ["{one}"]
    assert journal.verify().ok


def test_hops_held_through_an_outage_are_written_first_when_the_store_is_back(store):
    journal = Journal(store)
    assert journal.hold([entry(0, session_id="{held}")])
    assert journal.held == 1
    journal.append_many([entry(0, session_id="{later}")])
    assert [r["session_id"] for r in journal.query()] == ["{held}", "{later}"]
    assert journal.held == 0 and journal.verify().ok


def test_replay_guard_race_has_one_winner(store):
    racers = 8

    def race(_: int) -> bool:
        return remember(store, "sender-a", "m1", T0, timedelta(minutes=5))

    assert sorted(run_together(racers, race)) == [False] * (racers - 1) + [True]


# --- store ---


def test_create_schema_is_idempotent(store):
    journal = filled(store, 2)
    store.create_schema()
    assert seqs(journal.query()) == [1, 2]


def test_sqlite_store_runs_in_wal_mode(tmp_path):
    url = sqlite_url(tmp_path / "fresh" / "state")
    assert (tmp_path / "fresh" / "state").is_dir()
    assert url == f"sqlite:///{(tmp_path / 'fresh' / 'state').resolve() / 'shep.db'}"
    with sqlite_store(tmp_path) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_sqlite_files_are_private(tmp_path):
    """The store holds every hop's bytes: its state dir is 0700, the database and its WAL 0600, however
    permissive the umask, and an older 0644 database is tightened at the next start."""
    import os
    import stat

    from gateway.store import Store, sqlite_url

    previous = os.umask(0o022)
    try:
        state = tmp_path / "state"
        store = Store(sqlite_url(state))
        store.create_schema()
        with store.engine.begin() as conn:
            conn.execute(text("SELECT 1"))
        files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir()}
        store.close()
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        assert files["shep.db"] == 0o600 and files["shep.db-wal"] == 0o600
        (state / "shep.db").chmod(0o644)
        Store(sqlite_url(state)).close()
        assert stat.S_IMODE((state / "shep.db").stat().st_mode) == 0o600
    finally:
        os.umask(previous)
