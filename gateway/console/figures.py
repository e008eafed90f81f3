"""The console's live figures: every `shep_*` metric family of this process's Prometheus registry, shown
generically (a heading per family, its labels as columns), so families added later show with no change
here; and messages per second over the journal's last minute.

Histograms show their `_count` and `_sum` per label set (the buckets belong to a dashboard); counters
their `_total`. The registry is one process's: with several worker processes each page shows the
worker that served it, while messages/s, read from the journal, counts them all.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

PREFIX = "shep_"
WINDOW = timedelta(minutes=1)
_SHOWN_SUFFIXES = ("", "_total", "_count", "_sum")


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # counter, gauge, histogram, …
    help: str
    labels: list[str]  # the columns
    rows: list[tuple[list[str], str, float]]  # label values, the sample's suffix, value


def families(registry) -> list[Family]:
    """The registry's `shep_*` families, sorted by name, their rows by label values."""
    found = []
    for metric in registry.collect():
        if not metric.name.startswith(PREFIX):
            continue
        labels: list[str] = []
        for sample in metric.samples:
            for name in sample.labels:
                if name != "le" and name not in labels:
                    labels.append(name)
        rows = []
        for sample in metric.samples:
            suffix = sample.name[len(metric.name):]
            if suffix not in _SHOWN_SUFFIXES:
                continue
            rows.append(([sample.labels.get(name, "") for name in labels], suffix, sample.value))
        rows.sort(key=lambda row: (row[0], row[1]))
        found.append(Family(metric.name, metric.type, metric.documentation, labels, rows))
    return sorted(found, key=lambda family: family.name)


def faults_by_code(registry) -> list[tuple[str, float]]:
    """The fault codes answered at least once, most first (from `shep_faults`)."""
    counts = [(row[0][0], row[2]) for family in families(registry) if family.name == "shep_faults"
              for row in family.rows if row[1] == "_total" and row[2] > 0]
    return sorted(counts, key=lambda item: (-item[1], item[0]))


def messages_per_second(journal, now: datetime) -> tuple[int, float]:
    """(requests received in the last minute, per second): the journal's request-in hops, every worker's."""
    count = journal.count(hop="request-in", since=now - WINDOW)
    return count, count / WINDOW.total_seconds()


def number(value: float) -> str:
    """A sample as the tables show it: integers without a fraction, others to four significant digits."""
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"
