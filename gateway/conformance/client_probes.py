"""How `shep conformance client` judges what the client under test did. A probe is
`probe(observed, final, **params) -> Outcome | None`: None while the scenario is still open (nothing sent
yet, a resend awaited); once `final` (every scenario decided, or the time is up) it always decides.
Probes in AT_END judge every request, so they are decided only then. The verdicts are the bench's gateway's
own (the journal's request-in records): the probes only find which request belongs to which scenario.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from twisted.internet import task

from gateway.conformance.cases import Case
from gateway.conformance.client_bench import CASE_PROPERTY, ClientBench, Observed, Request
from gateway.conformance.probes import FAIL, NA, PASS, Evidence, Outcome, _verdict_lines
from gateway.conformance.runner import Report, Result

log = logging.getLogger("shep.conformance")
PROVIDER_SIDE = "SHEP-2"  # faults of the provider or of the async queue: the bench causes them on purpose


def request_evidence(request: Request) -> list[Evidence]:
    answered = request.fault_code or "success"
    return [Evidence(f"{request.operation} sent by the client (messageId {request.message_id}, "
                     f"at {request.at.isoformat(timespec='milliseconds')}, answered {answered})", request.body),
            Evidence("the gateway's checks of it", _verdict_lines(request.verdicts))]


def _not_sent(case: str) -> Outcome:
    return Outcome(FAIL, f"no request with the property {CASE_PROPERTY}={case} arrived in time")


def sync_request(observed: Observed, final: bool, case: str, style: str) -> Outcome | None:
    """A SendMessage in the data style `style`, accepted by every check of the gateway."""
    requests = observed.of_case(case)
    if not requests:
        return _not_sent(case) if final else None
    request = requests[0]
    evidence = request_evidence(request)
    refused = request.refused_by
    if refused is not None:
        return Outcome(FAIL, f"refused by {refused['check']}: {refused.get('detail')}", evidence)
    if request.fault_code is not None:
        return Outcome(FAIL, f"answered {request.fault_code}", evidence)
    if request.style != style:
        return Outcome(FAIL, f"accepted, but data is in the {request.style or 'no known'} style, not {style}",
                       evidence)
    return Outcome(PASS, f"accepted: every check passed, data in the {style} style", evidence)


def signed_request(observed: Observed, final: bool, case: str) -> Outcome | None:
    """A SendMessage with a WS-Security transport signature the gateway verifies and binds to the sender."""
    requests = observed.of_case(case)
    if not requests:
        return _not_sent(case) if final else None
    request = requests[0]
    verdicts = {v["check"]: v for v in request.verdicts}
    evidence = request_evidence(request)
    for check in ("verify_transport_signature", "validate_certificate", "bind_certificate_to_sender"):
        verdict = verdicts.get(check)
        if verdict is None or verdict["verdict"] != "pass":
            why = verdict.get("detail") if verdict else "not reached"
            return Outcome(FAIL, f"{check}: {(verdict or {}).get('verdict', '')} {why}".strip(), evidence)
    if request.refused_by is not None:
        return Outcome(FAIL, f"signed, but refused by {request.refused_by['check']}", evidence)
    return Outcome(PASS, "signed: the signature verifies with a valid certificate of the sender's BIN", evidence)


def retry(observed: Observed, final: bool, case: str, min_delay: float = 1.0,
          max_attempts: int = 3) -> Outcome | None:
    """The bench's provider fails the first request once (the gateway answers SHEP-203); the client sends
    again, not before `min_delay` seconds, under a new messageId (the first copy was answered, so the same one
    is a replay: SHEP-160), at most `max_attempts` requests in all."""
    requests = observed.of_case(case)
    accepted = [r for r in requests[1:] if r.fault_code is None]
    refused = [r for r in requests[1:] if r.fault_code and not r.fault_code.startswith(PROVIDER_SIDE)]
    if not final and not accepted and not refused and len(requests) <= max_attempts:
        return None
    if not requests:
        return _not_sent(case)
    evidence = [e for r in requests for e in request_evidence(r)]
    first = requests[0]
    if len(requests) == 1:
        return Outcome(FAIL, f"answered {first.fault_code} and never sent again", evidence)
    second = requests[1]
    waited = (second.at - first.at).total_seconds()
    if second.message_id == first.message_id:
        return Outcome(FAIL, f"sent again under the same messageId {first.message_id}: answered "
                             f"{second.fault_code}; after a SHEP-2xx answer the first copy was answered, so a new "
                             "messageId is needed (the same one only after SHEP-299)", evidence)
    if waited < min_delay:
        return Outcome(FAIL, f"sent again after {waited:.3f} s: at least {min_delay:g} s expected", evidence)
    if len(requests) > max_attempts:
        return Outcome(FAIL, f"{len(requests)} attempts: at most {max_attempts} expected", evidence)
    if not accepted:
        return Outcome(FAIL, f"{len(requests)} attempts, none accepted", evidence)
    return Outcome(PASS, f"answered {first.fault_code}, sent again after {waited:.1f} s under a new messageId, "
                         f"{len(requests)} attempts", evidence)


def _queue_evidence(observed: Observed) -> list[Evidence]:
    lines = [f"{m}: handed out {observed.pulled.get(m, 0)}, acknowledged "
             f"{len(observed.acknowledged.get(m, []))}" for m in observed.put]
    evidence = [Evidence("the messages the bench queued for the client", "\n".join(lines))]
    for r in observed.requests:  # its pulls and its notifications, in the order it sent them
        if r.operation in ("getMessages", "sendDeliveryNotification"):
            evidence.extend(request_evidence(r))
    return evidence


def pulled(observed: Observed, final: bool) -> Outcome | None:
    """Every message queued for the client is pulled with getMessages."""
    missing = [m for m in observed.put if not observed.pulled.get(m)]
    if missing and not final:
        return None
    if missing:
        return Outcome(FAIL, f"{len(missing)} of {len(observed.put)} queued messages never pulled",
                       _queue_evidence(observed))
    return Outcome(PASS, f"all {len(observed.put)} queued messages pulled", _queue_evidence(observed))


def acknowledged_once(observed: Observed, final: bool) -> Outcome | None:
    """Each pulled message is acknowledged (sendDeliveryNotification) exactly once, and nothing unpulled is."""
    counts = {m: len(observed.acknowledged.get(m, [])) for m in observed.pulled}
    if not final and (not observed.put or any(counts.get(m, 0) == 0 for m in observed.put)):
        return None
    evidence = _queue_evidence(observed)
    twice = sorted(m for m, n in counts.items() if n > 1)
    never = sorted(m for m, n in counts.items() if n == 0)
    strangers = sorted(m for m in observed.acknowledged if m not in observed.pulled)
    if not observed.pulled:
        return Outcome(NA, "nothing was pulled (the async-pull case fails)", evidence)
    problems = ([f"acknowledged more than once: {', '.join(twice)}"] if twice else []) + \
               ([f"pulled but never acknowledged: {', '.join(never)}"] if never else []) + \
               ([f"acknowledged without being pulled: {', '.join(map(str, strangers))}"] if strangers else [])
    if problems:
        return Outcome(FAIL, "; ".join(problems), evidence)
    return Outcome(PASS, f"each of the {len(counts)} pulled messages acknowledged exactly once", evidence)


def fresh_dates(observed: Observed, final: bool) -> Outcome | None:
    """Every request's messageDate is within the gateway's clock skew (check_message_date)."""
    if not final:
        return None
    judged = [(r, next((v for v in r.verdicts if v["check"] == "check_message_date"), None))
              for r in observed.requests]
    judged = [(r, v) for r, v in judged if v is not None]
    if not judged:
        return Outcome(NA, "no request reached check_message_date")
    stale = [(r, v) for r, v in judged if v["verdict"] == "fail"]
    if stale:
        return Outcome(FAIL, f"{len(stale)} of {len(judged)} requests: {stale[0][1].get('detail')}",
                       [e for r, _ in stale for e in request_evidence(r)])
    return Outcome(PASS, f"all {len(judged)} requests dated within the gateway's clock skew")


PROBES: dict[str, Callable[..., Outcome | None]] = {
    probe.__name__: probe for probe in (sync_request, signed_request, retry, pulled, acknowledged_once,
                                        fresh_dates)}
AT_END = frozenset({"fresh_dates"})


async def watch(bench: ClientBench, cases: list[Case], report: Report, *, timeout: float, grace: float = 2.0,
                poll: float = 0.5, progress: Callable[[int, int, Result], None] = lambda *_: None) -> Report:
    """Look at the journal until every scenario is decided or `timeout` seconds pass; after `grace` seconds
    more (a late double acknowledgement, an extra resend), judge every case on all that was seen."""
    started = time.monotonic()
    decided: dict[str, float] = {}  # case: seconds from the start until it could be judged
    open_cases = [case for case in cases if case.probe not in AT_END]
    while time.monotonic() - started < timeout:
        observed = await bench.observe()
        for case in open_cases:
            if case.id not in decided and _judge(case, observed, False) is not None:
                decided[case.id] = time.monotonic() - started
        if len(decided) == len(open_cases):
            await task.deferLater(bench.reactor, grace)
            break
        await task.deferLater(bench.reactor, poll)
    observed = await bench.observe()
    for number, case in enumerate(cases, 1):
        seconds = decided.get(case.id, time.monotonic() - started)
        result = Result(case, _judge(case, observed, True), seconds)
        report.results.append(result)
        progress(number, len(cases), result)
    return report


def _judge(case: Case, observed: Observed, final: bool) -> Outcome | None:
    try:
        return PROBES[case.probe](observed, final, **case.params)
    except Exception as exc:  # a probe's own failure is the case's verdict, never the run's traceback
        log.exception("case %s: the probe failed", case.id)
        return Outcome(FAIL, f"the probe could not complete: {type(exc).__name__}: {exc}")
