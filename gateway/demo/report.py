"""What `shep demo` prints: one line per step with its verdict, the gateway's hops as a compact timeline (on
--verbose, or for a step that failed), each hop kind and check list explained once, the summary table; or, with
--json, one JSON document."""
from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TextIO

_WIDTH = 120
FINE = ("pass", "skip", "note")  # `note`: a tolerated variation, or a queue state change

# The journal's hops, as the demo names them. A request-out to the message's own sender is not a delivery but
# the AsyncChannel's status notification (gateway/asyncchannel/push.py, notify_sender).
HOP_KINDS = {
    "request-in": "a message the gateway received, and its checks",
    "response-out": "the gateway's answer to it",
    "request-out": "what the gateway sent on: a forward to the provider, an async push to the recipient",
    "response-in": "that party's answer, and its checks",
    "notify-out": "an async status notification: the message's final state, to its sender (journal: request-out)",
    "state": "a change of the message's state in the async queue (nothing on the wire)",
}


@dataclass
class Step:
    diagram: str
    step: str
    title: str
    expected: str
    observed: str = ""
    ok: bool = False
    hops: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"D{self.diagram} {self.step}"

    @property
    def verdict(self) -> str:
        return "OK" if self.ok else "FAIL"


def hop_kind(hop: dict, senders: dict[str, str]) -> str:
    """The hop's kind (HOP_KINDS); `senders`: message id → the party that sent the message."""
    if hop["hop"] == "request-out" and hop["to_party"] == senders.get(hop["message_id"]):
        return "notify-out"
    return hop["hop"]


def message_senders(hops: list[dict]) -> dict[str, str]:
    # A queue transition names the message's sender and recipient, as does the request it came in.
    return {h["message_id"]: h["from_party"] for h in hops if h["hop"] in ("request-in", "state")}


class Report:
    """Collects the steps; in text mode prints as they come, in JSON mode once at the end."""

    def __init__(self, out: TextIO = sys.stdout, *, verbose: bool = False, as_json: bool = False):
        self.out = out
        self.verbose = verbose
        self.as_json = as_json
        self.steps: list[Step] = []
        # (hop kind, check names) → the services of the hops that ran that list
        self.check_lists: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        self._legend_shown = False
        self.server: dict = {}

    # -- as the demo goes ---------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """A line for people: stdout in text mode, stderr under --json (stdout holds the document)."""
        print(text, file=sys.stderr if self.as_json else self.out, flush=True)

    def section(self, title: str) -> None:
        if not self.as_json:
            print(f"\n== {title} ==", file=self.out)

    def step(self, step: Step) -> bool:
        self.steps.append(step)
        senders = message_senders(step.hops)
        for hop in step.hops:
            if hop["verdicts"] and hop["hop"] != "state":
                key = (hop_kind(hop, senders), tuple(v["check"] for v in hop["verdicts"]))
                self.check_lists.setdefault(key, []).append(hop["service_id"] or "-")
        if self.as_json:
            return step.ok
        hops = f" ({_hops(len(step.hops))})" if step.hops else ""
        print(f"  {step.verdict:<4} {step.name}: {step.title}{hops}", file=self.out)
        if not step.ok:
            print(f"       expected {step.expected}; observed {step.observed}", file=self.out)
        if step.hops and (self.verbose or not step.ok):
            self._timeline(step.hops, senders)
        self.out.flush()
        return step.ok

    def _timeline(self, hops: list[dict], senders: dict[str, str]) -> None:
        if not self._legend_shown:
            self._legend_shown = True
            print("       hops, from the gateway's journal (#seq, ms since its earliest hop):", file=self.out)
            for kind, meaning in HOP_KINDS.items():
                print(f"         {kind:<12} {meaning}", file=self.out)
        first = min(_moment(hop["started_at"]) for hop in hops)
        for hop in hops:
            kind = hop_kind(hop, senders)
            at = (_moment(hop["started_at"]) - first).total_seconds() * 1000
            route = f"{hop['from_party'] or '-'} → {hop['to_party'] or '-'}"
            print(f"       #{hop['seq']:<4} +{at:>6.0f} ms  {kind:<12} {route:<22} {_hop_outcome(hop)}",
                  file=self.out)

    # -- at the end ---------------------------------------------------------------------------------------

    def finish(self, seconds: float) -> bool:
        ok = bool(self.steps) and all(s.ok for s in self.steps)
        if self.as_json:
            json.dump({"server": self.server, "ok": ok, "passed": sum(s.ok for s in self.steps),
                       "steps": [{**asdict(s), "name": s.name, "verdict": s.verdict} for s in self.steps],
                       "check_lists": [{"hop": hop, "checks": list(checks), "services": sorted(set(services)),
                                        "hops": len(services)}
                                       for (hop, checks), services in self.check_lists.items()],
                       "seconds": round(seconds, 1)}, self.out, ensure_ascii=False, indent=1)
            print(file=self.out)
            return ok
        if self._legend_shown:
            self._check_lists()
        self._summary()
        print(f"demo took {seconds:.1f} s", file=self.out)
        return ok

    def _check_lists(self) -> None:
        """Each distinct list of checks once, with how many hops of the timelines above ran it."""
        print("\nChecks the gateway ran, in order (each list once):", file=self.out)
        for (hop, checks), services in self.check_lists.items():
            head = f"  {hop} of {', '.join(sorted(set(services)))} ({_hops(len(services))}), {len(checks)} checks: "
            print(textwrap.fill(head + ", ".join(checks), width=_WIDTH, subsequent_indent="      "), file=self.out)

    def _summary(self) -> None:
        print("\nSummary", file=self.out)
        rows = [("step", "expected", "observed", "result")]
        rows += [(s.name, s.expected, s.observed, s.verdict) for s in self.steps]
        widths = [min(max(len(r[i]) for r in rows), 60) for i in range(4)]
        for n, r in enumerate(rows):
            print("| " + " | ".join(c[:60].ljust(widths[i]) for i, c in enumerate(r)) + " |", file=self.out)
            if n == 0:
                print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=self.out)
        print(f"\n{sum(s.ok for s in self.steps)}/{len(self.steps)} steps OK", file=self.out)


def _hops(n: int) -> str:
    return f"{n} hop" if n == 1 else f"{n} hops"


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _hop_outcome(hop: dict) -> str:
    """The verdicts in a few words: counts, and by name only what did not simply pass."""
    if hop["hop"] == "state":
        return "; ".join(v.get("detail") or "" for v in hop["verdicts"])
    counts: dict[str, int] = {}
    for v in hop["verdicts"]:
        counts[v["verdict"]] = counts.get(v["verdict"], 0) + 1
    words = [f"HTTP {hop['http_status']}"] if hop.get("http_status") else []
    if set(counts) == {"pass"}:
        words.append(f"{counts['pass']} checks pass")
    elif counts:
        words.append(f"{len(hop['verdicts'])} checks: " + ", ".join(f"{n} {verdict}" for verdict, n in counts.items()))
    words += [f"{v['verdict']} {v['check']}: {v.get('detail') or '-'}" for v in hop["verdicts"]
              if v["verdict"] not in ("pass", "skip")]
    if hop["fault_code"]:
        words.append(f"FAULT {hop['fault_code']}")
    return "; ".join(words)


def all_pass(hops: list[dict]) -> bool:
    return all(not h["fault_code"] and all(v["verdict"] in FINE for v in h["verdicts"]) for h in hops)
