"""`shep demo`: walk both diagrams of the regulation over HTTP and report each step with the gateway's hops.

Talks to a running server at --url, or starts `shep serve --port 0` with a temporary state dir when
nothing answers there (`http`). Only the portal's and the clinic's JSON APIs and the gateway's journal API
are used (`steps`); `report` prints one line per step, the hops on --verbose or for a failing step, or one
JSON document with --json. Exit 1 when any step behaves unexpectedly, 2 when the demo cannot run.
"""
from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from gateway.demo.http import Http, LocalServer, reachable, server_alg
from gateway.demo.report import Report
from gateway.demo.steps import Demo

__all__ = ["Http", "cmd_demo", "run"]


def run(url: str, state_dir: str | None = None, out=sys.stdout, store_url: str | None = None,
        alg: str = "rsa", operator_token: str | None = None, *, verbose: bool = False,
        as_json: bool = False) -> int:
    from simulators.gbdfl.population import build_population

    report = Report(out, verbose=verbose, as_json=as_json)
    server = None
    if not reachable(url):
        report.say(f"no server at {url}: starting `shep serve --port 0 --signing-alg {alg}` with a temporary "
                   "state dir")
        server = LocalServer(store_url, alg)
    started = time.monotonic()
    try:
        if server:
            url = server.wait_url()
        http = Http(url, operator_token)
        http.journal(limit=1)  # a refused journal stops the demo now, not after every step has failed
        signing = server_alg(http)
        if signing != alg:
            raise RuntimeError(f"the server at {url} signs with {signing}, not {alg}: start it with "
                               f"`make run ARGS=\"--signing-alg {alg}\"`, or give a --url where none runs")
        report.server = {"url": url, "alg": alg, "started_by_demo": server is not None}
        report.say(f"server {url} (signatures: {alg})")
        demo = Demo(http, server.state_dir if server else (Path(state_dir) if state_dir else None), report, alg)
        population = build_population()
        since = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        report.section("Diagram 1: through the portal")
        demo.diagram1(population)
        report.section("Diagram 2: through the clinic's employee")
        demo.diagram2(population)
        report.section("Signatures")
        demo.signatures(since)
    finally:
        if server:
            server.stop()
    return 0 if report.finish(time.monotonic() - started) else 1


def cmd_demo(args) -> int:
    try:
        return run(args.url, args.state_dir or os.environ.get("SHEP_STATE_DIR"), store_url=args.store, alg=args.alg,
                   operator_token=args.operator_token or os.environ.get("SHEP_OPERATOR_TOKEN"),
                   verbose=args.verbose, as_json=args.json)
    except RuntimeError as exc:
        print(f"shep demo: {exc}", file=sys.stderr)
        return 2
