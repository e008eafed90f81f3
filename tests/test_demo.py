"""`shep demo` in self-started mode: both diagrams of the regulation end to end, every step OK."""
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


@pytest.mark.parametrize("alg,method", [("rsa", "rsa-sha256"), ("gost2015", "gost2015")])
def test_demo_self_started_every_step_ok(tested_store, alg, method):
    # Port 1 on 127.0.0.1 never answers: the demo starts its own server on port 0 with a temp state dir
    # (and, on PostgreSQL, the store under test).
    result = subprocess.run([str(SHEP), "demo", "--url", "http://127.0.0.1:1", "--alg", alg,
                             *tested_store.store_option], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.split("\nSummary\n", 1)[1]
    lines = [line for line in summary.splitlines() if line.startswith("| D")]
    rows = {cells[0]: cells[-1] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines)}
    assert list(rows) == STEPS
    assert set(rows.values()) == {"OK"}
    assert f"{len(STEPS)}/{len(STEPS)} steps OK" in summary
    assert "FAIL" not in result.stdout
    # the trace shows the gateway's hops with the journal's verdicts
    assert re.search(r"→ gateway hops: request-in \(checks: \d+ pass\)", result.stdout)
    # every message hop signed, each with the algorithm asked for (the journal's verdicts and bytes)
    every = re.search(r"observed (\d+) ([\w-]+) in (\d+) message hops", result.stdout)
    assert every and every.group(2) == method and int(every.group(1)) >= int(every.group(3)) > 40


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
