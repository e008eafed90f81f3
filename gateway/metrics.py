"""Prometheus metrics of one gateway process (docs/operations.md lists every family).

Each `Metrics` has its own `CollectorRegistry`, so several apps in one test process never share a series.
Label values are bounded: addresses are the site's channel paths, services come from the registry
(anything else is "unknown"), outcomes and fault codes from the catalogue.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import (CollectorRegistry, Counter, Histogram, PlatformCollector, ProcessCollector,
                               generate_latest)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.faults import CATALOGUE
from gateway.registry import ASYNC, Service

log = logging.getLogger("shep.metrics")

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# A provider's own SOAP fault, passed through to the caller (gateway/sync.py).
PROVIDER_FAULT = "provider-fault"
UNKNOWN = "unknown"
OK = "ok"


def outcome(fault_code: str | None) -> str:
    """"ok", or the party the fault is blamed on: caller_fault, gateway_fault, provider_fault."""
    if not fault_code:
        return OK
    spec = CATALOGUE.get(fault_code)
    return f"{spec.party if spec else 'provider'}_fault"


class Metrics:
    def __init__(self, services: Iterable[Service] = ()) -> None:
        self.registry = CollectorRegistry()
        services = list(services)
        self.services = frozenset(service.id for service in services)
        # The queue's gauges show every AsyncChannel service, at 0 when nothing waits.
        self.async_services = frozenset(service.id for service in services if service.channel == ASYNC)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.request_seconds = Histogram(
            "shep_request_duration_seconds",
            "Time from receiving a request to answering it, by channel address, service and outcome",
            ["address", "service", "outcome"], buckets=_BUCKETS, registry=self.registry)
        self.faults = Counter(
            "shep_faults", "Fault answers by catalogue code (provider-fault: the provider's own SOAP fault)",
            ["code"], registry=self.registry)
        self.check_seconds = Histogram(
            "shep_check_duration_seconds", "Time spent in each pipeline check", ["check"],
            buckets=_BUCKETS, registry=self.registry)
        self.hop_seconds = Histogram(
            "shep_hop_duration_seconds", "Time per hop: request-in, provider, response-in", ["hop"],
            buckets=_BUCKETS, registry=self.registry)
        # Every code at 0 from the start: rate() over a series that appears with its first fault misses it.
        for code in [*CATALOGUE, PROVIDER_FAULT]:
            self.faults.labels(code)
        # Per-check series looked up once: `labels()` on every check of every message shows in profiles.
        self._check_series: dict[str, object] = {}

    def service(self, service_id: str | None) -> str:
        return service_id if service_id in self.services else UNKNOWN

    def observe_check(self, check: str, seconds: float) -> None:
        series = self._check_series.get(check)
        if series is None:
            series = self._check_series.setdefault(check, self.check_seconds.labels(check))
        series.observe(seconds)

    def observe_request(self, address: str, service_id: str | None, fault_code: str | None, seconds: float) -> None:
        self.request_seconds.labels(address, self.service(service_id), outcome(fault_code)).observe(seconds)
        if fault_code:
            self.faults.labels(fault_code if fault_code in CATALOGUE else PROVIDER_FAULT).inc()

    def watch_store(self, read: Callable[[], "StoreFigures"], clock: Callable[[], datetime]) -> None:
        """Queue depth, oldest pending age and journal size, read from the store at each scrape."""
        self.registry.register(StoreCollector(read, clock, self))

    def watch_deadlines(self, read: Callable[[], dict[tuple[str, str], int]]) -> None:
        """Regulation §14: requests whose deadline was kept or missed, per clinic, read at each scrape. `read` is
        the portal's (the composition root passes it: this module knows no party)."""
        self.registry.register(DeadlineCollector(read))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class StoreFigures:
    """What one scrape reads from the store: pending messages per service (count, oldest created_at) and the
    journal's record count."""

    def __init__(self, pending: dict[str, tuple[int, datetime]], journal_records: int):
        self.pending = pending
        self.journal_records = journal_records


class StoreCollector(Collector):
    def __init__(self, read: Callable[[], StoreFigures], clock: Callable[[], datetime], metrics: Metrics):
        self.read = read
        self.clock = clock
        self.metrics = metrics

    def describe(self):
        # Registration must not query the store: describe() is what the registry calls then.
        return []

    def collect(self):
        reachable = GaugeMetricFamily("shep_store_up", "1 when this scrape could read the store, else 0")
        try:
            figures = self.read()
        except Exception as error:  # any driver's failure: the scrape still answers, saying so
            log.warning("metrics: the store could not be read: %s", error)
            reachable.add_metric([], 0)
            yield reachable
            return
        reachable.add_metric([], 1)
        yield reachable
        depth = GaugeMetricFamily("shep_async_queue_messages",
                                  "AsyncChannel messages awaiting delivery (ON_DELIVERY), by service",
                                  labels=["service"])
        age = GaugeMetricFamily("shep_async_queue_oldest_age_seconds",
                                "Age of the oldest AsyncChannel message awaiting delivery, by service (0: none)",
                                labels=["service"])
        now = self.clock()
        by_service: dict[str, tuple[int, float]] = {service: (0, 0.0) for service in self.metrics.async_services}
        for service_id, (count, oldest) in figures.pending.items():
            label = self.metrics.service(service_id)
            known, seconds = by_service.get(label, (0, 0.0))
            by_service[label] = (known + count, max(seconds, (now - oldest).total_seconds()))
        for service, (count, seconds) in sorted(by_service.items()):
            depth.add_metric([service], count)
            age.add_metric([service], max(0.0, seconds))
        yield depth
        yield age
        records = GaugeMetricFamily("shep_journal_records", "Records in the hash-chained journal")
        records.add_metric([], figures.journal_records)
        yield records


class DeadlineCollector(Collector):
    def __init__(self, read: Callable[[], dict[tuple[str, str], int]]):
        self.read = read

    def describe(self):
        return []  # registration must not query the store

    def collect(self):
        family = GaugeMetricFamily("shep_service_deadlines",
                                   "Requests answered by the deadline the portal shows (kept) or not (missed: "
                                   "answered late, or still open past it), per clinic BIN",
                                   labels=["clinic", "outcome"])
        try:
            figures = self.read()
        except Exception as error:  # shep_store_up says the store is down; this family is left out
            log.warning("metrics: the service deadlines could not be read: %s", error)
            return
        for (clinic, outcome_), count in sorted(figures.items()):
            family.add_metric([clinic, outcome_], count)
        yield family
