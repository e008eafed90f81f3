"""`python -m simulators.gbdfl`: list the registry's people, to find IINs to query (docs/gbdfl.md)."""
from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from simulators.gbdfl.population import DEFAULT_SEED, DEFAULT_SIZE, EDGE_CASES, REFERENCE_DATE, build_population


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.gbdfl", description=__doc__)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="generated people (0: only --file)")
    parser.add_argument("--reference-date", type=date.fromisoformat, default=REFERENCE_DATE)
    parser.add_argument("--file", type=Path, action="append", default=[], help="people file (.json or .csv)")
    parser.add_argument("--edge", choices=[*EDGE_CASES, "minor"], help="only this edge case")
    parser.add_argument("--limit", type=int, default=20, help="print at most this many (0: all)")
    args = parser.parse_args(argv)
    try:
        population = build_population(args.seed, args.size, args.file, reference_date=args.reference_date)
    except (OSError, ValueError) as exc:
        print(f"python -m simulators.gbdfl: {exc}", file=sys.stderr)
        return 2
    if args.edge == "minor":
        people = population.minors()
    else:
        people = population.edge_cases(args.edge) if args.edge else list(population)
    for person in people[:args.limit or None]:
        where = person.reg_address.district.key if person.reg_address else "-"
        marks = ",".join(sorted(person.edges)) or "-"
        print("\t".join((person.iin, f"{person.surname} {person.name} {person.patronymic or ''}".strip(),
                         person.birth_date.isoformat(), person.sex, where, marks, ",".join(person.parents) or "-")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
