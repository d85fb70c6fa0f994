"""Schema-driven fuzzing of the HTTP API with schemathesis: every operation of /openapi.json, every check
(server errors, response schema conformance, status codes and content types the schema declares, ...), against
one uvicorn server on 127.0.0.1 serving ALS on a small synthetic catalogue (with titles, genres and dense item
features, so that POST /items content is exercised), writes authorised with the API key.  Afterwards a retrain
must succeed (the service stays retrainable whatever was accepted).
Run: python benchmarks/serving_fuzz.py [--quick] (--max-examples per operation: 300, 40 with --quick).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import running_server, serve_child_from_argv

KEY = "fuzz-key"


def build_bundle(path: Path) -> Path:
    from fusionrec.data.interactions import Interactions
    from fusionrec.models.mf.als import ALS
    from fusionrec.serving import save_bundle

    rng = np.random.default_rng(0)
    n_users, n_items = 200, 300
    users = rng.integers(0, n_users, 4000)
    items = rng.integers(0, n_items, 4000)
    key = np.unique(users.astype(np.int64) * n_items + items)
    train = Interactions.from_arrays(key // n_items, key % n_items, None, explicit=False)
    model = ALS(n_factors=16, epochs=3).fit(train)
    ids = train.item_ids.ids.tolist()
    meta = {
        "title": [f"Item {x}" for x in ids],
        "genres": [["Comedy"] if j % 2 else ["Drama", "Horror"] for j in range(len(ids))],
    }
    feats = rng.normal(size=(len(ids), 8)).astype(np.float32)
    return save_bundle(path, model, train, meta, item_features=feats)


def run(max_examples: int) -> dict[str, float]:
    import httpx

    cli = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    with tempfile.TemporaryDirectory() as tmp:
        bundle = build_bundle(Path(tmp) / "bundle")
        with running_server(
            __file__,
            bundle,
            f"sqlite:///{tmp}/events.db",
            settings={"api_key": KEY},
            start_timeout_s=120,
            stderr=subprocess.PIPE,
        ) as base:
            junit = Path(tmp) / "junit.xml"
            t0 = time.perf_counter()
            out = subprocess.run(
                [
                    cli, "run", f"{base}/openapi.json",
                    "--checks", "all",
                    "-H", f"X-API-Key: {KEY}",
                    "--max-examples", str(max_examples),
                    "--seed", "1",
                    "--report", "junit", "--report-junit-path", str(junit),
                    "--no-color",
                ],
                capture_output=True, text=True, timeout=3000,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            text = out.stdout + out.stderr
            failures = text.find("FAILURES")
            print(text[failures : failures + 8000] if failures >= 0 else "", text[-1500:], sep="\n")
            cases = ET.parse(junit).getroot().iter("testcase")
            n_ops = n_failed = 0
            for case in cases:
                n_ops += 1
                n_failed += any(child.tag in ("failure", "error") for child in case)
            Path(tmp, "out.txt").write_text(text)
            found = {
                f"{code} {name.strip()}": int(n) for code, name, n in re.findall(r"(ST\d+) ([^:\n]+): (\d+)", text)
            }
            server_errors = sum(n for k, n in found.items() if "server error" in k.lower())
            accepted_invalid = sum(n for k, n in found.items() if k.startswith("ST201"))
            rejected_valid = sum(n for k, n in found.items() if k.startswith("ST202"))
            mismatches = sum(found.values()) - server_errors - accepted_invalid - rejected_valid
            print("failures by check:", found)
            requests = _requests(text)
            r = httpx.post(f"{base}/admin/retrain", params={"wait": True}, headers={"X-API-Key": KEY}, timeout=600)
            status = httpx.get(f"{base}/health").json()
            return {
                "operations": float(n_ops),
                "requests": float(requests),
                "failed_operations": float(n_failed),
                "server_errors": float(server_errors),
                "schema_mismatches": float(mismatches),
                "invalid_accepted": float(accepted_invalid),
                "valid_rejected": float(rejected_valid),
                "retrain_after": 1.0 if r.status_code == 202 and status["retrain"]["state"] == "idle" else 0.0,
                "users_after": float(status["users"]),
                "items_after": float(status["items"]),
                "seconds": seconds,
                "schemathesis_rc": float(out.returncode),
            }


def _count(text: str, pattern: str) -> int:
    return len(re.findall(pattern, text))


def _requests(text: str) -> int:
    m = re.search(r"(\d[\d,]*) generated", text)
    return int(m.group(1).replace(",", "")) if m else 0


def main() -> None:
    from _common import Record, library_version, write_results

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    n = 40 if args.quick else 300
    m = run(n)
    print(json.dumps(m, indent=1))
    if args.no_write:
        return
    rec = Record(
        library="fusionrec",
        library_version=library_version("fusionrec"),
        model=f"schemathesis {library_version('schemathesis')} --checks all, {n} examples per operation",
        dataset="ALS, synthetic 200 users x 300 items, titles, genres, dense item features",
        split="every operation of /openapi.json",
        metrics=m,
    )
    name = "serving_fuzz" + ("_quick" if args.quick else "")
    write_results(
        name,
        [rec],
        metric_columns=list(m),
        title="Serving: schema-driven fuzzing (schemathesis)" + (" — quick" if args.quick else ""),
        command="python benchmarks/serving_fuzz.py" + (" --quick" if args.quick else ""),
        notes=(
            "One uvicorn server on 127.0.0.1, writes sent with the API key; the schema is the served one, narrowed to "
            "the bundle (value range, feature width, modalities, metadata columns). server_errors counts unique 5xx "
            "failures, schema_mismatches answers whose body, status code, content type or Allow header the OpenAPI "
            "schema does not declare. invalid_accepted (ST201) and valid_rejected (ST202) are schemathesis' "
            "input-validation checks: what they still report is listed in the output (e.g. a request over the 1 MB "
            "body limit answered 413, which ST201 does not count as a rejection; rules the schema cannot state, "
            "such as a file existing under the content root). failed_operations are operations where any check failed. retrain_after = 1: POST /admin/retrain?wait=true "
            "succeeded on everything the fuzzing stored. The property-based test tests/serving/test_fuzz.py runs "
            "in the test suite."
        ),
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-child":
        serve_child_from_argv(sys.argv[2:])
    else:
        main()
