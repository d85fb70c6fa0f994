"""Compare two runs of a benchmark's results JSON record by record (library, model, dataset, split).

Run: python benchmarks/compare_results.py BEFORE.json AFTER.json [--decimals 4]

Prints, for every record of BEFORE, the metrics that differ in AFTER at the given number of decimals, the records
missing from AFTER, and the records whose hyper-parameters changed (renamed parameters show up here), then a count.
Used to show that a refactoring left a benchmark's figures unchanged (issue 19).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

Key = tuple[Any, Any, Any, Any]


def _records(path: Path) -> dict[Key, dict[str, Any]]:
    raw = json.loads(path.read_text())
    recs = raw.get("records", raw) if isinstance(raw, dict) else raw
    return {(r.get("library"), r.get("model"), r.get("dataset"), r.get("split")): r for r in recs}


def compare(before: Path, after: Path, decimals: int = 4) -> tuple[int, list[str]]:
    """``(number of equal metrics, lines describing every difference)``."""
    old, new = _records(before), _records(after)
    equal, lines = 0, []
    for key, rec in old.items():
        other = new.get(key)
        if other is None:
            lines.append(f"missing after: {key}")
            continue
        for name, value in rec.get("metrics", {}).items():
            got = other.get("metrics", {}).get(name)
            if not isinstance(value, int | float) or not isinstance(got, int | float):
                continue
            if round(value, decimals) == round(got, decimals):
                equal += 1
            else:
                lines.append(f"{key[1]} | {key[3]} | {name}: {value:.{decimals}f} -> {got:.{decimals}f}")
        if rec.get("params") != other.get("params"):
            lines.append(f"params of {key[1]} | {key[3]}: {rec.get('params')} -> {other.get('params')}")
    return equal, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--decimals", type=int, default=4)
    args = parser.parse_args()
    equal, lines = compare(args.before, args.after, args.decimals)
    for line in lines:
        print(line)
    metric_lines = [x for x in lines if not x.startswith(("params", "missing"))]
    print(f"{equal} metrics equal to {args.decimals} decimals, {len(metric_lines)} different")


if __name__ == "__main__":
    main()
