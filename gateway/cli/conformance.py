"""`shep conformance provider`: an integrator's provider (SyncChannel, or an AsyncChannel push receiver) driven the
way the gateway would drive it, case by case; `shep conformance client`: a gateway of its own that an
integrator's client sends scenarios to. Both give a summary, JUnit XML and an HTML report; exit 0 only when
every required case passes."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from gateway.cli import common


def cmd_provider(args) -> int:
    from gateway.conformance import cases as catalogue, report as output, samples
    from gateway.conformance.bench import Bench, BenchError, bench_settings
    from gateway.conformance.probes import PROBES, Run
    from gateway.conformance.runner import new_report, run_cases

    settings = common.settings(args)
    try:
        bench_settings(settings, args.service, args.url)  # the service is one the bench can drive
        channel = settings.registry.service(args.service).channel
        cases = [case for case in catalogue.load("provider", Path(args.cases) if args.cases else None,
                                                 frozenset(PROBES)) if channel in case.channels]
        cases = _only(cases, args.only)
        sample = samples.from_file(Path(args.data), args.xsi_type) if args.data else samples.shipped(args.service)
    except (BenchError, catalogue.CaseError, samples.SampleError) as exc:
        raise common.CommandError(str(exc)) from None
    if sample is None:
        raise common.CommandError(f"no shipped sample request for {args.service}: give one with --data FILE")
    pki_dir = common.state(args).path
    report = new_report("provider", args.url, args.service)

    def progress(number, total, result):
        print(output.progress_line(number, total, result), flush=True)

    async def main(reactor):
        with tempfile.TemporaryDirectory(prefix="shep-conformance-") as work:
            bench = Bench(settings, args.service, args.url, pki_dir=pki_dir, work_dir=Path(work), reactor=reactor)
            try:
                bench.start()
                await run_cases(Run(bench, sample), cases, report, progress)
            finally:  # a half-started bench too: its pools' threads would keep the process alive
                await bench.stop()

    return _react_and_report(main, report, args)


def cmd_client(args) -> int:
    from gateway.conformance import cases as catalogue, report as output
    from gateway.conformance.bench import BenchError
    from gateway.conformance.client_bench import ClientBench, client_settings
    from gateway.conformance.client_probes import PROBES, watch
    from gateway.conformance.runner import new_report

    if args.pull_messages < 1:
        raise common.CommandError("--pull-messages must be at least 1: the async cases judge what was pulled")
    settings = common.settings(args)
    try:
        client_settings(settings, args.service, "http://127.0.0.1/")  # the service is one the bench can serve
        cases = _only(catalogue.load("client", Path(args.cases) if args.cases else None, frozenset(PROBES)),
                      args.only)
    except (BenchError, catalogue.CaseError) as exc:
        raise common.CommandError(str(exc)) from None
    report = new_report("client", f"127.0.0.1:{args.port}", args.service)

    def progress(number, total, result):
        print(output.progress_line(number, total, result), flush=True)

    async def main(reactor):
        with tempfile.TemporaryDirectory(prefix="shep-conformance-") as work:
            fail_once = {case.params["case"] for case in cases if case.probe == "retry"}
            # The run's own PKI: the revocation lists and OCSP its gateway checks a signed request against are
            # served by that gateway itself, whatever port an earlier run of a state dir's PKI had.
            bench = ClientBench(settings, args.service, pki_dir=Path(work), work_dir=Path(work), reactor=reactor,
                                fail_once=fail_once)
            try:
                bench.start(args.port)
                if any(case.probe in ("pulled", "acknowledged_once") for case in cases):
                    await bench.put(args.pull_messages)
                report.target = bench.base_url
                print(instructions(bench, cases, args), flush=True)
                await watch(bench, cases, report, timeout=args.timeout, progress=progress)
            finally:  # a half-started bench too: its pools' threads would keep the process alive
                await bench.stop()

    return _react_and_report(main, report, args)


def instructions(bench, cases, args) -> str:
    """What the integrator's client is told to use: the addresses, its credentials, the scenarios."""
    from gateway.conformance.client_bench import ASYNC_SERVICE, CASE_PROPERTY, SENDER

    cert, key = bench.credentials
    lines = ["the conformance gateway is listening; point the client under test at it:",
             f"sync-url: {bench.base_url}/bip-sync/", f"async-url: {bench.base_url}/bip-async/",
             f"senderId: {SENDER}", f"password: {bench.password}", f"serviceId: {bench.service.id}",
             f"async-serviceId: {ASYNC_SERVICE} ({args.pull_messages} messages queued for the client to pull)",
             f"cert: {cert}", f"key: {key}", f"gateway-cert: {bench.base_url}/api/certificate",
             "the cases:"]
    lines += [f"  {case.id:<28} {'required' if case.required else 'optional'}  "
              + (f"send with {CASE_PROPERTY}={case.params['case']}: " if "case" in case.params else "")
              + case.title for case in cases]
    lines.append(f"waiting up to {args.timeout:g} s")
    return "\n".join(lines)


def _only(cases: list, only: list[str] | None) -> list:
    """The cases named by --only (all without it); an unknown name is an error."""
    if not only:
        return cases
    unknown = set(only) - {case.id for case in cases}
    if unknown:
        raise common.CommandError(f"no case {', '.join(sorted(unknown))} (see `shep conformance list`)")
    return [case for case in cases if case.id in only]


def _react_and_report(main, report, args) -> int:
    """Run `main(reactor)` to its end, then the summary and the reports; exit 0 only when the run conforms."""
    from twisted.internet import defer, error, task

    from gateway.conformance import report as output

    async def guarded(reactor):
        try:
            await main(reactor)
        except error.CannotListenError as exc:  # a busy --port: one line, not a traceback
            refused.append(f"cannot listen on {exc.interface}:{exc.port}: {exc.socketError}")

    refused: list[str] = []
    try:
        task.react(lambda reactor: defer.ensureDeferred(guarded(reactor)))
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            return 2 if not report.results else 1
    if refused:
        raise common.CommandError(refused[0])
    print()
    print(output.summary(report))
    for path in output.write(report, args.junit, args.html):
        print(f"wrote {path}", file=sys.stderr)
    return 0 if report.passed else 1


def cmd_list(args) -> int:
    from gateway.conformance import cases as catalogue
    from gateway.conformance.client_probes import PROBES as CLIENT_PROBES
    from gateway.conformance.probes import PROBES

    known = CLIENT_PROBES if args.mode == "client" else PROBES
    try:
        cases = catalogue.load(args.mode, Path(args.cases) if args.cases else None, frozenset(known))
    except catalogue.CaseError as exc:
        raise common.CommandError(str(exc)) from None
    for case in cases:
        print(f"{case.id:<22} {'required' if case.required else 'optional'}  {'+'.join(case.channels):<10}  "
              f"{case.title}")
    return 0


def register(sub) -> None:
    top = sub.add_parser("conformance", help="check an integrator's provider or client against the contract, scored")
    modes = top.add_subparsers(dest="conformance_command", required=True)
    provider = modes.add_parser("provider", help="drive a provider as the gateway would: its SendMessage endpoint "
                                                 "(a sync service) or its IAsyncChannelClient (an async one)")
    common.add_common(provider)
    provider.add_argument("--url", required=True, help="the provider's SendMessage endpoint, or for an async "
                                                       "service the IAsyncChannelClient endpoint it is pushed to")
    provider.add_argument("--service", required=True,
                          help="serviceId, as registered in --config (the provider's own settings: schema, "
                               "signatures, timeout)")
    provider.add_argument("--data", help="the request payload (XML; {text}, {uuid}, {now} placeholders) "
                                         "instead of the shipped sample of --service")
    provider.add_argument("--xsi-type", help="{namespace}Type for the typed data style, with --data")
    provider.add_argument("--only", action="append", metavar="CASE", help="run only this case (repeatable)")
    provider.add_argument("--cases", help="a folder of case files instead of the shipped catalogue")
    provider.add_argument("--junit", help="write a JUnit XML report here")
    provider.add_argument("--html", help="write a self-contained HTML report here")
    provider.set_defaults(func=cmd_provider)
    client = modes.add_parser("client", help="a gateway of its own that an integrator's client sends the "
                                             "scenarios to, scored")
    client.add_argument("--config", help="TOML configuration (default: the shipped gateway/defaults/shep.toml)")
    client.add_argument("--service", default="DEMO_Echo",
                        help="the SyncChannel serviceId the client calls, as registered in --config (its payload "
                             "schema and signature requirement apply; a stub provider answers it)")
    client.add_argument("--port", type=int, default=0, help="the loopback port to listen on (default: any free)")
    client.add_argument("--timeout", type=float, default=300, help="seconds to wait for the scenarios")
    client.add_argument("--pull-messages", type=int, default=2, help="messages queued for the client to pull")
    client.add_argument("--only", action="append", metavar="CASE", help="judge only this case (repeatable)")
    client.add_argument("--cases", help="a folder of case files instead of the shipped catalogue")
    client.add_argument("--junit", help="write a JUnit XML report here")
    client.add_argument("--html", help="write a self-contained HTML report here")
    client.set_defaults(func=cmd_client)
    listing = modes.add_parser("list", help="the cases of a mode")
    listing.add_argument("mode", nargs="?", default="provider", choices=["provider", "client"])
    listing.add_argument("--cases", help="a folder of case files instead of the shipped catalogue")
    listing.set_defaults(func=cmd_list)
