"""`shep demo` in self-started mode: both diagrams of the regulation end to end, every step OK; its text (one
line per step, the hops on --verbose) and its JSON document."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SHEP = Path(sys.executable).with_name("shep")

STEPS = ["D1 (pre)", "D1 process 1 → condition 1 → process 2", "D1 process 1 · condition 1", "D1 process 3",
         "D1 condition 2 · process 5", "D1 process 6", "D1 condition 3 · process 8", "D1 process 8 («view result»)",
         "D1 condition 2 → process 4", "D1 condition 3 → process 7", "D2 process 1",
         "D2 processes 2–3 · condition 1", "D2 condition 1 → process 4", "D2 processes 5–6 · condition 2",
         "D2 process 8", "D2 condition 2 → process 7", "D1+2 every hop"]
STEP_LINE = re.compile(r"^  (OK|FAIL) +(D[12+]+ .+?): ", re.MULTILINE)
TIMELINE = re.compile(r"^ +#(\d+) +\+ *\d+ ms  ([\w-]+) +(\S+) → (\S+) +(.*)$", re.MULTILINE)


def demo(store, alg: str, *options: str) -> subprocess.CompletedProcess:
    # Port 1 on 127.0.0.1 never answers: the demo starts its own server on port 0 with a temp state dir
    # (and, on PostgreSQL, the store under test).
    result = subprocess.run([str(SHEP), "demo", "--url", "http://127.0.0.1:1", "--alg", alg, *options,
                             *store.store_option], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result


@pytest.mark.parametrize("alg,method,verbose", [("rsa", "rsa-sha256", False), ("gost2015", "gost2015", True)])
def test_demo_self_started_every_step_ok(tested_store, alg, method, verbose):
    result = demo(tested_store, alg, *(["--verbose"] if verbose else []))
    trace, summary = result.stdout.split("\nSummary\n", 1)
    lines = [line for line in summary.splitlines() if line.startswith("| D")]
    rows = {cells[0]: cells[-1] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines)}
    assert list(rows) == STEPS
    assert set(rows.values()) == {"OK"}
    assert f"{len(STEPS)}/{len(STEPS)} steps OK" in summary
    assert "FAIL" not in result.stdout
    # One line per step, with its verdict, in the order of the regulation.
    assert STEP_LINE.findall(trace) == [("OK", step) for step in STEPS]
    # every message hop signed, each with the algorithm asked for (the journal's verdicts and bytes)
    every = re.search(r"\| (\d+) ([\w-]+) in (\d+) message hops", summary)
    assert every and every.group(2) == method and int(every.group(1)) >= int(every.group(3)) > 40
    hops = TIMELINE.findall(trace)
    if not verbose:
        # Every step passed: no timeline, no legend, no check list.
        assert hops == [] and "notify-out" not in trace and "require_post" not in trace
        return
    kinds = {kind for _, kind, *_ in hops}
    assert kinds == {"request-in", "response-out", "request-out", "response-in", "notify-out", "state"}
    # The timeline shows the journal's verdicts: every request-in passed all its checks.
    assert all(re.fullmatch(r"HTTP \d+; \d+ checks pass|\d+ checks pass", outcome)
               for _, kind, _, _, outcome in hops if kind in ("request-in", "response-in"))
    # The status notification goes from the gateway to the message's sender (the АЖО's RESPONSE), labelled so.
    assert ("notify-out", "gateway", "ajo") in {(kind, frm, to) for _, kind, frm, to, _ in hops}
    assert any(kind == "state" and "ON_DELIVERY → DELIVERED" in outcome for _, kind, _, _, outcome in hops)
    # Each hop kind is explained once, each list of checks printed once.
    assert trace.count("  state        a change of the message's state in the async queue") == 1
    lists = re.findall(r"^  (request-in|response-in) of .+ checks: ", trace, re.MULTILINE)
    assert len(lists) >= 3 and trace.count("require_post") == lists.count("request-in")


def test_demo_json_is_one_document_with_every_step(tested_store):
    result = demo(tested_store, "rsa", "--json")
    document = json.loads(result.stdout)  # stdout holds the document alone
    assert document["ok"] is True and document["passed"] == len(STEPS)
    assert [step["name"] for step in document["steps"]] == STEPS
    assert {step["verdict"] for step in document["steps"]} == {"OK"}
    assert all(step["ok"] is True and step["expected"] and step["observed"] for step in document["steps"])
    sent = next(step for step in document["steps"] if step["name"] == "D1 condition 2 · process 5")
    assert [hop["hop"] for hop in sent["hops"]] == ["request-in", "response-out", "state"]
    assert {v["verdict"] for v in sent["hops"][0]["verdicts"]} == {"pass"}
    assert document["server"]["alg"] == "rsa" and document["server"]["started_by_demo"] is True
    # What is said to people goes to stderr.
    assert "starting `shep serve --port 0" in result.stderr


def test_demo_refuses_a_server_of_another_algorithm(tmp_path):
    server = subprocess.Popen([str(SHEP), "serve", "--port", "0", "--state-dir", str(tmp_path), "--log-level",
                               "WARNING"], stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"listening on (\S+)", server.stderr.readline()).group(1)
        result = subprocess.run([str(SHEP), "demo", "--url", url, "--alg", "gost2015"], capture_output=True,
                                text=True, timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=15)
    assert result.returncode == 2
    assert "signs with rsa, not gost2015" in result.stderr and "--signing-alg gost2015" in result.stderr


def test_a_failing_step_shows_its_timeline_without_verbose():
    import io

    from gateway.demo.report import Report, Step

    out = io.StringIO()
    report = Report(out)
    hop = {"seq": 7, "hop": "request-in", "from_party": "portal", "to_party": "gateway", "message_id": "m-1",
           "service_id": "PHC_ATTACHMENT", "started_at": "2026-01-01T00:00:00+00:00", "http_status": None,
           "fault_code": "SHEP-171", "verdicts": [{"check": "parse_xml", "verdict": "pass", "detail": None},
                                                  {"check": "validate_request_payload", "verdict": "fail",
                                                   "detail": "line 1: bad"}]}
    report.step(Step("1", "process 5", "sent", "200 SENT", "500 SHEP-171", False, [hop]))
    report.step(Step("1", "process 6", "registered", "set", "set", True, [dict(hop, seq=8, fault_code=None)]))
    text = out.getvalue()
    assert "  FAIL D1 process 5: sent (1 hop)\n       expected 200 SENT; observed 500 SHEP-171\n" in text
    assert TIMELINE.findall(text) == [("7", "request-in", "portal", "gateway",
                                       "2 checks: 1 pass, 1 fail; fail validate_request_payload: line 1: bad; "
                                       "FAULT SHEP-171")]
    assert "  OK   D1 process 6: registered (1 hop)\n" in text
    assert not report.finish(1.0)
