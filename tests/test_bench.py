"""`make bench` keeps working: a short run of two phases writes its JSON and table (figures are not judged here)."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_short_bench_run_writes_results_and_table(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--seconds", "1", "--clients", "2",
                           "--only", "direct,sync-sqlite-1", "--no-postgres", "--no-readme", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / f"{date.today().isoformat()}.json").read_text(encoding="utf-8"))
    phases = {(r["scenario"], r["store"], r["workers"]): r for r in report["results"]}
    assert set(phases) == {("direct", "-", 0), ("gateway-sync", "sqlite", 1)}
    for phase in phases.values():
        assert phase["messages"] > 0 and phase["failures"] == 0, phase
    gateway = phases[("gateway-sync", "sqlite", 1)]
    assert gateway["cpu_ms_per_message"] > 0 and gateway["peak_rss_mb"][0] > 0
    assert gateway["extra"]["mean_ms"]["verify_transport_signature"] > 0  # read from the gateway's /metrics
    bound = report["lower_bound"]
    assert 0 < bound["lower_bound_ms"] < bound["ours_per_message_ms"] and bound["pool_work_ms"] > 0
    table = (tmp_path / f"{date.today().isoformat()}.md").read_text(encoding="utf-8")
    assert "| gateway-sync | sqlite | 1 |" in table and "| direct | - | - |" in table
    assert (ROOT / "README.md").read_text(encoding="utf-8") == readme  # --no-readme leaves it alone
