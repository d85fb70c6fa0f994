"""The benchmark convention shared by every ``benchmarks/<name>.py``.

A benchmark runs fusionrec and its peers in one process on the same split, then calls
:func:`write_results`, which

* appends one JSON record per (library, model, dataset, split) run to ``benchmarks/results/<name>.json``
  (library and version, model, hyper-parameters, dataset, split, every metric, fit / predict seconds,
  peak memory, machine), replacing the records of the previous run of the same benchmark, and
* rewrites that benchmark's section of ``benchmarks/RESULTS.md`` as a table.

The data directory comes from ``--data-dir`` or ``FUSIONREC_DATA_DIR``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"


def parse_args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("FUSIONREC_DATA_DIR", str(HERE.parent.parent / "shared" / "data")),
        help="directory holding the shared datasets (default: $FUSIONREC_DATA_DIR or ../shared/data)",
    )
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run (for smoke tests)")
    if extra:
        extra(parser)
    args = parser.parse_args()
    args.data_dir = Path(args.data_dir)
    if not args.data_dir.is_dir():
        parser.error(f"data directory {args.data_dir} does not exist; pass --data-dir")
    return args


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class PeakRSS:
    """Samples the current RSS in a thread and reports the peak above the starting level (MB).

    ``ru_maxrss`` only grows, so per-model peaks need sampling; this reads /proc/self/statm.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0.0
        self.base = 0.0
        self._stop = threading.Event()

    @staticmethod
    def _current() -> float:
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[1])
            return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
        except OSError:
            return rss_mb()

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self._current()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._current())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._current())

    @property
    def delta_mb(self) -> float:
        return round(self.peak - self.base, 1)


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """``with timed() as t: ...`` then ``t["seconds"]``."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    yield out
    out["seconds"] = time.perf_counter() - start


@dataclass
class Record:
    library: str
    library_version: str
    model: str
    dataset: str
    split: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    fit_seconds: float | None = None
    predict_seconds: float | None = None
    peak_memory_mb: float | None = None
    notes: str = ""


def library_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:.1f}"
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
    return str(v)


def write_results(
    name: str,
    records: list[Record],
    *,
    metric_columns: list[str],
    title: str,
    command: str,
    notes: str = "",
) -> None:
    """Store the run's records and rewrite this benchmark's section of RESULTS.md."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    mach = machine()
    payload = {
        "benchmark": name,
        "run_at": now,
        "machine": mach,
        "command": command,
        "records": [asdict(r) for r in records],
    }
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")

    header = ["library", "model", "dataset", "split", *metric_columns, "fit s", "predict s", "peak MB"]
    lines = [
        f"## {title}",
        "",
        f"`{command}` — run {now} on {mach['cpu']}, {mach['cores']} cores, {mach['memory_gb']} GB, "
        f"Python {mach['python']}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for r in records:
        row = [
            f"{r.library} {r.library_version}",
            r.model,
            r.dataset,
            r.split,
            *[_fmt(r.metrics.get(c)) for c in metric_columns],
            _fmt(r.fit_seconds),
            _fmt(r.predict_seconds),
            _fmt(r.peak_memory_mb),
        ]
        lines.append("| " + " | ".join(row) + " |")
    if notes:
        lines += ["", notes]
    section = "\n".join(lines) + "\n"

    start_tag, end_tag = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    text = (
        RESULTS_MD.read_text()
        if RESULTS_MD.exists()
        else "# Benchmark results\n\nEach section is rewritten by its benchmark script.\n"
    )
    block = f"{start_tag}\n{section}{end_tag}"
    if start_tag in text and end_tag in text:
        before, rest = text.split(start_tag, 1)
        _, after = rest.split(end_tag, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS_MD.write_text(text)
