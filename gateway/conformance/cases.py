"""The conformance catalogue: one TOML file per case, read and checked before anything is sent."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent / "cases"
MODES = ("provider", "client")
_KEYS = {"id", "title", "clause", "required", "probe", "params", "order", "channels"}
CHANNELS = ("sync", "async")


class CaseError(ValueError):
    """A case file that cannot be run: its path and what is wrong."""


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    clause: str  # the contract's words or section the case holds the system to
    probe: str  # the name of a function in conformance.probes
    required: bool = True  # a failed optional case is reported but does not fail the run
    params: dict = field(default_factory=dict)
    order: int = 100
    channels: tuple[str, ...] = CHANNELS  # the services it applies to: sync (SendMessage), async (the push)


def load(mode: str, folder: Path | None = None, known_probes: frozenset[str] = frozenset()) -> list[Case]:
    """The cases of `mode`, in their `order` then by id; CaseError names the first bad file."""
    folder = folder or HERE / mode
    cases = []
    for path in sorted(folder.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CaseError(f"{path}: {exc}") from None
        unknown = set(data) - _KEYS
        missing = {"id", "title", "clause", "probe"} - set(data)
        if unknown or missing:
            raise CaseError(f"{path}: " + "; ".join(
                [f"unknown key {k!r}" for k in sorted(unknown)] + [f"{k!r} is required" for k in sorted(missing)]))
        if data["id"] != path.stem:
            raise CaseError(f"{path}: id {data['id']!r} must be the file's name")
        if known_probes and data["probe"] not in known_probes:
            raise CaseError(f"{path}: no probe {data['probe']!r} (known: {', '.join(sorted(known_probes))})")
        bad = set(data.get("channels", CHANNELS)) - set(CHANNELS)
        if bad:
            raise CaseError(f"{path}: channels may be {', '.join(CHANNELS)}, not {', '.join(sorted(bad))}")
        cases.append(Case(**{**data, "channels": tuple(data.get("channels", CHANNELS))}))
    if not cases:
        raise CaseError(f"{folder}: no case files (*.toml)")
    return sorted(cases, key=lambda case: (case.order, case.id))
