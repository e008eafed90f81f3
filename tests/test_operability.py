"""What an operator sees, through real `shep` processes: which state dir a command uses, a missing one refused,
start-up failures as one line (exit 2), `shep config init | check`, `--version`, and where the logs go."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from gateway import statedir
from tests.serve_process import ServeProcess, shep

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30
ECHO = '<e:EchoRequest xmlns:e="urn:shep-emulator:demo:echo"><text>where is my state</text></e:EchoRequest>'
CONSUMER = ["--service", "DEMO_Echo", "--sender", "demo-consumer", "--password", "demo-consumer-pass"]


@pytest.fixture
def outside(tmp_path) -> Path:
    """A working folder outside the repository, whose user has a home of their own (and no state yet)."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    assert ROOT not in folder.parents
    return folder


def as_user(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with this home, nothing saying where the state is: the default applies."""
    env = {"HOME": str(home), "XDG_STATE_HOME": "", "SHEP_STATE_DIR": ""}
    env.update(extra)
    return env


def one_line(result: subprocess.CompletedProcess, *, after_state_dir: bool = False) -> str:
    """The one line a failing command says (after the line naming its state dir, for those that find one)."""
    lines = result.stderr.splitlines()
    if after_state_dir:
        assert lines and lines[0].startswith("state dir: "), result.stderr
        lines = lines[1:]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# --- one state dir, found the same way --------------------------------------------------------------------

def test_resolution_order_and_the_default_is_never_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    env = {"HOME": str(tmp_path / "home")}
    default = statedir.resolve(None, environ=env)
    assert default.path == tmp_path / "home" / ".local" / "state" / "shep" and default.source == "the per-user default"
    assert default.path != Path.cwd() / "var" and Path.cwd() not in default.path.parents
    # The XDG spec: a relative XDG_STATE_HOME is ignored, an absolute one used.
    assert statedir.resolve(None, environ={**env, "XDG_STATE_HOME": "rel"}).path == default.path
    assert statedir.resolve(None, environ={**env, "XDG_STATE_HOME": "/x/state"}).path == Path("/x/state/shep")
    configured = statedir.resolve(None, tmp_path / "from-config", tmp_path / "shep.toml", environ=env)
    assert (configured.path, configured.source) == (tmp_path / "from-config", f"config {tmp_path / 'shep.toml'}")
    env["SHEP_STATE_DIR"] = "env-state"  # relative: to the current folder, as the user typed it
    assert statedir.resolve(None, tmp_path / "from-config", environ=env) == statedir.StateDir(
        tmp_path / "work" / "env-state", "SHEP_STATE_DIR")
    assert statedir.resolve("opt", tmp_path / "from-config", environ=env) == statedir.StateDir(
        tmp_path / "work" / "opt", "--state-dir")


@pytest.mark.parametrize("command", [("journal", "verify"), ("journal", "show"), ("queue", "list"),
                                     ("db", "current"), ("pki", "list"), ("pki", "trust", "list")])
def test_read_commands_refuse_a_missing_state_dir(outside, command):
    result = shep(*command, cwd=outside, env=as_user(outside / "home"))
    default = outside / "home" / ".local" / "state" / "shep"
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines()[0] == f"state dir: {default} (from the per-user default)"
    line = one_line(result, after_state_dir=True)
    assert line.startswith(f"shep {' '.join(command)}: state dir {default} does not exist"), line
    assert "SHEP_STATE_DIR" in line
    assert not result.stdout  # no "journal OK: 0 record(s)", no "0 message(s)"
    assert not default.exists() and not (outside / "var").exists()


def test_a_state_dir_without_a_store_is_refused_too(outside):
    (outside / "empty").mkdir()
    result = shep("journal", "show", "--state-dir", "empty", cwd=outside)
    assert result.returncode == 2
    assert "no store in" in one_line(result, after_state_dir=True) and not (outside / "empty" / "shep.db").exists()


def test_shep_state_dir_finds_the_running_servers_state_from_anywhere(tmp_path, outside):
    state = tmp_path / "server-state"
    server = ServeProcess("--port", "0", "--state-dir", str(state), cwd=tmp_path, log=tmp_path / "serve.log")
    try:
        base = server.wait_listening(START_TIMEOUT)
        (outside / "echo.xml").write_text(ECHO, "utf-8")
        for _ in range(2):
            sent = shep("send", "--url", base, *CONSUMER, "--data", "echo.xml", cwd=outside)
            assert sent.returncode == 0, sent.stdout + sent.stderr
        env = as_user(outside / "home", SHEP_STATE_DIR=str(state))
        verify = shep("journal", "verify", cwd=outside, env=env)
        shown = shep("journal", "show", "--service-id", "DEMO_Echo", cwd=outside, env=env)
        issued = shep("pki", "issue", "--kind", "person", "--alg", "rsa", "--usage", "sign", "--out", "me",
                      cwd=outside, env=env)
    finally:
        server.terminate()
        server.close()
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stderr.splitlines()[0] == f"state dir: {state} (from SHEP_STATE_DIR)"
    assert "journal OK: 8 record(s), chain intact" in verify.stdout, verify.stdout
    assert re.search(r"^8 record\(s\)$", shown.stdout, re.M), shown.stdout
    # The server's CA issued it: no second CA appeared anywhere.
    assert issued.returncode == 0, issued.stderr
    from cryptography import x509

    from simulators.pki.ca import TestPKI
    cert = x509.load_pem_x509_certificate((outside / "me" / "cert.pem").read_bytes())
    cert.verify_directly_issued_by(TestPKI(state).issuing_ca("rsa"))
    assert not (outside / "home").exists() and not (outside / "var").exists()


# --- start-up failures: one line, exit 2 -------------------------------------------------------------------

def serve_fails(tmp_path: Path, *args: str) -> str:
    result = shep("serve", "--port", "0", *args, cwd=tmp_path, timeout=START_TIMEOUT)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "listening on" not in result.stderr
    return one_line(result)


def test_serve_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = serve_fails(tmp_path, "--port", str(port), "--state-dir", str(tmp_path / "state"))
    assert line == f"shep serve: cannot listen on 127.0.0.1:{port}: Address already in use", line


def test_serve_state_dir_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "state").write_text("not a folder")
    line = serve_fails(tmp_path, "--state-dir", str(tmp_path / "state"))
    assert line == f"shep serve: state dir {tmp_path / 'state'} (from --state-dir) is not a directory"
    line = serve_fails(tmp_path, "--state-dir", str(tmp_path / "state" / "below"))
    assert line.startswith(f"shep serve: cannot create the state dir {tmp_path / 'state' / 'below'}"), line


def test_serve_state_dir_whose_database_cannot_be_opened_is_one_line(tmp_path):
    (tmp_path / "state" / "shep.db").mkdir(parents=True)  # what SQLite cannot open, even for root
    line = serve_fails(tmp_path, "--state-dir", str(tmp_path / "state"))
    assert line.startswith("shep serve: ") and "shep.db" in line, line


@pytest.mark.skipif(os.geteuid() == 0, reason="needs a user other than root (root writes into a read-only folder)")
def test_serve_read_only_state_dir_is_one_line(tmp_path):
    (tmp_path / "state").mkdir(mode=0o500)
    line = serve_fails(tmp_path, "--state-dir", str(tmp_path / "state"))
    assert line == f"shep serve: state dir {tmp_path / 'state'} (from --state-dir) is not writable by this user"


def test_serve_unreachable_database_is_one_line(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    line = serve_fails(tmp_path, "--state-dir", str(tmp_path / "state"), "--store",
                       f"postgresql://shep:secret@127.0.0.1:{port}/shep")
    assert line.startswith(f"shep serve: cannot use the store postgresql+psycopg://shep:***@127.0.0.1:{port}/shep: ")
    assert "secret" not in line


def test_serve_broken_pki_is_one_line(tmp_path):
    (tmp_path / "state" / "pki").mkdir(parents=True)
    (tmp_path / "state" / "pki" / "config.json").write_text("{not json")
    line = serve_fails(tmp_path, "--state-dir", str(tmp_path / "state"))
    assert line.startswith(f"shep serve: the test PKI in {tmp_path / 'state' / 'pki'} cannot be used "
                           "(JSONDecodeError: "), line


# --- shep config init | check ------------------------------------------------------------------------------

def test_config_init_works_where_it_is_written(tmp_path, outside):
    """Written into one folder, served from another: the schemas are found (`package:`), the state dir too."""
    written = shep("config", "init", str(tmp_path / "conf" / "shep.toml"), cwd=outside)
    assert written.returncode == 0, written.stderr
    config = tmp_path / "conf" / "shep.toml"
    text = config.read_text("utf-8")
    assert "# async_max_attempts = 10" in text and "[services.PHC_ATTACHMENT]" in text
    again = shep("config", "init", str(config), cwd=outside)
    assert again.returncode == 2 and "exists; --force replaces it" in again.stderr
    # The state dir relative to the config file, not to the folder shep runs in.
    config.write_text(text.replace('# state_dir = "/var/lib/shep"', 'state_dir = "state"'), "utf-8")
    checked = shep("config", "check", str(config), cwd=outside)
    assert checked.returncode == 0 and checked.stdout == "", checked.stdout + checked.stderr
    assert "OK (7 participant(s), 4 service(s))" in checked.stderr

    log = tmp_path / "gateway.log"
    server = ServeProcess("--config", str(config), "--port", "0", "--log-file", str(log), cwd=outside,
                          log=tmp_path / "stdout.log", env=as_user(outside / "home"))
    try:
        base = server.wait_listening(START_TIMEOUT)
        (outside / "echo.xml").write_text(ECHO, "utf-8")
        sent = shep("send", "--url", base, *CONSUMER, "--data", "echo.xml", cwd=outside)
        refused = shep("send", "--url", base, *CONSUMER[:-1], "wrong", "--data", "echo.xml", cwd=outside)
        server.output()  # the rest of the banner, after its listening line
    finally:
        server.terminate()
        server.close()
    assert sent.returncode == 0 and "where is my state" in sent.stdout, sent.stdout + sent.stderr
    assert refused.returncode == 1 and "SHEP-141" in refused.stdout
    banner = "".join(server.said)
    assert re.search(rf"^  state dir +{re.escape(str(tmp_path / 'conf' / 'state'))} \(from config ", banner, re.M)
    assert banner.index("listening on") < banner.index("/bip-sync/") < banner.index("  state dir")
    assert (tmp_path / "conf" / "state" / "shep.db").is_file()
    # The logs: JSON lines in the file, nothing on stdout; the refusal a warning with its code.
    assert (tmp_path / "stdout.log").read_text() == ""
    lines = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
    faults = [line for line in lines if line.get("fault_code") == "SHEP-141"]
    assert faults and all(line["level"] == "warning" and "SHEP-141" in line["message"] for line in faults), faults
    assert not any(line.get("fault_code") for line in lines if line["level"] == "info")


def test_config_check_names_every_problem_by_file_line_and_key(tmp_path):
    text = (ROOT / "gateway" / "defaults" / "shep.toml").read_text("utf-8")
    text = text.replace("max_depth = 128", "max_depth = 0").replace(
        "timeout_seconds = 10", "timeout_seconds = -1\nbogus = 1").replace(
        'payload_schema = "package:xsd/services/gbdfl/gbdfl.xsd"', 'payload_schema = "no-such.xsd"')
    (tmp_path / "bad.toml").write_text(text, "utf-8")
    lines = text.splitlines()

    schema = 'payload_schema = "no-such.xsd"'

    def line_of(written: str) -> int:
        return lines.index(written) + 1

    result = shep("config", "check", "bad.toml", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"bad.toml:{line_of('max_depth = 0')}: gateway.max_depth: must be a positive integer",
        f"bad.toml:{line_of('bogus = 1')}: services.DEMO_Echo.bogus: unknown key; expected one of: provider, "
        "channel, payload_schema, timeout_seconds, allowed_senders, routes, strict, description, "
        "require_transport_signature, require_payload_signature",
        f"bad.toml:{line_of('timeout_seconds = -1')}: services.DEMO_Echo.timeout_seconds: must be a positive number",
        f"bad.toml:{line_of(schema)}: services.GBDFL_UniversalServiceSync.payload_schema: "
        f"file not found: {tmp_path / 'no-such.xsd'}",
    ], result.stdout
    assert "4 problem(s) in bad.toml" in result.stderr

    (tmp_path / "party.toml").write_text("[gbdfl]\nsize = -1\n", "utf-8")
    party = shep("config", "check", "party.toml", cwd=tmp_path)
    assert party.returncode == 1
    assert party.stdout == f"{tmp_path / 'party.toml'}:2: gbdfl.size: must be a non-negative integer\n"
    (tmp_path / "syntax.toml").write_text("[gateway]\nport = \n", "utf-8")
    syntax = shep("config", "check", "syntax.toml", cwd=tmp_path)
    assert syntax.returncode == 1 and syntax.stdout.startswith("syntax.toml:2: invalid TOML: "), syntax.stdout


def test_shipped_config_checks_clean(tmp_path):
    result = shep("config", "check", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


# --- --version ------------------------------------------------------------------------------------------

def test_version_is_the_package_metadata(tmp_path):
    result = shep("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"shep-emulator {version('shep-emulator')}"


def test_text_log_lines_carry_the_message_fields():
    import logging

    from gateway.logs import TextFormatter

    record = logging.LogRecord("shep.sync", logging.WARNING, __file__, 1, "SendMessage answered with fault %s",
                               ("SHEP-141",), None)
    record.fault_code, record.session_id = "SHEP-141", "{s}"
    line = TextFormatter().format(record)
    assert re.fullmatch(r"\S+ WARNING shep\.sync: SendMessage answered with fault SHEP-141 session_id=\{s\} "
                        r"fault_code=SHEP-141", line), line
