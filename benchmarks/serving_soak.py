"""Soak: a server under a mix of reads, writes, deletions, item posts and retrains for ``--minutes``, its memory
(RSS) and open file descriptors sampled every 2 s; per minute: requests, answers by kind, p50 / p99 read latency,
RSS and descriptors.

The bundle is ALS (64 factors) on the synthetic log of ``serving_ingest.py`` (610 users, 9,700 items, ~100k
interactions); one uvicorn server process serves it with a SQLite store (synchronous=FULL).  The client
(``_loadgen``: open loop, latency from each request's due time) sends ``--rate`` requests/s: 75% ``GET /recommend``
(bundle users and soak users), 5% ``GET /similar``, 12% ``POST /events`` (one to three events; soak users
``soak-0`` .. ``soak-{pool}`` on bundle items and on posted items), 3% ``DELETE /users/{user}`` (a soak user that
posted), 5% ``POST /items`` (``soak-item-0`` .. ``-{pool}``, posted again and again), and ``POST /admin/retrain``
every ``--retrain-every`` seconds.  The pools bound what the service must hold, so memory should plateau: the bound
checked is RSS at the end <= ``--rss-bound`` x the median RSS of the second minute (after the first retrain) and
open descriptors with no client connected, 1 s after the load, <= those before it + 8.

Run: python benchmarks/serving_soak.py [--minutes 10] [--rate 40] [--smoke] (--smoke: a 20-second run on a tiny
bundle, for tests/test_benchmarks_smoke.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import running_server, serve_child_from_argv

#: answers that are part of the protocol for each kind (anything else counts as an error)
EXPECTED = {
    "recommend": {200, 404},  # a soak user that was deleted or never posted: 404
    "similar": {200},
    "events": {200},
    "delete": {204, 404},  # deleted twice by the random choice: 404
    "item": {200, 201},
    "retrain": {202, 409},  # 409: one still running
}


def server_pid(port: int) -> int:
    """The pid of the ``--serve-child`` process listening on ``port`` (read from /proc)."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--serve-child" in argv and str(port).encode() in argv:
            return int(d.name)
    raise RuntimeError(f"no server process on port {port}")


def sample(pid: int) -> tuple[float, int]:
    """(RSS MB, open file descriptors) of ``pid``."""
    rss = float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            rss = int(line.split()[1]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def soak(base: str, seconds: float, rate: float, retrain_every: float, pool: int, seed: int = 0) -> dict[str, Any]:
    import httpx
    from _loadgen import run_open_loop

    port = int(base.rsplit(":", 1)[1])
    pid = server_pid(port)
    first = httpx.get(f"{base}/recommend", params={"user": 0, "k": 1000}, timeout=60).json()["items"]
    bundle_items = [x["item"] for x in first]
    n_users = httpx.get(f"{base}/health", timeout=60).json()["users"]
    rng = np.random.default_rng(seed)
    kinds: dict[int, str] = {}
    posted_users: set[str] = set()
    posted_items: list[str] = []
    posting: dict[int, str] = {}  # request number -> the item it posts
    retrain_due = [retrain_every]
    t0 = time.perf_counter()

    def make(j: int) -> Any:
        now = time.perf_counter() - t0
        if now >= retrain_due[0]:
            retrain_due[0] += retrain_every
            kinds[j] = "retrain"
            return "POST", "/admin/retrain", None, {}
        x = rng.random()
        if x < 0.75:
            kinds[j] = "recommend"
            user = f"soak-{rng.integers(pool)}" if rng.random() < 0.3 else str(rng.integers(n_users))
            return "GET", "/recommend", {"user": user, "k": 10}, None
        if x < 0.80:
            kinds[j] = "similar"
            return "GET", f"/similar/{bundle_items[rng.integers(len(bundle_items))]}", {"k": 10}, None
        if x < 0.92:
            kinds[j] = "events"
            user = f"soak-{rng.integers(pool)}"
            posted_users.add(user)
            evs = []
            for _ in range(int(rng.integers(1, 4))):
                on_posted = posted_items and rng.random() < 0.2
                item = posted_items[rng.integers(len(posted_items))] if on_posted else None
                evs.append({"user": user, "item": item or bundle_items[rng.integers(len(bundle_items))]})
            return "POST", "/events", None, {"events": evs}
        if x < 0.95 and posted_users:
            kinds[j] = "delete"
            user = sorted(posted_users)[rng.integers(len(posted_users))]
            posted_users.discard(user)
            return "DELETE", f"/users/{user}", None, None
        kinds[j] = "item"
        item = f"soak-item-{rng.integers(pool)}"
        posting[j] = item
        return "POST", "/items", None, {"item": item, "title": f"Soak item {item}"}

    results: list[tuple[str, int, float, float]] = []
    samples: list[tuple[float, float, int]] = []

    def on_result(j: int, status: int, due: float, ms: float) -> None:
        results.append((kinds.pop(j), status, due, ms))
        item = posting.pop(j, None)
        if item is not None and status in EXPECTED["item"] and item not in posted_items:
            posted_items.append(item)  # events name an item only once its post was answered

    def tick() -> None:
        rss, fds = sample(pid)
        samples.append((time.perf_counter() - t0, rss, fds))

    idle_before = sample(pid)
    _, _, elapsed = asyncio.run(
        run_open_loop([port], make, rate, seconds, int(rate * seconds) + 10, on_tick=tick, on_result=on_result)
    )
    time.sleep(1.0)  # the client's connections are closed: the server's side closes too
    idle_after = sample(pid)
    status = httpx.get(f"{base}/admin/retrain", timeout=60).json()
    while status["state"] == "running":  # the last retrain, finished
        time.sleep(1.0)
        status = httpx.get(f"{base}/admin/retrain", timeout=60).json()
    return {
        "retrain_status": status,
        "results": results,
        "samples": samples,
        "elapsed": elapsed,
        "idle_before": idle_before,
        "idle_after": idle_after,
    }


def per_minute(run: dict[str, Any], minute_s: float = 60.0) -> list[dict[str, float]]:
    """One row per minute (the last one partial): answers, unexpected answers, read latency, RSS, descriptors."""
    rows: dict[int, dict[str, Any]] = defaultdict(lambda: {"reads": [], "codes": Counter(), "unexpected": 0})
    for kind, status, due, ms in run["results"]:
        row = rows[int(due // minute_s)]
        row["codes"][kind] += 1
        if kind in ("recommend", "similar"):
            row["reads"].append(ms)
        if status not in EXPECTED[kind]:
            row["unexpected"] += 1
            row["codes"][f"{kind} {status}"] += 1
    mem: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for t, rss, fds in run["samples"]:
        mem[min(int(t // minute_s), max(rows))].append((rss, fds))
    out = []
    for m in sorted(rows):
        r = rows[m]
        reads = np.asarray(r["reads"] or [float("nan")])
        ms = mem.get(m) or [(float("nan"), 0)]
        out.append(
            {
                "minute": float(m + 1),
                "requests": float(sum(v for k, v in r["codes"].items() if " " not in k)),
                "reads": float(len(r["reads"])),
                "events_posts": float(r["codes"]["events"]),
                "deletions": float(r["codes"]["delete"]),
                "item_posts": float(r["codes"]["item"]),
                "retrains": float(r["codes"]["retrain"]),
                "unexpected": float(r["unexpected"]),
                "read_p50_ms": float(np.percentile(reads, 50)),
                "read_p99_ms": float(np.percentile(reads, 99)),
                "rss_mb": float(np.median([x for x, _ in ms])),
                "rss_max_mb": float(max(x for x, _ in ms)),
                "fds": float(max(f for _, f in ms)),
                "_unexpected_codes": {k: v for k, v in r["codes"].items() if " " in k},  # type: ignore[dict-item]
            }
        )
    return out


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return float("nan")
    x, y = np.asarray(points).T
    return float(np.polyfit(x, y, 1)[0])


def main() -> None:
    import serving_ingest
    from _common import Record, library_version, write_results

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second")
    parser.add_argument("--retrain-every", type=float, default=60.0, help="seconds between POST /admin/retrain")
    parser.add_argument("--pool", type=int, default=500, help="soak users and soak items")
    parser.add_argument("--rss-bound", type=float, default=1.25, help="end RSS / median RSS of minute 2")
    parser.add_argument("--smoke", action="store_true", help="20 s on a tiny bundle (tests/test_benchmarks_smoke.py)")
    args = parser.parse_args()
    minute_s = 60.0
    sizes: dict[str, int] = {}
    if args.smoke:
        args.minutes, args.retrain_every, args.pool, minute_s = 20 / 60, 6.0, 30, 5.0
        sizes = {"n_users": 100, "n_items": 300, "nnz": 3_000}
    with tempfile.TemporaryDirectory(prefix="fusionrec-soak-") as tmp:
        bundle = serving_ingest.build_bundle(Path(tmp) / "bundle", **sizes)
        with running_server(__file__, bundle, f"sqlite:///{tmp}/events.db", start_timeout_s=300) as base:
            run = soak(base, args.minutes * 60, args.rate, args.retrain_every, args.pool)
    rows = per_minute(run, minute_s)
    total = Counter(k for k, _, _, _ in run["results"])
    bad = Counter(f"{k} {s}" for k, s, _, _ in run["results"] if s not in EXPECTED[k])
    ref = rows[1] if len(rows) > 1 else rows[0]
    rss_end, fds_end = run["idle_after"]
    rss_ok = rss_end <= args.rss_bound * ref["rss_mb"]
    fds_ok = fds_end <= run["idle_before"][1] + 8
    version = library_version("fusionrec")
    dataset = "synthetic ALS bundle" + (" (smoke)" if args.smoke else " 610 users x 9,700 items")
    params = {"rate": args.rate, "retrain_every_s": args.retrain_every, "pool": args.pool}
    records = [
        Record(
            "fusionrec",
            version,
            f"minute {int(r['minute'])}" if not args.smoke else f"{minute_s:.0f}-s bucket {int(r['minute'])}",
            dataset,
            f"soak {args.minutes:g} min",
            params,
            {k: v for k, v in r.items() if not k.startswith("_")},
            notes=", ".join(f"{k}: {v}" for k, v in r["_unexpected_codes"].items()),
        )
        for r in rows
    ]
    summary = {
        "requests": float(len(run["results"])),
        "unexpected": float(sum(bad.values())),
        "rss_start_mb": run["idle_before"][0],
        "rss_ref_mb": ref["rss_mb"],
        "rss_end_mb": rss_end,
        "rss_max_mb": max(s[1] for s in run["samples"]),
        "fds_start": float(run["idle_before"][1]),
        "fds_end": float(fds_end),
        "fds_max": float(max(s[2] for s in run["samples"])),
        "bound_met": float(rss_ok and fds_ok),
        # least-squares slope of the RSS samples from minute 2 on (after the first retrain), MB per minute
        "rss_slope_mb_per_min": _slope([(t / minute_s, r) for t, r, _ in run["samples"] if t >= minute_s]),
        "retrains_run": float(run["retrain_status"]["runs"]),
        "read_p99_ms": float(
            np.percentile([ms for k, _, _, ms in run["results"] if k in ("recommend", "similar")], 99)
        ),
    }
    records.append(
        Record(
            "fusionrec",
            version,
            "whole run",
            dataset,
            f"soak {args.minutes:g} min",
            params,
            summary,
            notes=(
                f"requests by kind {dict(total)}; unexpected answers {dict(bad) or 'none'}; retrains run "
                f"{run['retrain_status']['runs']}, last state {run['retrain_status']['state']} "
                f"(last error: {run['retrain_status']['last_error']})"
            ),
        )
    )
    cols = [
        "requests",
        "reads",
        "events_posts",
        "deletions",
        "item_posts",
        "retrains",
        "unexpected",
        "read_p50_ms",
        "read_p99_ms",
        "rss_mb",
        "fds",
        "rss_ref_mb",
        "rss_end_mb",
        "rss_slope_mb_per_min",
        "retrains_run",
        "fds_start",
        "fds_end",
        "bound_met",
    ]
    cmd = "python benchmarks/serving_soak.py" + (
        " --smoke" if args.smoke else f" --minutes {args.minutes:g} --rate {args.rate:g}"
    )
    write_results(
        "serving_soak",
        records,
        metric_columns=cols,
        title="Serving soak (reads, writes, deletions, item posts, retrains; RSS and descriptors sampled)",
        command=cmd,
        notes=(
            f"One uvicorn server process and the client share the 2 cores with other jobs. Mix per request: 75% "
            f"GET /recommend, 5% GET /similar, 12% POST /events (1-3 events, {args.pool} soak users), 3% DELETE "
            f"/users/{{user}}, 5% POST /items ({args.pool} soak items, re-posted), plus POST /admin/retrain every "
            f"{args.retrain_every:g} s (ALS refit in the server's background thread). 'unexpected': answers outside "
            "the protocol (5xx, timeouts, 4xx other than a 404 for a deleted or unknown soak user, a 409 for a "
            f"retrain still running). 'fds' counts the client's open connections too (up to 64); 'fds_start' / "
            "'fds_end' are taken with no client connected, before and 1 s after the load. Bound: RSS at the end <= "
            f"{args.rss_bound:g} x the median RSS of minute 2 (after the first retrain) and descriptors at the end <= "
            "at the start + 8; 'bound_met' 1 = held."
        ),
    )
    for r in records:
        print(r.model, {k: round(v, 2) for k, v in r.metrics.items()}, r.notes)
    if any(s >= 500 for _, s, _, _ in run["results"]):
        sys.exit(f"server errors: {dict(bad)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-child":
        serve_child_from_argv(sys.argv[2:])
    else:
        main()
