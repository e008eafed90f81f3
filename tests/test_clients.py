"""The recipes of docs/clients.md, run as they are (docs/clients/) against a `shep serve` of the shipped configuration.

Each recipe is a program that takes the gateway's base URL and prints what it got; the test runs it as a subprocess,
bounded in time, and holds its output and the gateway's journal to what the doc says: the demo echo answered, the
message accepted without a tolerated deviation (the stack wrote what the contract says), signed where it signs.
A stack that is not installed skips with its Debian package named (tests/system-packages).
"""
from __future__ import annotations

import io
import json
import re
import runpy
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import zeep

from tests.conftest import ROOT
from tests.serve_process import shep, shipped_server, subprocess_env
from tests.system_tools import require

RECIPES = ROOT / "docs" / "clients"
RUN_TIMEOUT = 120
INSTALL_TIMEOUT = 300
NODE_SOAP = "soap@1.6.0"  # the version docs/clients.md names
CONSUMER_BIN = "230540004989"  # participants.demo-consumer.bin in the shipped configuration
P12_PASSWORD = "secret"
SYNC_ANSWER = re.compile(r"^SCSS001 (\{[0-9a-f-]{36}\}) (.+)$", re.MULTILINE)
SENT = re.compile(r"^sent ([0-9a-f-]{36}) ([0-9a-f-]{36})$", re.MULTILINE)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """(work folder, base URL) of a `shep serve` with the shipped demo participants."""
    work = tmp_path_factory.mktemp("clients")
    with shipped_server(work) as base:
        yield work, base


@pytest.fixture(scope="module")
def consumer(gateway) -> Path:
    """A folder with key.pem and cert.pem: demo-consumer's organisation SIGN certificate from the test PKI."""
    work, _ = gateway
    issued = shep("pki", "issue", "--state-dir", str(work / "var"), "--kind", "organization", "--alg", "rsa",
                  "--usage", "sign", "--bin", CONSUMER_BIN, "--out", str(work / "consumer"), "--p12-password",
                  P12_PASSWORD, cwd=work)
    assert issued.returncode == 0, issued.stderr
    return work / "consumer"


def run(*command: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT) -> str:
    """The command's stdout; the test fails with its output when it exits non-zero or overruns."""
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, encoding="utf-8", timeout=timeout,
                              env={**subprocess_env(), **(env or {})})
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{command[0]} did not finish within {timeout} s; stdout={exc.stdout!r} stderr={exc.stderr!r}")
    assert done.returncode == 0, f"{command} exited {done.returncode}: {done.stdout[-3000:]} {done.stderr[-3000:]}"
    return done.stdout


def journal(base: str, **query: str) -> list[dict]:
    url = f"{base}/api/journal?{urllib.parse.urlencode({**query, 'limit': '100'})}"
    with urllib.request.urlopen(url, timeout=15) as response:
        return json.load(response)["records"]


def accepted_as_sent(base: str, session_id: str) -> dict:
    """The request-in record of that exchange: every check passed and nothing had to be tolerated."""
    record, = [r for r in journal(base, sessionId=session_id) if r["hop"] == "request-in"]
    assert record["fault_code"] is None, record
    assert record["deviations"] == [], record["deviations"]
    assert all(v["verdict"] == "pass" for v in record["verdicts"]), record["verdicts"]
    return record


def signer(record: dict) -> str:
    return next(v["detail"] for v in record["verdicts"] if v["check"] == "verify_transport_signature")


def echoed(base: str, output: str, text: str) -> str:
    """The sync line `SCSS001 <sessionId> <text>`; returns the sessionId."""
    found = SYNC_ANSWER.search(output)
    assert found and found.group(2) == text, output
    accepted_as_sent(base, found.group(1))
    return found.group(1)


def queued(base: str, output: str, text: str) -> None:
    """`sent <messageId> <correlationId>` then demo-clinic's `pulled <messageId> REQUEST …<text>…`."""
    found = SENT.search(output)
    assert found, output
    message_id = found.group(1)
    assert re.search(rf"^pulled {message_id} REQUEST .*{re.escape(text)}", output, re.MULTILINE), output
    record, = [r for r in journal(base, serviceId="DEMO_EchoAsync")
               if r["hop"] == "request-in" and r["message_id"] == message_id and r["from_party"] == "demo-consumer"]
    assert record["deviations"] == [] and record["fault_code"] is None, record


def test_zeep_inline_element_sync_and_async(gateway):
    work, base = gateway
    echoed(base, run(sys.executable, str(RECIPES / "zeep_send.py"), base, cwd=RECIPES), "сәлем from zeep")
    output = run(sys.executable, str(RECIPES / "zeep_async.py"), base, cwd=RECIPES)
    queued(base, output, "кезек from zeep")
    assert re.search(r"^acknowledged ", output, re.MULTILINE), output


def test_zeep_signs_with_a_test_pki_certificate_and_checks_the_gateways_answer(gateway, consumer):
    work, base = gateway
    output = run(sys.executable, str(RECIPES / "zeep_send.py"), base, "--sign", str(consumer / "key.pem"),
                 str(consumer / "cert.pem"), cwd=RECIPES)
    session = echoed(base, output, "сәлем from zeep")
    record, = [r for r in journal(base, sessionId=session) if r["hop"] == "request-in"]
    assert signer(record).startswith(f"signed by OU=BIN{CONSUMER_BIN},"), signer(record)
    # The recipe's verify() raised no error: the answer carried the gateway's signature (zeep checks each answer).
    response_out, = [r for r in journal(base, sessionId=session) if r["hop"] == "response-out"]
    assert response_out["fault_code"] is None


def test_zeep_recipe_refuses_an_answer_the_gateway_did_not_sign(gateway, consumer, monkeypatch):
    """The recipe run in this process, `/api/certificate` answered with another certificate: the answer's check
    is real, the gateway's signature does not verify with it."""
    work, base = gateway
    opened = urllib.request.urlopen

    def another_certificate(url, timeout=None):
        if str(url).endswith("/api/certificate"):
            return io.BytesIO((consumer / "cert.pem").read_bytes())
        return opened(url, timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", another_certificate)
    monkeypatch.setattr(sys, "argv", ["zeep_send.py", base, "--sign", str(consumer / "key.pem"),
                                      str(consumer / "cert.pem")])
    with pytest.raises(zeep.exceptions.SignatureVerificationFailed):
        runpy.run_path(str(RECIPES / "zeep_send.py"), run_name="__main__")


def test_suds_sync_and_async_with_the_wrapper_plugin(gateway):
    work, base = gateway
    output = run(sys.executable, str(RECIPES / "suds_send.py"), base, cwd=RECIPES)
    echoed(base, output, "сәлем from suds")
    queued(base, output, "кезек from suds")


def test_node_soap_sync_and_async(gateway, tmp_path):
    work, base = gateway
    node, npm = require("node"), require("npm")
    run(npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(tmp_path), NODE_SOAP,
        cwd=tmp_path, timeout=INSTALL_TIMEOUT)
    output = run(node, str(RECIPES / "node" / "send.js"), base, cwd=tmp_path,
                 env={"NODE_PATH": str(tmp_path / "node_modules")})
    echoed(base, output, "сәлем from node")
    queued(base, output, "кезек from node")


JAXWS_RUNTIME = "/usr/share/java/jaxws-rt.jar"  # the jaxws package's runtime, its dependencies on its Class-Path
WSS4J = ["/usr/share/java/wss4j.jar", "/usr/share/java/xmlsec.jar", "/usr/share/java/commons-logging.jar",
         "/usr/share/java/slf4j-api.jar"]


def jaxws_recipe(base: str, folder: Path, *sources: str) -> Path:
    """wsimport of the SyncChannel's WSDL, then javac of it with the recipe's sources; the classes' folder."""
    wsimport, javac = require("wsimport"), require("javac")
    generated, classes = folder / "gen", folder / "out"
    generated.mkdir()  # wsimport writes into folders that exist
    run(wsimport, "-Xnocompile", "-quiet", "-s", str(generated), "-d", str(generated), "-p", "kz.shep.sync",
        f"{base}/bip-sync/?wsdl", cwd=folder)
    run(javac, "-encoding", "UTF-8", "-cp", ":".join([JAXWS_RUNTIME, *WSS4J]), "-d", str(classes),
        *map(str, sorted((generated / "kz" / "shep" / "sync").glob("*.java"))),
        *(str(RECIPES / source) for source in sources), cwd=folder)
    return classes


def test_jaxws_wsimport_sync(gateway, tmp_path):
    work, base = gateway
    classes = jaxws_recipe(base, tmp_path, "SendEcho.java")
    output = run(require("java"), "-cp", f"{JAXWS_RUNTIME}:{classes}", "SendEcho", base, cwd=tmp_path)
    echoed(base, output, "сәлем from JAX-WS")


def test_jaxws_signed_with_wss4j(gateway, consumer, tmp_path):
    work, base = gateway
    require("wss4j")
    classes = jaxws_recipe(base, tmp_path, "SendEcho.java", "Wss4jSigner.java")
    output = run(require("java"), "-cp", ":".join([JAXWS_RUNTIME, *WSS4J, str(classes)]), "SendEcho", base,
                 "--sign", str(consumer / "cert.p12"), P12_PASSWORD, cwd=tmp_path)
    session = echoed(base, output, "сәлем from JAX-WS")
    record, = [r for r in journal(base, sessionId=session) if r["hop"] == "request-in"]
    assert signer(record).startswith(f"signed by OU=BIN{CONSUMER_BIN},"), signer(record)


def test_curl_inline_and_escaped(gateway):
    work, base = gateway
    require("curl")
    output = run("sh", str(RECIPES / "curl.sh"), base, cwd=work)
    sessions = re.findall(r"<sessionId>(\{[0-9a-f-]{36}\})</sessionId>", output)
    assert len(sessions) == 2 and output.count("<code>SCSS001</code>") == 2, output
    assert "<text>inline from curl</text>" in output and "<text>escaped from curl</text>" in output, output
    for session in sessions:
        accepted_as_sent(base, session)


def test_the_pages_excerpts_are_in_the_recipes():
    """Each code block of docs/clients.md that opens with a comment naming a recipe is a verbatim part of it."""
    page = (ROOT / "docs" / "clients.md").read_text("utf-8")
    blocks = re.findall(r"```\w*\n(?:#|//) ([\w/]+\.\w+)\n(.*?)```", page, re.DOTALL)
    assert len(blocks) >= 5, blocks
    for name, excerpt in blocks:
        assert excerpt in (RECIPES / name).read_text("utf-8"), f"docs/clients.md shows lines {name} does not have"
