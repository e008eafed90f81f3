"""`shep conformance client` scoring the project's own clients: `shep send` for the SyncChannel scenarios (each
data style, signed, the retry after SHEP-203), `AsyncGatewayClient` pulling and acknowledging, a Node `soap`
client; and the same clients driven wrongly on purpose, each failing the run on exactly its case, with the
evidence.

The command runs as a subprocess (a reactor of its own); it prints where to send and the credentials, then
waits for the scenarios. A client of another stack is a program given what it printed, as the Node `soap`
one (docs/clients/node/conformance.js) is."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import etree

from gateway import client, contract
from gateway.asyncclient import AsyncGatewayClient
from tests.serve_process import shep
from tests.system_tools import require
from tests.test_clients import INSTALL_TIMEOUT, NODE_SOAP, RECIPES, run
from tests.test_conformance import failed, junit_verdicts
from tests.web_client import parse_strict

RUN_TIMEOUT = 120
ECHO = '<e:EchoRequest xmlns:e="urn:shep-emulator:demo:echo"><text>conformance</text></e:EchoRequest>'


class Bench:
    """A running `shep conformance client`: what it printed (sync-url, password, …) and its end."""

    def __init__(self, work: Path, *extra: str, timeout: float = 60):
        self.work = work
        self.junit, self.page = work / "client.xml", work / "client.html"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "conformance", "client", "--timeout", str(timeout),
             "--junit", str(self.junit), "--html", str(self.page), *extra],
            cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.told: dict[str, str] = {}
        benches.append(self)
        for line in self.process.stdout:
            if line.startswith("waiting up to"):
                break
            key, _, value = line.partition(": ")
            self.told[key] = value.strip()
        assert "password" in self.told, self.process.stderr.read()

    def finish(self) -> tuple[int, str, dict]:
        """Its exit, output and the JUnit report's verdict per case."""
        out, err = self.process.communicate(timeout=RUN_TIMEOUT)
        assert self.process.returncode in (0, 1), out + err
        parse_strict(self.page.read_bytes())  # the HTML report is a valid page too
        return self.process.returncode, out, junit_verdicts(self.junit)

    def send(self, case: str, *extra: str) -> subprocess.CompletedProcess:
        """`shep send` of the echo request, tagged with its scenario."""
        data = self.work / "echo.xml"
        data.write_text(ECHO, "utf-8")
        return shep("send", "--url", self.told["sync-url"], "--service", self.told["serviceId"],
                    "--sender", self.told["senderId"], "--password", self.told["password"], "--data", str(data),
                    "--property", f"conformanceCase={case}", *extra, cwd=self.work)


benches: list[Bench] = []


@pytest.fixture
def bench(tmp_path):
    """`bench(*extra, timeout=…)` starts one; one a failed test leaves running is stopped at its end."""
    yield lambda *extra, **options: Bench(tmp_path, *extra, **options)
    while benches:
        process = benches.pop().process
        if process.poll() is None:
            process.kill()
            process.communicate()


def drive(bench: Bench, *, retry_same_id: bool = False, acknowledge_twice: bool = False,
          acknowledge: bool = True, stale_request: bool = False, sign: bool = False) -> None:
    """The scenarios, as an integrator's script around `shep send` and AsyncGatewayClient would run them."""
    if sign:  # every SendMessage signed with the certificate the bench printed
        send = bench.send
        bench.send = lambda case, *extra: send(case, "--cert", bench.told["cert"], "--key", bench.told["key"], *extra)
    if stale_request:  # one more request, from a client whose clock is an hour behind
        body = client.build_send_message(
            service_id=bench.told["serviceId"], sender_id=bench.told["senderId"], password=bench.told["password"],
            payload=contract.PARSER.parse(ECHO.encode()).getroot(),
            message_date=(datetime.now(timezone.utc) - timedelta(hours=1)).isoformat())
        assert client.post(bench.told["sync-url"], body, 30)[0] == 500
    assert bench.send("request-inline").returncode == 0
    assert bench.send("request-typed", "--style", "typed", "--xsi-type",
                      "{urn:shep-emulator:demo:echo}Echo").returncode == 0
    assert bench.send("request-escaped", "--style", "escaped").returncode == 0
    signed = bench.send("request-signed", "--cert", bench.told["cert"], "--key", bench.told["key"])
    assert signed.returncode == 0, signed.stdout + signed.stderr
    # `shep send` is one attempt: the retry discipline is the caller's, here this script's.
    first = bench.send("retry-after-provider-fault", *(["--message-id", "retry-1"] if retry_same_id else []))
    assert first.returncode == 1 and "SHEP-203" in first.stdout, first.stdout
    if not retry_same_id:
        time.sleep(1.2)  # the client's back-off before it sends again; not an assertion on timing
    bench.send("retry-after-provider-fault", *(["--message-id", "retry-1"] if retry_same_id else []))
    recipient = AsyncGatewayClient(bench.told["async-url"], bench.told["senderId"], bench.told["password"])
    messages = recipient.pull(bench.told["async-serviceId"].split()[0])
    assert len(messages) == 2
    for message in messages if acknowledge else []:
        recipient.acknowledge(message)
    if acknowledge_twice:
        try:
            recipient.acknowledge(messages[0])
        except Exception:  # SHEP-214: the gateway refuses it; the case judges that it was sent at all
            pass


def test_the_projects_own_clients_conform(bench):
    bench = bench()
    drive(bench)
    code, out, verdicts = bench.finish()
    assert code == 0, out
    assert failed(verdicts) == set(), out
    assert set(verdicts) == {"request-inline", "request-typed", "request-escaped", "request-signed",
                             "retry-after-provider-fault", "message-date", "async-pull", "async-acknowledge-once"}
    assert all(v == "pass" for v in verdicts.values()), out
    assert "CONFORMS" in out


def test_a_client_of_a_service_that_requires_signatures_conforms_when_it_signs(bench, tmp_path):
    config = tmp_path / "signed.toml"
    shep("config", "init", str(config), cwd=tmp_path)
    config.write_text(config.read_text("utf-8").replace(
        "[services.DEMO_Echo]", "[services.DEMO_Echo]\nrequire_transport_signature = true"), "utf-8")
    bench = bench("--config", str(config))
    unsigned = bench.send("not-a-case")  # a case is judged on its first request: this one is no case's
    assert unsigned.returncode == 1 and "SHEP-180" in unsigned.stdout  # the service's requirement holds
    drive(bench, sign=True)  # the bench's provider signs its answers, as the service wants
    code, out, verdicts = bench.finish()
    assert code == 0 and failed(verdicts) == set(), out


def test_a_node_soap_client_conforms(bench, tmp_path):
    """docs/clients/node/conformance.js: the scenarios it sends (it neither types nor signs) pass."""
    node, npm = require("node"), require("npm")
    run(npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(tmp_path), NODE_SOAP,
        cwd=tmp_path, timeout=INSTALL_TIMEOUT)
    sent = ["request-inline", "request-escaped", "retry-after-provider-fault", "message-date", "async-pull",
            "async-acknowledge-once"]
    bench = bench(*(f"--only={case}" for case in sent))
    told = bench.told
    run(node, str(RECIPES / "node" / "conformance.js"), told["sync-url"], told["async-url"], told["senderId"],
        told["password"], told["serviceId"], told["async-serviceId"].split()[0], cwd=tmp_path,
        env={"NODE_PATH": str(tmp_path / "node_modules")})
    code, out, verdicts = bench.finish()
    assert code == 0, out
    assert verdicts == dict.fromkeys(sent, "pass"), out


@pytest.mark.parametrize("broken, case, evidence", [
    ({"acknowledge_twice": True}, "async-acknowledge-once", "acknowledged more than once"),
    ({"acknowledge": False}, "async-acknowledge-once", "pulled but never acknowledged"),
    ({"retry_same_id": True}, "retry-after-provider-fault", "under the same messageId"),
    ({"stale_request": True}, "message-date", "in the past"),
], ids=["acknowledges-twice", "never-acknowledges", "resends-at-once-under-the-same-messageId",
        "a-messageDate-an-hour-old"])
def test_a_broken_client_fails_exactly_its_case(bench, broken, case, evidence):
    # A message never acknowledged keeps its case open until the time is up: a shorter run.
    bench = bench(timeout=60 if broken.get("acknowledge", True) else 15)
    drive(bench, **broken)
    code, out, verdicts = bench.finish()
    assert code == 1, out
    assert failed(verdicts) == {case}, out
    assert "DOES NOT CONFORM" in out
    failure = etree.parse(str(bench.junit)).find(f".//testcase[@name='{case}']/failure")
    assert failure.get("type") == "required"
    assert evidence in failure.get("message")
    assert "sent by the client" in failure.text  # the bytes it sent, with the gateway's checks of them


def test_a_client_that_sends_nothing_fails_when_the_time_is_up_and_bad_input_gets_one_line(tmp_path):
    work = tmp_path
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "conformance", "client", "--timeout", "1",
                          "--junit", str(work / "none.xml")],
                         capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=work)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "no request with the property conformanceCase=request-inline arrived in time" in run.stdout
    unknown = shep("conformance", "client", "--service", "NOPE", cwd=work)
    assert unknown.returncode == 2 and "no service 'NOPE'" in unknown.stderr and "Traceback" not in unknown.stderr
    pushed = shep("conformance", "client", "--service", "PHC_ATTACHMENT", cwd=work)
    assert pushed.returncode == 2 and "on the async channel" in pushed.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = shep("conformance", "client", "--port", str(taken.getsockname()[1]), cwd=work)
    assert busy.returncode == 2 and "cannot listen on 127.0.0.1:" in busy.stderr and "Traceback" not in busy.stderr
    listed = shep("conformance", "list", "client", cwd=work)
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 8
