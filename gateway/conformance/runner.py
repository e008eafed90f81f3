"""One conformance run: the cases in order, each judged by its probe, with a progress callback."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from gateway.conformance.cases import Case
from gateway.conformance.probes import FAIL, PROBES, Outcome, Run

log = logging.getLogger("shep.conformance")


@dataclass
class Result:
    case: Case
    outcome: Outcome
    seconds: float

    @property
    def failed(self) -> bool:
        return self.outcome.verdict == FAIL

    @property
    def failed_required(self) -> bool:
        return self.failed and self.case.required


@dataclass
class Report:
    mode: str
    target: str
    service: str
    started: datetime
    results: list[Result] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every required case passed or does not apply: the run's exit code is 0 only then."""
        return not any(r.failed_required for r in self.results)

    def count(self, verdict: str, required: bool | None = None) -> int:
        return sum(1 for r in self.results if r.outcome.verdict == verdict
                   and (required is None or r.case.required == required))

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results)


async def run_cases(run: Run, cases: list[Case], report: Report,
                    progress: Callable[[int, int, Result], None] = lambda *_: None) -> Report:
    for number, case in enumerate(cases, 1):
        started = time.perf_counter()
        try:
            outcome = await PROBES[case.probe](run, **case.params)
        except Exception as exc:  # a probe's own failure is the case's verdict, never the run's traceback
            log.debug("case %s: the probe failed", case.id, exc_info=True)  # its reason is the verdict
            outcome = Outcome(FAIL, f"the probe could not complete: {type(exc).__name__}: {exc}")
        result = Result(case, outcome, time.perf_counter() - started)
        report.results.append(result)
        progress(number, len(cases), result)
    return report


def new_report(mode: str, target: str, service: str) -> Report:
    return Report(mode, target, service, datetime.now(timezone.utc))

