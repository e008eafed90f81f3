"""`shep conformance provider`: an integrator's provider (SyncChannel, or an AsyncChannel push receiver) driven the
way the gateway would drive it,
case by case, with a summary, JUnit XML and an HTML report; exit 0 only when every required case passes."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from gateway.cli import common


def cmd_provider(args) -> int:
    from twisted.internet import defer, task

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
        if args.only:
            unknown = set(args.only) - {case.id for case in cases}
            if unknown:
                raise common.CommandError(f"no case {', '.join(sorted(unknown))} (see `shep conformance list`)")
            cases = [case for case in cases if case.id in args.only]
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

    try:
        task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            return 2 if not report.results else 1
    print()
    print(output.summary(report))
    for path in output.write(report, args.junit, args.html):
        print(f"wrote {path}", file=sys.stderr)
    return 0 if report.passed else 1


def cmd_list(args) -> int:
    from gateway.conformance import cases as catalogue
    from gateway.conformance.probes import PROBES

    try:
        cases = catalogue.load(args.mode, Path(args.cases) if args.cases else None, frozenset(PROBES))
    except catalogue.CaseError as exc:
        raise common.CommandError(str(exc)) from None
    for case in cases:
        print(f"{case.id:<22} {'required' if case.required else 'optional'}  {'+'.join(case.channels):<10}  "
              f"{case.title}")
    return 0


def register(sub) -> None:
    top = sub.add_parser("conformance", help="check an integrator's provider against the contract, scored")
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
    listing = modes.add_parser("list", help="the cases of a mode")
    listing.add_argument("mode", nargs="?", default="provider", choices=["provider"])
    listing.add_argument("--cases", help="a folder of case files instead of the shipped catalogue")
    listing.set_defaults(func=cmd_list)
