"""Prometheus metrics of one gateway process (its own registry, so several apps can coexist in tests)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shep_requests", "SendMessage requests by service, sender and fault code ('' when answered)",
            ["channel", "service", "sender", "fault_code"], registry=self.registry)
        self.check_seconds = Histogram(
            "shep_check_seconds", "Time spent in each pipeline check", ["check"],
            buckets=_BUCKETS, registry=self.registry)
        self.hop_seconds = Histogram(
            "shep_hop_seconds", "Time per hop: request-in, provider, response-in, total", ["hop"],
            buckets=_BUCKETS, registry=self.registry)

        # Per-check series looked up once: `labels()` on every check of every message shows in profiles.
        self._check_series: dict[str, object] = {}

    def observe_check(self, check: str, seconds: float) -> None:
        series = self._check_series.get(check)
        if series is None:
            series = self._check_series.setdefault(check, self.check_seconds.labels(check))
        series.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
