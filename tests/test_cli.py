"""`shep` as a user runs it: real subprocesses on loopback with the shipped default configuration.

Every wait is bounded: servers must print their listening line within START_TIMEOUT, commands
finish within COMMAND_TIMEOUT, SIGTERM must stop a server within STOP_TIMEOUT.
"""
from __future__ import annotations

import base64
import difflib
import hashlib
import itertools
import json
import re
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import create_engine, update

from gateway import client
from gateway.asyncchannel import wire
from gateway.faults import CATALOGUE
from gateway.passwords import verify_password
from gateway import timestamps
from gateway.store.schema import journal as journal_table
from gateway.store.schema import journal_checkpoints
from simulators.pki.ca import TestPKI
from tests import system_tools
from tests.serve_process import COMMAND_TIMEOUT, SHEP, STOP_TIMEOUT, ServeProcess, shep, subprocess_env
from tests.store_under_test import StoreUnderTest, store_under_test

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "gateway" / "defaults" / "shep.toml"
ECHO_XSD = ROOT / "gateway" / "defaults" / "demo-echo.xsd"
START_TIMEOUT = 20
HTTP_TIMEOUT = 15
ECHO_TEXT = "сәлем, ШЭП"
CONSUMER = ["--sender", "demo-consumer", "--password", "demo-consumer-pass"]
HOPS = {"request-in", "request-out", "response-in", "response-out"}
# urllib without proxies: the tests talk to 127.0.0.1 only.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stdout and "Traceback" not in result.stderr, result.stderr


class Gateway:
    def __init__(self, base: str, store: StoreUnderTest, cwd: Path, process: ServeProcess):
        self.base = base
        self.store = store
        self.cwd = cwd
        self.process = process

    def send(self, *args: str, data: Path | None = None) -> subprocess.CompletedProcess:
        extra = ["--data", str(data)] if data else []
        return shep("send", "--url", self.base, *args, *extra, cwd=self.cwd)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(f"{self.base}{path}", data=body, headers={"Content-Type": "text/xml"})
        try:
            with HTTP.open(request, timeout=HTTP_TIMEOUT) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with HTTP.open(f"{self.base}{path}", timeout=HTTP_TIMEOUT) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode("utf-8")


def start_gateway(work: Path, store: StoreUnderTest) -> Gateway:
    process = ServeProcess("--port", "0", *store.cli_args, cwd=work, log=work / "serve.log")
    try:
        base = process.wait_listening(START_TIMEOUT)
    except BaseException:
        process.close()
        raise
    return Gateway(base, store, work, process)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    work = tmp_path_factory.mktemp("cli-gateway")
    with store_under_test(work / "state", "cli") as store:
        gw = start_gateway(work, store)
        yield gw
        try:
            if gw.process.proc.poll() is None:
                gw.process.terminate()
        finally:
            gw.process.close()


@pytest.fixture
def echo_file(tmp_path) -> Path:
    path = tmp_path / "echo.xml"
    path.write_text(f'<e:EchoRequest xmlns:e="urn:shep-emulator:demo:echo"><text>{ECHO_TEXT}</text></e:EchoRequest>\n',
                    "utf-8")
    return path


def session_of(result: subprocess.CompletedProcess) -> str:
    found = re.search(r"^session\s+(\{[0-9a-f-]{36}\})\s*$", result.stdout, re.M)
    assert found, result.stdout
    return found.group(1)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_shipped_parties_take_only_what_the_gateway_signed(gateway):
    """The default deployment: the clinic's push receiver and the ЖТ ММБ know the gateway's certificate, so
    an unsigned message POSTed to them around the gateway is refused as unsigned (not for want of a
    certificate to check it with)."""
    operation = wire.operation_of(wire.send_message(service_id="PHC_ATTACHMENT", sender_id="portal", password=None))
    forged_push = wire.push_send_message(wire.stored_message(operation, message_id=str(uuid.uuid4()),
                                                             correlation_id=str(uuid.uuid4()), session_id="{x}"))
    query = client.build_send_message(service_id="GBDFL_UniversalServiceSync", sender_id="ajo", password=None,
                                      payload=etree.fromstring(b"<Request/>"))
    for path, forged in (("/clinic/async", forged_push), ("/sim/gbdfl", query)):
        status, raw = gateway.post(path, forged)
        assert (status, client.read_reply(status, raw).fault["errorCode"]) == (500, "SHEP-180"), raw


# --- shep send ---------------------------------------------------------------------------------

def test_send_inline_prints_status_session_and_echo(gateway, echo_file):
    result = gateway.send("--service", "DEMO_Echo", *CONSUMER, data=echo_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SCSS001" in result.stdout
    assert ECHO_TEXT in result.stdout
    session_of(result)
    no_traceback(result)


@pytest.mark.parametrize("style", [
    ["--style", "escaped"],
    ["--style", "typed", "--xsi-type", "{urn:shep-emulator:demo:echo}Echo"],
], ids=["escaped", "typed"])
def test_send_other_data_styles(gateway, echo_file, style):
    result = gateway.send("--service", "DEMO_Echo", *CONSUMER, *style, data=echo_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SCSS001" in result.stdout
    assert ECHO_TEXT in result.stdout


@pytest.mark.parametrize("args, code", [
    (["--service", "DEMO_Echo", "--sender", "demo-consumer", "--password", "wrong"], "SHEP-141"),
    (["--service", "DEMO_Echo", "--sender", "demo-other", "--password", "demo-other-pass"], "SHEP-153"),
    (["--service", "NO_SUCH_SERVICE", *CONSUMER], "SHEP-150"),
], ids=["wrong-password", "no-access", "unknown-service"])
def test_send_refusals_exit_1_with_fault_code(gateway, echo_file, args, code):
    result = gateway.send(*args, data=echo_file)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(rf"^fault\s+{code}\b", result.stdout, re.M), result.stdout
    session_of(result)
    no_traceback(result)


def test_send_data_not_xml_exits_2(gateway, tmp_path):
    bad = tmp_path / "not-xml.txt"
    bad.write_text("this is not XML\n", "utf-8")
    result = gateway.send("--service", "DEMO_Echo", *CONSUMER, data=bad)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "not-xml.txt is not an XML document" in result.stderr
    no_traceback(result)


def test_send_unreachable_url_exits_2(tmp_path, echo_file):
    url = f"http://127.0.0.1:{closed_port()}"
    result = shep("send", "--url", url, "--service", "DEMO_Echo", *CONSUMER, "--data", str(echo_file),
                  "--timeout", "10", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot reach" in result.stderr and url in result.stderr
    no_traceback(result)


# --- HTTP side ---------------------------------------------------------------------------------

def test_health(gateway):
    status, content_type, body = gateway.get("/health")
    assert status == 200
    assert content_type.startswith("application/json")
    assert json.loads(body)["status"] == "ok"


def test_metrics_count_refusal_by_fault_code(gateway, echo_file):
    refused = gateway.send("--service", "DEMO_Echo", "--sender", "demo-consumer", "--password", "wrong",
                           data=echo_file)
    assert refused.returncode == 1
    status, _, body = gateway.get("/metrics")
    assert status == 200
    series = [line for line in body.splitlines() if line.startswith('shep_faults_total{code="SHEP-141"}')]
    assert len(series) == 1, body
    assert float(series[0].rsplit(" ", 1)[1]) >= 1


def test_api_faults_lists_the_catalogue(gateway):
    status, content_type, body = gateway.get("/api/faults")
    assert status == 200 and content_type.startswith("application/json")
    codes = [fault["code"] for fault in json.loads(body)["faults"]]
    assert sorted(codes) == sorted(CATALOGUE)


def test_api_journal_records_every_hop(gateway, echo_file):
    result = gateway.send("--service", "DEMO_Echo", *CONSUMER, "--message-id", f"cli-{uuid.uuid4()}",
                          data=echo_file)
    assert result.returncode == 0, result.stdout + result.stderr
    session = session_of(result)
    status, content_type, body = gateway.get("/api/journal?serviceId=DEMO_Echo&limit=1000")
    assert status == 200 and content_type.startswith("application/json")
    records = json.loads(body)["records"]
    assert records and all(r["service_id"] == "DEMO_Echo" for r in records)
    assert {r["hop"] for r in records if r["session_id"] == session} == HOPS


@pytest.mark.parametrize("query", ["bogus=1", "limit=abc"])
def test_api_journal_rejects_bad_queries(gateway, query):
    status, content_type, body = gateway.get(f"/api/journal?{query}")
    assert status == 400
    assert content_type.startswith("application/json")
    assert json.loads(body)["error"]


# --- shep journal --------------------------------------------------------------------------------

def test_journal_show_lists_records(gateway, echo_file):
    sent = gateway.send("--service", "DEMO_Echo", *CONSUMER, data=echo_file)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    session = session_of(sent)
    args = ("journal", "show", *gateway.store.cli_args, "--service-id", "DEMO_Echo", "--limit", "1000")

    text = shep(*args, cwd=gateway.cwd)
    assert text.returncode == 0, text.stderr
    session_lines = [line for line in text.stdout.splitlines() if session in line]
    assert {hop for hop in HOPS if any(f" {hop} " in line for line in session_lines)} == HOPS, text.stdout
    count = re.search(r"^(\d+) record\(s\)$", text.stdout, re.M)
    assert count and int(count.group(1)) >= 4, text.stdout

    as_json = shep(*args, "--json", cwd=gateway.cwd)
    assert as_json.returncode == 0, as_json.stderr
    records = json.loads(as_json.stdout)
    assert len(records) == int(count.group(1))
    assert all(r["service_id"] == "DEMO_Echo" for r in records)
    assert {r["hop"] for r in records if r["session_id"] == session} == HOPS


def test_sigterm_then_verify_then_tamper(tmp_path, tested_store, echo_file):
    gw = start_gateway(tmp_path, tested_store)
    try:
        sent = gw.send("--service", "DEMO_Echo", *CONSUMER, data=echo_file)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        started = time.monotonic()
        assert gw.process.terminate() == 0, gw.process.log_text()
        assert time.monotonic() - started < STOP_TIMEOUT
    finally:
        gw.process.close()

    verify = shep("journal", "verify", *gw.store.cli_args, cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "chain intact" in verify.stdout

    engine = create_engine(gw.store.url)
    try:
        with engine.begin() as conn:
            changed = conn.execute(update(journal_table).where(journal_table.c.seq == 3)
                                   .values(service_id="TAMPERED")).rowcount
    finally:
        engine.dispose()
    assert changed == 1

    broken = shep("journal", "verify", *gw.store.cli_args, cwd=tmp_path)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert re.search(r"\brecord 3\b", broken.stdout), broken.stdout
    no_traceback(broken)


# --- shep serve failures --------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["negative-timeout", "unknown-key"])
def test_serve_bad_config_exits_2_naming_file_line_and_key(tmp_path, variant):
    (tmp_path / "demo-echo.xsd").write_bytes(ECHO_XSD.read_bytes())
    text = DEFAULT_CONFIG.read_text("utf-8")
    if variant == "negative-timeout":
        assert "\ntimeout_seconds = 10\n" in text
        text = text.replace("\ntimeout_seconds = 10\n", "\ntimeout_seconds = -1\n")
        marker, key = "timeout_seconds = -1", "services.DEMO_Echo.timeout_seconds"
    else:
        text = text.replace("[services.DEMO_Echo]\n", "[services.DEMO_Echo]\nbogus_key = 1\n")
        marker, key = "bogus_key = 1", "services.DEMO_Echo.bogus_key"
    (tmp_path / "bad.toml").write_text(text, "utf-8")
    line = text.splitlines().index(marker) + 1

    result = shep("serve", "--config", "bad.toml", "--port", "0", "--state-dir", str(tmp_path / "state"),
                  cwd=tmp_path, timeout=START_TIMEOUT)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"bad.toml:{line}: {key}:" in result.stderr, result.stderr
    assert "listening" not in result.stdout
    no_traceback(result)


def test_serve_port_in_use_exits_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = shep("serve", "--port", str(port), "--state-dir", str(tmp_path / "state"), cwd=tmp_path,
                      timeout=START_TIMEOUT)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot listen" in result.stderr and str(port) in result.stderr, result.stderr
    assert "listening on" not in result.stdout
    no_traceback(result)


# --- shep faults, shep hash-password ---------------------------------------------------------------

def test_faults_output_is_the_committed_doc(tmp_path):
    result = subprocess.run([str(SHEP), "faults"], cwd=tmp_path, capture_output=True, timeout=COMMAND_TIMEOUT,
                            env=subprocess_env())
    assert result.returncode == 0, result.stderr
    committed = (ROOT / "docs" / "faults.md").read_bytes()
    if result.stdout != committed:
        diff = difflib.unified_diff(committed.decode("utf-8").splitlines(), result.stdout.decode("utf-8").splitlines(),
                                    "docs/faults.md", "shep faults", lineterm="")
        pytest.fail("docs/faults.md is stale: regenerate it with `shep faults > docs/faults.md`\n"
                    + "\n".join(list(diff)[:40]))


def test_hash_password_reads_one_line_of_stdin(tmp_path):
    result = subprocess.run([str(SHEP), "hash-password"], input="sec ret\nnot this\n", cwd=tmp_path,
                            capture_output=True, text=True, timeout=COMMAND_TIMEOUT, env=subprocess_env())
    assert result.returncode == 0, result.stderr
    hashed = result.stdout.strip()
    assert hashed.startswith("pbkdf2-sha256$")
    assert verify_password("sec ret", hashed)
    assert not verify_password("Sec ret", hashed)


def test_hash_password_takes_no_argument_and_no_empty_password(tmp_path):
    """An argument would stay in the shell's history: refused by the parser, nothing hashed."""
    result = shep("hash-password", "secret", cwd=tmp_path)
    assert result.returncode == 2 and "unrecognized arguments: secret" in result.stderr
    assert not result.stdout
    empty = subprocess.run([str(SHEP), "hash-password"], input="\n", cwd=tmp_path, capture_output=True, text=True,
                           timeout=COMMAND_TIMEOUT, env=subprocess_env())
    assert empty.returncode == 2 and "empty password" in empty.stderr and not empty.stdout


@pytest.mark.parametrize("table, key", [("[gbdfl]\nbogus = 1\n", "gbdfl.bogus"),
                                        ("[portal]\nlockout_attempts = 0\n", "portal.lockout_attempts")])
def test_serve_bad_party_table_exits_2_naming_file_line_and_key(tmp_path, table, key):
    (tmp_path / "bad.toml").write_text("# the parties' own tables are checked when the server starts\n" + table,
                                       "utf-8")
    result = shep("serve", "--config", "bad.toml", "--port", "0", "--state-dir", str(tmp_path / "state"),
                  cwd=tmp_path, timeout=START_TIMEOUT)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"bad.toml:3: {key}:" in result.stderr, result.stderr
    no_traceback(result)


def test_store_argument_implies_the_shipped_postgresql_driver():
    from gateway.cli.common import store_argument as _store_argument

    assert _store_argument("postgresql://shep@db/shep") == "postgresql+psycopg://shep@db/shep"
    assert _store_argument("postgres://shep@db/shep") == "postgresql+psycopg://shep@db/shep"
    assert _store_argument("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


# --- the journal's signed checkpoints ---------------------------------------------------------------

def _rewrite(state: Path, how: str) -> None:
    """Rewrite the SQLite journal as someone with the database file would."""
    from sqlalchemy import delete, select

    from gateway.journal import _chain_hash, _hashed_fields
    from gateway.store.schema import journal_head

    engine = create_engine(f"sqlite:///{state / 'shep.db'}")
    try:
        with engine.begin() as conn:
            if how == "truncate":  # the tail deleted, the head moved back onto the new last record
                last = conn.execute(select(journal_table).where(journal_table.c.seq == 4)).mappings().one()
                conn.execute(delete(journal_table).where(journal_table.c.seq > 4))
                conn.execute(journal_head.update().values(seq=4, hash=last["hash"]))
            elif how == "empty-body":
                conn.execute(update(journal_table).where(journal_table.c.seq == 3).values(body=None))
            elif how == "recomputed":  # record 2 edited, then every hash after it and the head recomputed
                rows = conn.execute(select(journal_table).order_by(journal_table.c.seq)).mappings().all()
                prev = rows[0]["hash"]
                for row in rows[1:]:
                    fields = _hashed_fields(row)
                    fields["prev_hash"] = prev
                    if row["seq"] == 2:
                        fields["service_id"] = "TAMPERED"
                    prev = _chain_hash(fields)
                    conn.execute(update(journal_table).where(journal_table.c.seq == row["seq"]).values(
                        service_id=fields["service_id"], prev_hash=fields["prev_hash"], hash=prev))
                conn.execute(journal_head.update().values(hash=prev))
            elif how == "store-forged":  # a checkpoint added to the database only
                row = conn.execute(select(journal_checkpoints)).first()
                forged = {**json.loads(row.checkpoint), "at": "2020-01-01T00:00:00+00:00"}
                conn.execute(journal_checkpoints.insert().values(first_seq=row.first_seq, seq=row.seq,
                                                                 written_at=row.written_at,
                                                                 checkpoint=json.dumps(forged)))
            elif how == "store-rewritten":  # the database's copy edited to match a changed record
                row = conn.execute(select(journal_checkpoints)).first()
                copy = json.loads(row.checkpoint)
                copy["hashes"][0] = "0" * 64
                conn.execute(update(journal_checkpoints).where(journal_checkpoints.c.id == row.id)
                             .values(checkpoint=json.dumps(copy)))
            elif how == "store-deleted":
                conn.execute(delete(journal_checkpoints))
            else:  # the checkpoint file edited: a changed record, a token of other bytes, or gone
                path = state / "journal-checkpoints.jsonl"
                lines = [json.loads(line) for line in path.read_text().splitlines()]
                if how == "file-deleted":
                    path.unlink()
                    return _rewrite(state, "truncate")
                if how == "forged-checkpoint":
                    lines[0]["hashes"][0] = "0" * 64
                else:  # a genuine token of the test PKI's TSA, over other bytes
                    lines[0]["timestamp"] = base64.b64encode(
                        timestamps.obtain(TestPKI(state).timestamp, b"other bytes")).decode()
                path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    finally:
        engine.dispose()


def test_journal_rewrites_show_against_the_signed_checkpoints(tmp_path, echo_file):
    """Each way of rewriting the SQLite journal that the chain alone cannot see is named by its first record;
    the untouched journal verifies with its checkpoints."""
    state = tmp_path / "state"
    process = ServeProcess("--port", "0", "--state-dir", str(state), cwd=tmp_path, log=tmp_path / "serve.log")
    try:
        base = process.wait_listening(START_TIMEOUT)
        for _ in range(3):  # 4 records each
            sent = shep("send", "--url", base, "--service", "DEMO_Echo", *CONSUMER, "--data", str(echo_file),
                        cwd=tmp_path)
            assert sent.returncode == 0, sent.stdout + sent.stderr
        assert process.terminate() == 0, process.log_text()  # stopping signs the last records
    finally:
        process.close()
    lines = (state / "journal-checkpoints.jsonl").read_text().splitlines()
    assert lines and json.loads(lines[-1])["seq"] == 12
    # The shipped configuration time-stamps every checkpoint at the built-in TSA; the store holds copies.
    assert all("timestamp" in json.loads(line) for line in lines)
    ok = shep("journal", "verify", "--state-dir", str(state), cwd=tmp_path)
    assert ok.returncode == 0 and "checkpoints OK: 12 record(s)" in ok.stdout, ok.stdout + ok.stderr
    assert f"{len(lines)} time-stamped" in ok.stdout and f"store copies OK: {len(lines)} match" in ok.stdout

    # Without its store copies, the file still proves the journal (and without the file, the copies do: below).
    shutil.copytree(state, tmp_path / "store-deleted")
    _rewrite(tmp_path / "store-deleted", "store-deleted")
    verified = shep("journal", "verify", "--state-dir", str(tmp_path / "store-deleted"), cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{len(lines)} checkpoint(s) of the file have no store copy" in verified.stdout, verified.stdout

    # Every one of these keeps the chain itself intact: only the checkpoints show them.
    for how, first, says in (("truncate", 5, "is gone"), ("empty-body", 3, "was removed"),
                             ("recomputed", 2, "was changed"), ("forged-checkpoint", 1, "signature does not verify"),
                             ("store-forged", 1, "is not in the checkpoint file"),
                             ("store-rewritten", 1, "the database copy was rewritten"),
                             ("file-deleted", 5, "is gone: store checkpoint 1 signed it"),
                             ("token-of-other-bytes", 1, "imprint is not of these bytes")):
        copy = tmp_path / how
        shutil.copytree(state, copy)
        _rewrite(copy, how)
        broken = shep("journal", "verify", "--state-dir", str(copy), cwd=tmp_path)
        assert broken.returncode == 1, (how, broken.stdout + broken.stderr)
        assert re.search(rf"BROKEN at record {first}\b", broken.stdout) and says in broken.stdout, (how, broken.stdout)
        no_traceback(broken)


def _on_a_terminal(answers: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, str]:
    """`shep hash-password` with a pseudo-terminal as stdin and stderr (its own session: no other terminal to
    open), each answer typed after its prompt; what the terminal showed."""
    import os
    import select

    primary, secondary = os.openpty()
    proc = subprocess.Popen([str(SHEP), "hash-password"], stdin=secondary, stderr=secondary, stdout=subprocess.PIPE,
                            cwd=tmp_path, env=subprocess_env(), text=True, start_new_session=True)
    os.close(secondary)
    shown = b""
    try:
        for prompt, answer in zip(("password: ", "again: "), answers, strict=True):
            deadline = time.monotonic() + COMMAND_TIMEOUT
            while not shown.endswith(prompt.encode()):
                assert time.monotonic() < deadline, shown
                if select.select([primary], [], [], 1)[0]:
                    shown += os.read(primary, 1024)
            os.write(primary, answer.encode() + b"\n")
        out, _ = proc.communicate(timeout=COMMAND_TIMEOUT)
        while select.select([primary], [], [], 0.2)[0]:
            try:
                shown += os.read(primary, 1024)
            except OSError:  # the other end closed
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, ""), shown.decode("utf-8", "replace")


def test_hash_password_on_a_terminal_asks_twice_without_echo(tmp_path):
    result, shown = _on_a_terminal(["s3cret pw", "s3cret pw"], tmp_path)
    assert result.returncode == 0, shown
    assert verify_password("s3cret pw", result.stdout.strip())
    assert "s3cret" not in shown  # not echoed
    differ, shown = _on_a_terminal(["one", "two"], tmp_path)
    assert differ.returncode == 2 and "the two passwords differ" in shown and not differ.stdout


# --- the journal exported as a signed bundle ---------------------------------------------------------

def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"needs {name} (Debian package {package})")
    return path


def _record_hash(record: dict) -> str:
    """A record's hash recomputed from records.jsonl alone, as docs/security.md says."""
    fields = {k: v for k, v in record.items() if k not in ("hash", "body_base64")}
    preimage = record["prev_hash"] + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(preimage.encode()).hexdigest()


def test_journal_export_is_verified_by_openssl_and_by_shep(tmp_path, echo_file):
    """An exported range verifies with openssl and sha256sum alone, and with `shep journal verify --bundle`; a
    changed record, with or without a manifest to match, is refused by both."""
    openssl, sha256sum = system_tools.require("openssl"), _tool("sha256sum", "coreutils")  # coreutils: Essential
    state = tmp_path / "state"
    process = ServeProcess("--port", "0", "--state-dir", str(state), cwd=tmp_path, log=tmp_path / "serve.log")
    try:
        base = process.wait_listening(START_TIMEOUT)
        for _ in range(3):
            sent = shep("send", "--url", base, "--service", "DEMO_Echo", *CONSUMER, "--data", str(echo_file),
                        cwd=tmp_path)
            assert sent.returncode == 0, sent.stdout + sent.stderr
        assert process.terminate() == 0, process.log_text()
    finally:
        process.close()
    exported = shep("journal", "export", "--state-dir", str(state), "--from", "3", "--to", "10", "--out", "b.tar",
                    cwd=tmp_path)
    assert exported.returncode == 0 and "records 3-10 (8)" in exported.stdout, exported.stdout + exported.stderr
    with tarfile.open(tmp_path / "b.tar") as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    bundle = tmp_path / "unpacked" / "b"

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=bundle, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)

    def openssl_refuses_nothing() -> None:
        assert run(sha256sum, "-c", "--quiet", "manifest.txt").returncode == 0
        checked = run(openssl, "cms", "-verify", "-binary", "-content", "manifest.txt", "-in", "manifest.p7s",
                      "-inform", "DER", "-CAfile", "certificates/ca.pem", "-certfile", "certificates/gateway.pem",
                      "-purpose", "any", "-out", "/dev/null")
        assert checked.returncode == 0 and "Verification successful" in checked.stderr, checked.stderr

    openssl_refuses_nothing()
    records = [json.loads(line) for line in (bundle / "records.jsonl").read_text("utf-8").splitlines()]
    assert [r["seq"] for r in records] == list(range(3, 11))
    assert all(_record_hash(record) == record["hash"] for record in records)
    assert all(record["prev_hash"] == previous["hash"] for previous, record in itertools.pairwise(records))
    tokens = sorted((bundle / "checkpoints").glob("*.tst"))
    assert tokens, "every checkpoint of the shipped configuration is time-stamped"
    for token in tokens:
        checked = run(openssl, "ts", "-verify", "-data", str(token.with_suffix(".json")), "-in", str(token),
                      "-token_in", "-CAfile", "certificates/ca.pem", "-untrusted", "certificates/tsa.pem")
        assert checked.returncode == 0 and "Verification: OK" in checked.stdout, checked.stdout + checked.stderr
    run(openssl, "x509", "-in", "certificates/gateway.pem", "-pubkey", "-noout", "-out", "gateway-key.pem")
    for signature in sorted((bundle / "checkpoints").glob("*.sig")):
        checked = run(openssl, "dgst", "-sha256", "-verify", "gateway-key.pem", "-signature", str(signature),
                      str(signature.with_suffix(".json")))
        assert checked.returncode == 0 and "Verified OK" in checked.stdout, checked.stdout + checked.stderr
    (bundle / "gateway-key.pem").unlink()
    for target in ("b.tar", str(bundle)):
        ok = shep("journal", "verify", "--state-dir", str(state), "--bundle", target, cwd=tmp_path)
        assert ok.returncode == 0 and "bundle OK: records 3-10 (8)" in ok.stdout, ok.stdout + ok.stderr
    # Elsewhere, with the CA certificate obtained apart from the bundle; with no CA trusted at all.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(state / "pki" / "ca" / "root" / "cert.pem", elsewhere / "root.pem")
    ok = shep("journal", "verify", "--bundle", str(tmp_path / "b.tar"), "--ca", "root.pem", cwd=elsewhere)
    assert ok.returncode == 0 and "bundle OK" in ok.stdout, ok.stdout + ok.stderr
    untrusted = shep("journal", "verify", "--bundle", str(tmp_path / "b.tar"), cwd=elsewhere)
    assert untrusted.returncode == 1 and "does not chain to a trust anchor" in untrusted.stdout, untrusted.stdout
    assert "no CA is trusted (--ca names one)" in untrusted.stderr  # no state dir here: said

    # A record changed: the manifest no longer matches it.
    original = (bundle / "records.jsonl").read_text("utf-8")
    (bundle / "records.jsonl").write_text(original.replace('"service_id": "DEMO_Echo"', '"service_id": "X"', 1),
                                          "utf-8")
    assert run(sha256sum, "-c", "--quiet", "manifest.txt").returncode != 0
    refused = shep("journal", "verify", "--bundle", str(bundle), cwd=tmp_path)
    assert refused.returncode == 1 and "records.jsonl does not match its SHA-256" in refused.stdout, refused.stdout
    # ... and the manifest rewritten to match: the gateway's signature no longer covers it.
    manifest = (bundle / "manifest.txt").read_text()
    digest = hashlib.sha256((bundle / "records.jsonl").read_bytes()).hexdigest()
    (bundle / "manifest.txt").write_text(re.sub(r"[0-9a-f]{64}(?=  records\.jsonl)", digest, manifest))
    assert run(sha256sum, "-c", "--quiet", "manifest.txt").returncode == 0
    checked = run(openssl, "cms", "-verify", "-binary", "-content", "manifest.txt", "-in", "manifest.p7s",
                  "-inform", "DER", "-CAfile", "certificates/ca.pem", "-certfile", "certificates/gateway.pem",
                  "-purpose", "any", "-out", "/dev/null")
    assert checked.returncode != 0 and "Verification failure" in checked.stderr, checked.stderr
    refused = shep("journal", "verify", "--bundle", str(bundle), cwd=tmp_path)
    assert refused.returncode == 1 and "does not match the signed message digest" in refused.stdout, refused.stdout
    no_traceback(refused)

    # By time: the records started from the fifth one's start on.
    since = records[2]["started_at"]
    by_time = shep("journal", "export", "--state-dir", str(state), "--since", since, "--out", "t.tar", cwd=tmp_path)
    assert by_time.returncode == 0 and "records 5-12 (8)" in by_time.stdout, by_time.stdout + by_time.stderr
    nothing = shep("journal", "export", "--state-dir", str(state), "--from", "99", cwd=tmp_path)
    assert nothing.returncode == 2 and "no record in that range" in nothing.stderr
    no_traceback(nothing)
