"""What a case does and how it judges. A probe is `async probe(run, **params) -> Outcome`; the case file names
it and gives its parameters. Through the bench's gateway, the gateway's own verdicts are the judgement;
straight to the provider (what a faulty or hostile gateway could send), the gateway's answer checks judge
the reply (`Bench.judge`)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Awaitable, Callable
from urllib.parse import urljoin

from lxml import etree
from twisted.internet import threads

from gateway import client
from gateway import contract as c
from gateway.checks.signature import has_security_header
from gateway.conformance.bench import CONTRACT_CHECKS, Bench, Exchange, Judged
from gateway.conformance.samples import Sample
from gateway.soap import drop_transport_signature, serialize

PASS, FAIL, NA = "pass", "fail", "n/a"
# Kazakh letters outside Russian, Russian, and characters XML must escape: all come back unchanged.
ROUND_TRIP_TEXT = "Сәлеметсіз бе, ғұмыр, үміт, һә, ң, ө, қ — Здравствуйте, ёж «ъ» & <x>"


@dataclass
class Evidence:
    label: str
    data: bytes | str


@dataclass
class Outcome:
    verdict: str
    reason: str
    evidence: list[Evidence] = field(default_factory=list)


class Run:
    """What the cases of one run share: the bench, the sample, and the exchanges already made (the answer-check
    cases read the verdicts of the one valid inline exchange instead of sending again)."""

    def __init__(self, bench: Bench, sample: Sample):
        self.bench = bench
        self.sample = sample
        self._exchanges: dict[str, Exchange] = {}

    async def exchange(self, style: str = "inline") -> Exchange:
        if style not in self._exchanges:
            self._exchanges[style] = await self.send(style=style)
        return self._exchanges[style]

    async def send(self, text: str | None = None, style: str = "inline") -> Exchange:
        payload = self.sample.payload() if text is None else self.sample.payload(text)
        if self.sample.signed_by:
            payload = self.bench.sign_payload(payload, **self.sample.signed_by)
        return await self.bench.send(payload, style=style,
                                     xsi_type=self.sample.xsi_type if style == "typed" else None)


def exchange_evidence(ex: Exchange) -> list[Evidence]:
    found = [Evidence("sent to the gateway", ex.sent)]
    if ex.forwarded is not None:
        found.append(Evidence("forwarded to the provider", ex.forwarded))
    if ex.answer is not None:
        found.append(Evidence(f"the provider's answer (HTTP {ex.answer.http_status})", ex.answer.body or b""))
        found.append(Evidence("the gateway's checks of the answer", _verdict_lines(ex.answer.verdicts)))
    if ex.raw is not None:
        found.append(Evidence(f"the gateway's answer to the bench (HTTP {ex.status})", ex.raw))
    return found


def judged_evidence(sent: bytes, judged: Judged) -> list[Evidence]:
    return [Evidence("sent straight to the provider", sent),
            Evidence(f"the provider's answer (HTTP {judged.http_status})", judged.body),
            Evidence("the gateway's checks of the answer", _verdict_lines(judged.verdicts))]


def _verdict_lines(verdicts: list[dict]) -> str:
    return "\n".join(f"{v['check']}: {v['verdict']}" + (f" ({v['detail']})" if v.get("detail") else "")
                     + f"  {v.get('ms', 0):.1f} ms" for v in verdicts)


def _failure(ex: Exchange) -> str | None:
    """Why the provider did not accept a request it should have: None when it answered HTTP 200 with a
    SendMessageResponse (a push: sendMessageResponse). The answer's quality (signature, schemas) is for the
    answer-* cases to judge."""
    if ex.error:
        return ex.error
    fault = ex.fault or {}
    if ex.answer is None:
        return f"the gateway refused the request: {fault.get('errorCode')} {fault.get('errorMessage')}"
    verdicts = {v["check"]: v for v in ex.answer.verdicts}
    for check in ("forward_to_provider", "check_provider_status", "parse_provider_answer", "check_provider_envelope"):
        verdict = verdicts.get(check)
        if verdict is None or verdict["verdict"] == "fail":
            return f"{check}: {verdict['detail'] if verdict else 'not reached'}"
    provider_fault = _fault_info(ex.answer.body)
    if provider_fault is not None:
        return f"the provider answered with a SOAP fault: {provider_fault}"
    return None


def _fault_info(body: bytes | None) -> str | None:
    """"code message" of a SOAP fault answer (its ErrorInfo, else faultcode/faultstring); None otherwise."""
    try:
        operation = next(el for el in c.PARSER.parse(body).getroot().find(c.BODY) if isinstance(el.tag, str))
    except (ValueError, TypeError, AttributeError, StopIteration, etree.XMLSyntaxError):
        return None
    if operation.tag != c.FAULT:
        return None
    info = operation.find("detail/*")
    if info is not None and info.findtext("errorCode"):
        return f"{info.findtext('errorCode')} {info.findtext('errorMessage') or ''}".strip()
    return f"{operation.findtext('faultcode')} {operation.findtext('faultstring')}"


# -- the probes ---------------------------------------------------------------------------------------


async def wsdl(run: Run) -> Outcome:
    """The provider's own WSDL at `<url>?wsdl`, each wsdl:import / xsd:import / xsd:include resolving."""
    url = run.bench.url + "?wsdl"
    try:
        document = await threads.deferToThread(client.fetch, url, 10)
    except OSError as exc:
        return Outcome(FAIL, f"GET {url}: {exc}")
    try:
        root = c.PARSER.parse(document).getroot() if document else None
    except (ValueError, etree.XMLSyntaxError) as exc:
        return Outcome(FAIL, f"GET {url} is not XML: {exc}", [Evidence("answer", document)])
    if root is None or root.tag != "{http://schemas.xmlsoap.org/wsdl/}definitions":
        return Outcome(FAIL, f"GET {url} is not a WSDL 1.1 document", [Evidence("answer", document)])
    missing = []
    for ref in root.iter("{*}import", "{*}include"):
        location = ref.get("location") or ref.get("schemaLocation")
        if location:
            try:
                await threads.deferToThread(client.fetch, urljoin(url, location), 10)
            except OSError as exc:
                missing.append(f"{location}: {exc}")
    if missing:
        return Outcome(FAIL, "imports that do not resolve: " + "; ".join(missing), [Evidence("WSDL", document)])
    return Outcome(PASS, "the WSDL and every import it names load", [Evidence("WSDL", document)])


async def exchange(run: Run, style: str = "inline") -> Outcome:
    """A valid request in the `style` data style gets an answer the gateway passes on."""
    ex = await run.exchange(style)
    why = _failure(ex)
    answer = etree.QName(run.bench.shape.answer).localname
    return Outcome(FAIL if why else PASS, why or f"accepted: HTTP 200, a {answer}", exchange_evidence(ex))


async def answer_check(run: Run, check: str) -> Outcome:
    """One of the gateway's answer checks over the answer to the valid inline request."""
    ex = await run.exchange("inline")
    verdicts = ex.answer.verdicts if ex.answer else []
    found = next((v for v in verdicts if v["check"] == check), None)
    if found is None:
        before = next((v for v in verdicts if v["verdict"] == "fail"), None)
        if before is not None:  # that case fails the run; this one cannot be judged
            return Outcome(NA, f"not reached: {before['check']} failed first", exchange_evidence(ex))
        return Outcome(FAIL, _failure(ex) or "the answer was not checked", exchange_evidence(ex))
    detail = f" ({found['detail']})" if found.get("detail") else ""
    return Outcome(FAIL if found["verdict"] == "fail" else PASS, f"{check}: {found['verdict']}{detail}",
                   exchange_evidence(ex))


async def answer_in_time(run: Run) -> Outcome:
    """The answer comes within the service's timeout_seconds (the gateway gives up after it)."""
    ex = await run.exchange("inline")
    forward = next((v for v in (ex.answer.verdicts if ex.answer else []) if v["check"] == "forward_to_provider"), None)
    limit = run.bench.service.timeout_seconds
    if forward is None or forward["verdict"] == "fail":
        return Outcome(FAIL, (forward or {}).get("detail") or _failure(ex) or "no answer", exchange_evidence(ex))
    seconds = forward["ms"] / 1000
    return Outcome(PASS if seconds <= limit else FAIL, f"answered in {seconds:.3f} s (limit {limit:g} s)",
                   exchange_evidence(ex))


async def echoes_session(run: Run) -> Outcome:
    """The answer's responseInfo/sessionId, when present, is the one the gateway put in the forward."""
    ex = await run.exchange("inline")
    if ex.forwarded is None or ex.answer is None or ex.answer.body is None:
        return Outcome(FAIL, _failure(ex) or "no answer", exchange_evidence(ex))
    sent = c.PARSER.parse(ex.forwarded).getroot().findtext(".//{*}requestInfo/sessionId")
    answered = c.PARSER.parse(ex.answer.body).getroot().findtext(".//{*}responseInfo/sessionId")
    if answered is None:
        return Outcome(PASS, "the answer leaves sessionId to the gateway (allowed: 0..1)", exchange_evidence(ex))
    return Outcome(PASS if answered == sent else FAIL, f"sessionId sent {sent}, answered {answered}",
                   exchange_evidence(ex))


async def _signed_profile(run: Run) -> Outcome | None:
    """n/a unless the provider takes part in the signed profile: its service requires transport signatures, or
    it signs its own answers (a provider that signs is expected to verify what it is sent)."""
    service = run.bench.service
    if service.require_transport_signature:
        return None
    ex = await run.exchange("inline")
    if ex.answer is not None and ex.answer.body and has_security_header(c.PARSER.parse(ex.answer.body)):
        return None
    return Outcome(NA, f"{service.id} does not require transport signatures "
                       f"(services.{service.id}.require_transport_signature) and its provider does not sign")


async def _refused(run: Run, body: bytes, what: str) -> Outcome:
    status, answer = await run.bench.post_direct(body)
    judged = run.bench.judge(status, answer)
    evidence = judged_evidence(body, judged)
    if judged.fault is None and not judged.is_fault:
        return Outcome(FAIL, f"the provider answered {what} as if it were valid", evidence)
    return Outcome(PASS, f"refused (HTTP {status}" + (", a contract SOAP fault)" if judged.is_fault else ")"),
                   evidence)


async def _signed_forward(run: Run) -> tuple[etree._ElementTree | None, Outcome | None]:
    """The valid inline exchange's forward, parsed, for a case of the signed profile; or that case's outcome
    already (not applicable, or nothing was forwarded)."""
    if (na := await _signed_profile(run)) is not None:
        return None, na
    ex = await run.exchange("inline")
    if ex.forwarded is None:
        return None, Outcome(FAIL, _failure(ex) or "nothing was forwarded", exchange_evidence(ex))
    return c.PARSER.parse(ex.forwarded), None


async def refuses_unsigned(run: Run) -> Outcome:
    """A forward without the gateway's WS-Security signature is refused."""
    tree, decided = await _signed_forward(run)
    if decided is not None:
        return decided
    drop_transport_signature(tree)
    return await _refused(run, serialize(tree), "an unsigned request")


async def refuses_tampered(run: Run) -> Outcome:
    """A forward changed after the gateway signed it (its messageId) is refused."""
    tree, decided = await _signed_forward(run)
    if decided is not None:
        return decided
    message_id = tree.getroot().find(f"{c.BODY}//messageId")
    message_id.text = (message_id.text or "") + "-changed"
    return await _refused(run, serialize(tree), "a request changed after signing")


def _forward_with(run: Run, ex: Exchange, change: Callable[[etree._Element], None]) -> bytes:
    """The forward of `ex` changed by `change` and signed again as the gateway signs."""
    tree = c.PARSER.parse(ex.forwarded)
    drop_transport_signature(tree)
    change(tree.getroot())
    raw = serialize(tree)
    return run.bench.seal(raw) if _was_signed(ex.forwarded) else raw


def _was_signed(raw: bytes) -> bool:
    return b"Signature" in raw and b"wsse" in raw


async def fault_shape(run: Run) -> Outcome:
    """A payload outside the service's schema, signed as the gateway signs, gets a SOAP fault whose detail is
    the contract's fault element with ErrorInfo (and not a success, an HTML page or a bare HTTP error)."""
    ex = await run.exchange("inline")
    if ex.forwarded is None:
        return Outcome(FAIL, _failure(ex) or "nothing was forwarded", exchange_evidence(ex))

    def foreign_payload(root: etree._Element) -> None:
        data = root.find(f"{c.BODY}//data")
        for child in list(data):
            data.remove(child)
        data.text = None
        etree.SubElement(data, "{urn:shep-emulator:conformance}NotInTheSchema")
        # A new message: a receiver may rightly acknowledge a messageId it has handled without reading it again.
        root.find(f"{c.BODY}//messageId").text = str(uuid.uuid4())

    body = _forward_with(run, ex, foreign_payload)
    status, answer = await run.bench.post_direct(body)
    judged = run.bench.judge(status, answer)
    evidence = judged_evidence(body, judged)
    if judged.fault is not None:
        return Outcome(FAIL, f"{judged.fault.spec.name}: {judged.fault.data}", evidence)
    if not judged.is_fault:
        return Outcome(FAIL, "the provider answered a payload outside its schema as if it were valid", evidence)
    return Outcome(PASS, f"a contract SOAP fault, HTTP {status}", evidence)


async def duplicate(run: Run) -> Outcome:
    """The same forward sent twice: the second gets a contract answer too (the same result or a fault), not a
    broken connection or an HTTP error page."""
    ex = await run.exchange("inline")
    if ex.forwarded is None:
        return Outcome(FAIL, _failure(ex) or "nothing was forwarded", exchange_evidence(ex))
    status, answer = await run.bench.post_direct(ex.forwarded)
    judged = run.bench.judge(status, answer, CONTRACT_CHECKS)  # the payload and signature are other cases'
    evidence = judged_evidence(ex.forwarded, judged)
    if judged.fault is not None:
        return Outcome(FAIL, f"the second copy's answer: {judged.fault.spec.name}: {judged.fault.data}", evidence)
    return Outcome(PASS, "a contract SOAP fault" if judged.is_fault else "answered again", evidence)


async def text_round_trip(run: Run) -> Outcome:
    """Kazakh and Russian text (and XML's special characters) arrive and, where the service echoes, come back
    byte for byte in UTF-8."""
    if not run.sample.has_text:
        return Outcome(NA, f"the sample ({run.sample.source}) has no {{text}} field to carry it")
    ex = await run.send(ROUND_TRIP_TEXT)
    why = _failure(ex)
    if why:
        return Outcome(FAIL, why, exchange_evidence(ex))
    if not run.sample.echoes_text:
        return Outcome(PASS, "accepted and answered (the service does not echo the text)", exchange_evidence(ex))
    # The provider's own answer, not the gateway's reply: what is judged here is the provider's.
    answer = c.PARSER.parse(ex.answer.body).getroot().find(".//{*}responseData")
    if answer is not None and any(ROUND_TRIP_TEXT in text for text in answer.itertext()):
        return Outcome(PASS, "the text came back unchanged", exchange_evidence(ex))
    return Outcome(FAIL, "the text came back changed", exchange_evidence(ex))


async def large_payload(run: Run, kib: int = 1024) -> Outcome:
    """A request of about `kib` KiB is answered like any other."""
    if not run.sample.has_text:
        return Outcome(NA, f"the sample ({run.sample.source}) has no {{text}} field to grow")
    characters = kib * 512  # two bytes each in UTF-8
    if run.sample.text_limit is not None and run.sample.text_limit < characters:
        return Outcome(NA, f"the service's schema allows {run.sample.text_limit} characters in {{text}}: "
                           f"no valid request of {kib} KiB")
    ex = await run.send("ә" * characters)
    why = _failure(ex)
    evidence = [Evidence("size sent", f"{len(ex.sent)} bytes")] + exchange_evidence(ex)[2:]
    return Outcome(FAIL if why else PASS, why or f"{len(ex.sent) // 1024} KiB answered", evidence)


PROBES: dict[str, Callable[..., Awaitable[Outcome]]] = {
    probe.__name__: probe for probe in (wsdl, exchange, answer_check, answer_in_time, echoes_session,
                                        refuses_unsigned, refuses_tampered, fault_shape, duplicate,
                                        text_round_trip, large_payload)}

