"""`shep conformance provider` against the project's own providers (they pass) and against providers broken
on purpose, each failing the run on exactly the case that holds it to the broken clause, with its evidence.

The command runs as a subprocess (it runs a reactor of its own); the broken providers are resources on this
test's reactor, in front of the real ones of a `shep serve`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import junitparser
import pytest
import pytest_twisted
import treq
from cryptography import x509
from lxml import etree
from twisted.internet import defer, reactor, threads
from twisted.web import resource, server

from gateway import contract as c
from gateway.asyncclient import PushReceiver
from gateway.soap import drop_transport_signature, serialize
from simulators import echo
from simulators.pki.ca import TestPKI
from tests.serve_process import shep, shipped_server
from tests.web_client import parse_strict

RUN_TIMEOUT = 180
AJO_BIN = "120440295770"  # the shipped АЖО participant's
ATTACHMENT_NS = "urn:shep-emulator:phc-attachment:v1"


@pytest.fixture(scope="module")
def stand(tmp_path_factory):
    """A `shep serve` with the shipped configuration: the demo echo and the ЖТ ММБ simulator behind it."""
    work = tmp_path_factory.mktemp("conformance")
    with shipped_server(work) as base:
        yield work, base


def conformance(work: Path, url: str, service: str, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    """A whole run; its exit, output and the JUnit report's verdict per case ({case: "pass"|"fail"|"n/a"})."""
    junit, page = work / f"{service}.xml", work / f"{service}.html"
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "conformance", "provider", "--url", url,
                          "--service", service, "--state-dir", str(work / "var"), "--junit", str(junit),
                          "--html", str(page), *extra], capture_output=True, text=True, timeout=RUN_TIMEOUT,
                         cwd=work)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    parse_strict(page.read_bytes())  # the HTML report is a valid page too
    return run, junit_verdicts(junit)


def junit_verdicts(junit: Path) -> dict:
    """The JUnit report's verdict per case: {case: "pass"|"fail"|"n/a"}."""
    verdicts = {}
    for suite in junitparser.JUnitXml.fromfile(str(junit)):
        for case in suite:
            outcome = case.result[0] if case.result else None
            verdicts[case.name] = ("fail" if isinstance(outcome, junitparser.Failure)
                                   else "n/a" if isinstance(outcome, junitparser.Skipped) else "pass")
    return verdicts


def failed(verdicts: dict) -> set[str]:
    return {case for case, verdict in verdicts.items() if verdict == "fail"}


def test_the_demo_echo_conforms(stand):
    work, base = stand
    run, verdicts = conformance(work, f"{base}/demo/echo", "DEMO_Echo")
    assert run.returncode == 0, run.stdout
    assert failed(verdicts) == set(), run.stdout
    assert {case for case, v in verdicts.items() if v == "pass"} >= {
        "wsdl", "request-inline", "request-typed", "request-escaped", "answer-schema", "answer-payload",
        "fault-shape", "utf8-round-trip", "echoes-session-id"}
    assert "CONFORMS" in run.stdout and "[17/17]" in run.stdout


def test_the_person_registry_conforms_and_refuses_unsigned_and_changed_requests(stand):
    work, base = stand
    run, verdicts = conformance(work, f"{base}/sim/gbdfl", "GBDFL_UniversalServiceSync")
    assert run.returncode == 0, run.stdout
    assert failed(verdicts) == set(), run.stdout
    # It signs its answers, so it is held to the signed profile: both refusals are judged, and pass.
    assert verdicts["refuses-unsigned"] == verdicts["refuses-tampered"] == verdicts["answer-signature"] == "pass"


class Broken(resource.Resource):
    """In front of a real provider: the request passed on unchanged, the answer changed by `spoil`."""

    isLeaf = True

    def __init__(self, upstream: str, spoil):
        super().__init__()
        self.upstream, self.spoil = upstream, spoil

    def render_GET(self, request):
        return echo.EchoProvider().render_GET(request)

    def render_POST(self, request):
        async def relay():
            answer = await treq.post(self.upstream, request.content.read(), persistent=False,
                                     headers={"Content-Type": "text/xml; charset=utf-8"})
            body = await answer.content()
            request.setResponseCode(answer.code)
            request.setHeader(b"Content-Type", b"text/xml; charset=utf-8")
            request.write(self.spoil(body) if answer.code == 200 else body)
            request.finish()

        defer.ensureDeferred(relay())
        return server.NOT_DONE_YET


def _edit(body: bytes, change) -> bytes:
    tree = c.PARSER.parse(body)
    change(tree.getroot())
    return serialize(tree)


def other_session(root):
    root.find(".//{*}responseInfo/sessionId").text = "{00000000-0000-4000-8000-000000000000}"


def payload_namespace(root):
    root.find(".//{*}responseData/data/{urn:shep-emulator:demo:echo}EchoResponse").tag = "{urn:wrong}EchoResponse"


@pytest.mark.parametrize("spoil, upstream, service, case", [
    (other_session, "/demo/echo", "DEMO_Echo", "echoes-session-id"),
    (payload_namespace, "/demo/echo", "DEMO_Echo", "answer-payload"),
    (lambda root: drop_transport_signature(root.getroottree()), "/sim/gbdfl", "GBDFL_UniversalServiceSync",
     "answer-signature"),
], ids=["another-sessionId", "payload-in-a-wrong-namespace", "unsigned-answer"])
@pytest_twisted.ensureDeferred
async def test_a_broken_provider_fails_on_exactly_the_case_it_breaks(stand, spoil, upstream, service, case):
    work, base = stand
    extra = []
    if service == "GBDFL_UniversalServiceSync":
        # The registry signs by choice; a service that requires signatures makes an unsigned answer a failure.
        config = work / "signed.toml"
        shep("config", "init", str(config), cwd=work)
        text = config.read_text("utf-8").replace(
            "[services.GBDFL_UniversalServiceSync]", "[services.GBDFL_UniversalServiceSync]\n"
                                                     "require_transport_signature = true")
        config.write_text(text, "utf-8")
        extra = ["--config", str(config)]
    port = reactor.listenTCP(0, server.Site(Broken(base + upstream, lambda body: _edit(body, spoil))),
                             interface="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port.getHost().port}/broken"
        run, verdicts = await threads.deferToThread(conformance, work, url, service, *extra)
    finally:
        await port.stopListening()
    assert run.returncode == 1, run.stdout
    assert failed(verdicts) == {case}, run.stdout
    assert "DOES NOT CONFORM" in run.stdout
    report = etree.parse(str(work / f"{service}.xml"))
    failure = report.find(f".//testcase[@name='{case}']/failure")
    assert failure.get("type") == "required"
    assert "the provider's answer" in failure.text  # the evidence: the bytes it answered


def test_the_catalogue_lists_and_bad_input_gets_one_line(stand, tmp_path):
    work, base = stand
    listed = shep("conformance", "list", cwd=work)
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 17
    assert "fault-shape" in listed.stdout and "optional" in listed.stdout
    unknown = shep("conformance", "provider", "--url", f"{base}/demo/echo", "--service", "NOPE",
                   "--state-dir", str(work / "var"), cwd=work)
    assert unknown.returncode == 2 and "no service 'NOPE'" in unknown.stderr and "Traceback" not in unknown.stderr
    (tmp_path / "mine.toml").write_text('id = "other"\ntitle = "t"\nclause = "c"\nprobe = "nothing"\n', "utf-8")
    bad = shep("conformance", "list", "--cases", str(tmp_path), cwd=work)
    assert bad.returncode == 2 and "mine.toml: id 'other' must be the file's name" in bad.stderr
    no_sample = shep("conformance", "provider", "--url", f"{base}/demo/echo", "--service", "DEMO_EchoAsync",
                     "--state-dir", str(work / "var"), cwd=work)
    assert no_sample.returncode == 2 and "no shipped sample request for DEMO_EchoAsync" in no_sample.stderr


@pytest_twisted.ensureDeferred
async def test_a_push_receiver_conforms(stand):
    """An AsyncChannel service: the bench sends, its gateway pushes to the receiver under test (the project's
    own IAsyncChannelClient, `PushReceiver`, taking only the gateway's signed pushes and signing its answers
    with the АЖО's certificate), and the push's answer is judged."""
    work, base = stand
    pki = TestPKI(work / "var")
    gateway_cert = x509.load_pem_x509_certificate(pki.gateway_credentials("rsa")[1].read_bytes())
    received = []

    def take(message):
        if message.data is None or not any(child.tag == f"{{{ATTACHMENT_NS}}}AttachmentRequest"
                                           for child in message.data):
            raise ValueError("not an AttachmentRequest")  # a receiver that reads what it is given
        received.append(message.message_id)

    receiver = PushReceiver(take, gateway_certificate=gateway_cert,
                            sign=pki.credentials(work / "receiver", "organization", bin=AJO_BIN))
    port = reactor.listenTCP(0, server.Site(receiver), interface="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port.getHost().port}/push"
        run, verdicts = await threads.deferToThread(conformance, work, url, "PHC_ATTACHMENT")
    finally:
        await port.stopListening()
    assert run.returncode == 0, run.stdout
    assert failed(verdicts) == set(), run.stdout
    assert {"request-typed", "echoes-session-id"}.isdisjoint(verdicts)  # SendMessage's cases only
    assert verdicts["request-inline"] == verdicts["answer-signature"] == verdicts["refuses-unsigned"] == \
        verdicts["fault-shape"] == "pass"
    assert received, "the receiver was pushed the bench's request"
