"""Long item documents through all-MiniLM-L6-v2: fusionrec's SentenceEncoder before and after issue 22.

Corpus: 100 documents of about 8,000 characters (about 2,000 MiniLM tokens each, 8 windows of 254 tokens), built
from real English text on disk: the project descriptions (the README shown on each package's index page) of the
Python distributions installed beside fusionrec, stripped of code blocks, links, badges and markup, in name order,
concatenated and cut into 8,000-character documents at word boundaries (an item described by several texts, like
an item described by its reviews).  Which distributions are installed changes the corpus a little; the token and
window counts are in the table.

Timing (torch on 2 threads, the model loaded and warmed outside the timed part, cache off): the documents are
taken in chunks of 8 (about 64 windows, one batch) and every variant encodes a chunk back to back, the order
rotated, so a change of load on the shared machine hits all variants alike; a round is all chunks, repeated
``--repeats`` times.  The table gives the median round time and the speed-up over fusionrec before this change
(``--before``: the encoder module of that commit, read with ``git show``; skipped when git has no such commit) as
the median of the per-chunk ratios.  The peer is sentence-transformers' own ``encode`` over
the same 254-token windows (cut on the tokenizer's offsets) in one call, then averaged like fusionrec.

Quality: per-document cosine of each variant's vectors to the reference (the encoder before this change, or the
float32 path without it), and downstream: ContentKNN on ml-posters.coldstart-items with MiniLM text features
(title + genres + training tags, standardised) from the float32 and the int8 runtimes, the rating weighting tuned on
the cold valid items, NDCG@20 on the cold test items with a paired t-test and Wilcoxon test over users, per split
seed (``--seed 2026,1,2``).
Run: python benchmarks/long_text.py [--data-dir ../shared/data] [--seed 2026,1,2] [--repeats 3] [--quick] [--smoke]
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import (
    PeakRSS,
    Record,
    benchmark_split,
    library_version,
    paired,
    parse_args,
    write_results,
)

from fusionrec._similarity import normalize_rows

CHUNK = 8  # documents per timed unit: about 64 windows of 8,000-character documents, one batch
BEFORE = "807c8ce"  # the last commit before the one-pass encoder
SPLIT = "ml-posters.coldstart-items"
WEIGHTINGS = ("rating", "centered", "none")
METRICS = [
    "docs",
    "tokens/doc",
    "windows",
    "median s",
    "speed-up vs before",
    "cos min",
    "cos mean",
    "NDCG@20",
    "Recall@20",
    "valid NDCG@20",
    "diff vs float32",
    "t p",
    "wilcoxon p",
]


def _prose(text: str) -> str:
    text = re.sub(r"```.*?```", " ", text, flags=re.S)  # code blocks
    text = re.sub(r"^(    |\t|>>>|\.\.\.|\$ ).*$", " ", text, flags=re.M)  # indented code, prompts
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)  # images, badges
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links -> their words
    text = re.sub(r"<[^>]+>|https?://\S+|`", " ", text)  # html, bare addresses, backticks
    text = re.sub(r"^[#=*\-_|+: ]+$", " ", text, flags=re.M)  # rules, table lines
    text = re.sub(r"[#*|]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def corpus(n_docs: int, chars: int) -> list[str]:
    """``n_docs`` documents of about ``chars`` characters from the installed distributions' descriptions."""
    import importlib.metadata as md

    texts = set()
    for dist in md.distributions():
        raw = dist.metadata.get_payload() or dist.metadata.get("Description") or ""  # type: ignore[attr-defined]
        text = _prose(str(raw))
        if len(text) >= 200:
            texts.add((str(dist.metadata["Name"]).lower(), text))
    docs: list[str] = []
    current = ""
    for _, text in sorted(texts):
        current = f"{current} {text}".strip()
        while len(current) >= chars and len(docs) < n_docs:
            cut = current.rfind(" ", 0, chars)
            docs.append(current[:cut])
            current = current[cut:].strip()
        if len(docs) >= n_docs:
            break
    if len(docs) < n_docs:
        raise SystemExit(f"only {len(docs)} documents of {chars} characters in the installed descriptions")
    return docs


def before_module(commit: str) -> ModuleType | None:
    """fusionrec's text encoders as of ``commit`` (``git show``), or None without git or that commit."""
    root = Path(__file__).resolve().parent.parent
    try:
        src = subprocess.run(
            ["git", "show", f"{commit}:src/fusionrec/features/text.py"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp(prefix="fusionrec-before-")) / "text_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("fusionrec.features._text_before", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def st_windows(model, docs: list[str], width: int = 254) -> np.ndarray:
    """The peer: sentence-transformers ``encode`` over every 254-token window in one call, token-weighted mean."""
    enc = model.tokenizer(docs, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    pieces, owner, weight = [], [], []
    for j, offsets in enumerate(enc["offset_mapping"]):
        for s in range(0, max(len(offsets), 1), width):
            window = offsets[s : s + width]
            pieces.append(docs[j][window[0][0] : window[-1][1]] if window else docs[j])
            owner.append(j)
            weight.append(max(len(window), 1))
    vecs = model.encode(pieces, batch_size=64, convert_to_numpy=True, show_progress_bar=False)
    out = np.zeros((len(docs), vecs.shape[1]))
    np.add.at(out, np.asarray(owner), vecs * np.asarray(weight, dtype=float)[:, None])
    return normalize_rows(out.astype(np.float32))


def downstream(data_dir: Path, seed: int, records: list[Record], version: str) -> None:
    """ContentKNN on the cold items with float32 vs int8 MiniLM text features; paired test over test users."""
    from fusionrec.data import Interactions, Modality
    from fusionrec.data.datasets import load_ml_posters
    from fusionrec.evaluation import evaluate_ranking
    from fusionrec.features import PostProcess, SentenceEncoder, encode_modality
    from fusionrec.models import SideInfo
    from fusionrec.models.content import ContentKNN

    split = benchmark_split(SPLIT, data_dir, seed)
    ds = load_ml_posters(data_dir, train=split.train)
    item_ids = ds.item_ids
    title, _ = ds.item_modalities["title"].align(item_ids)
    genres, _ = ds.item_modalities["genres"].align(item_ids)
    tags, _ = ds.item_modalities["tags"].align(item_ids)
    texts = [
        " ".join([t or "", " ".join(g or []), (tg or "").replace(" | ", " ")]).strip()
        for t, g, tg in zip(title, genres, tags)
    ]
    mod = Modality("text", item_ids, texts)
    train, valid, test = split.train, split.valid, split.test
    valid_items = np.flatnonzero(valid.item_counts() > 0)
    test_items = np.flatnonzero(test.item_counts() > 0)
    train_valid = Interactions.concat([train, valid])
    per_user: dict[str, np.ndarray] = {}
    for runtime in ("torch", "int8"):
        start = time.perf_counter()
        out, _ = encode_modality(mod, SentenceEncoder(batch_size=64, max_length=128, runtime=runtime), cache=True)
        enc_s = time.perf_counter() - start
        arr, _ = out.align(item_ids)
        side = SideInfo(item_features={"minilm": PostProcess(method="standard").fit_transform(arr)})
        best, best_score = WEIGHTINGS[0], -1.0
        for w in WEIGHTINGS:
            m = ContentKNN(modalities=["minilm"], weighting=w).fit(train, side)
            score = evaluate_ranking(m, train, valid, k=20, metrics=("ndcg",), candidates=valid_items, exclude=[train])
            if score.metrics["NDCG@20"] > best_score:
                best, best_score = w, score.metrics["NDCG@20"]
        model = ContentKNN(modalities=["minilm"], weighting=best).fit(train_valid, side)
        res = evaluate_ranking(
            model, train_valid, test, k=20, metrics=("recall", "ndcg"), candidates=test_items, exclude=[train_valid]
        )
        per_user[runtime] = res.per_user["NDCG@20"]
        metrics = {"NDCG@20": res.metrics["NDCG@20"], "Recall@20": res.metrics["Recall@20"]}
        metrics["valid NDCG@20"] = best_score
        if runtime != "torch":
            test_p = paired(per_user[runtime], per_user["torch"])
            metrics.update(
                {"diff vs float32": test_p["diff"], "t p": test_p["t_p"], "wilcoxon p": test_p["wilcoxon_p"]}
            )
        records.append(
            Record(
                "fusionrec",
                version,
                f"ContentKNN[MiniLM runtime={runtime}]",
                "ml-posters",
                f"{SPLIT} seed {seed}",
                {"weighting": best, "max_length": 128, "runtime": runtime},
                metrics,
                notes=f"encoding {enc_s:.1f}s (feature cache; 0 when warm)",
            )
        )
        print(f"seed {seed} {runtime:6s} N@20={metrics['NDCG@20']:.4f} valid={best_score:.4f} {best}", flush=True)


def main() -> None:
    def extra(parser) -> None:
        parser.add_argument("--repeats", type=int, default=3, help="timing rounds (median reported)")
        parser.add_argument("--before", default=BEFORE, help="commit whose encoder is the baseline")

    args = parse_args(__doc__ or "", extra)
    import torch

    torch.set_num_threads(2)
    from fusionrec.features import SentenceEncoder

    n_docs, chars = (3, 1500) if args.smoke else (30, 8000) if args.quick else (100, 8000)
    repeats = 1 if args.smoke else args.repeats
    docs = corpus(n_docs, chars)
    version = library_version("fusionrec")
    old = before_module(args.before)
    new = SentenceEncoder(batch_size=64, max_length=256)
    model = new._load()
    n_tokens = [len(t) for t in model.tokenizer(docs, add_special_tokens=False, verbose=False)["input_ids"]]
    n_windows = sum(-(-n // 254) for n in n_tokens)

    variants = {}
    if old is not None:
        before = old.SentenceEncoder(batch_size=64, max_length=256)
        variants[f"SentenceEncoder before ({args.before})"] = before.transform
    else:
        print(f"no commit {args.before} in git: the float32 path of this version is the reference", flush=True)
    variants["sentence-transformers encode, all windows in one call"] = lambda d: st_windows(model, d)
    encoders = {
        "SentenceEncoder runtime=torch (default)": new,
        "SentenceEncoder runtime=int8": SentenceEncoder(batch_size=64, max_length=256, runtime="int8"),
        "SentenceEncoder runtime=int8, max_length=128": SentenceEncoder(batch_size=64, max_length=128, runtime="int8"),
    }
    variants.update({k: e.transform for k, e in encoders.items()})
    for fn in variants.values():
        fn(docs[:1])  # load and quantise outside the timed part
    # the machine is shared: every variant encodes the same chunk of documents back to back (order rotated), so a
    # change of load hits all variants alike; a round's time is the sum over its chunks
    seconds: dict[str, list[float]] = {k: [] for k in variants}
    chunk_seconds: dict[str, list[float]] = {k: [] for k in variants}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in variants}
    names = list(variants)
    chunks = [docs[s : s + CHUNK] for s in range(0, len(docs), CHUNK)]
    for r in range(repeats):
        for c, chunk in enumerate(chunks):
            turn = (r + c) % len(names)
            for name in names[turn:] + names[:turn]:
                start = time.perf_counter()
                vec = variants[name](chunk)
                chunk_seconds[name].append(time.perf_counter() - start)
                if r == 0:
                    parts[name].append(vec)
        for name in names:
            seconds[name].append(float(np.sum(chunk_seconds[name][-len(chunks) :])))
            print(f"round {r} {name:55s} {seconds[name][-1]:7.1f}s", flush=True)
    vectors = {k: np.concatenate(v) for k, v in parts.items()}
    ref_name = names[0] if old is not None else "SentenceEncoder runtime=torch (default)"
    ref = vectors[ref_name]
    ref_chunks = np.asarray(chunk_seconds[ref_name])
    records: list[Record] = []
    for name in names:
        cos = np.sum(vectors[name] * ref, axis=1)
        med = float(np.median(seconds[name]))
        metrics = {
            "docs": float(n_docs),
            "tokens/doc": float(np.mean(n_tokens)),
            "windows": float(n_windows),
            "median s": med,
            "speed-up vs before": float(np.median(ref_chunks / np.asarray(chunk_seconds[name]))),
            "cos min": float(cos.min()),
            "cos mean": float(cos.mean()),
        }
        records.append(
            Record(
                "sentence-transformers" if name.startswith("sentence-transformers") else "fusionrec",
                library_version("sentence-transformers") if name.startswith("sentence-transformers") else version,
                name,
                f"{n_docs} docs x {chars} chars",
                "-",
                {},
                metrics,
                None,
                med,
                None,
                "rounds: " + ", ".join(f"{s:.1f}" for s in seconds[name]),
            )
        )
        print(f"{name:50s} median {med:7.1f}s speed-up {metrics['speed-up vs before']:5.2f} cos {cos.min():.4f}")

    if args.data_dir is not None and not args.smoke:
        with PeakRSS():
            for seed in args.seeds:
                downstream(args.data_dir, seed, records, version)
    else:
        print("smoke: the downstream ContentKNN comparison is skipped", flush=True)

    seeds = ",".join(map(str, args.seeds))
    timing = {r.model: r.metrics for r in records if "speed-up vs before" in r.metrics}
    best = max(timing, key=lambda k: timing[k]["speed-up vs before"] if timing[k]["cos min"] > 0.97 else 0.0)
    verdict = (
        f"Target (issue 22): at least 3x faster than before at equal quality: "
        f"{'met' if timing[best]['speed-up vs before'] >= 3 else 'not met'}. The fastest variant with every document's "
        f"cosine above 0.97 is {best}: {timing[best]['speed-up vs before']:.2f}x (cosine min "
        f"{timing[best]['cos min']:.3f})."
    )
    write_results(
        "long_text",
        records,
        metric_columns=METRICS,
        title="Long item documents through all-MiniLM-L6-v2 (issue 22): time and quality",
        command=f"python benchmarks/long_text.py --data-dir ../shared/data --seed {seeds} --repeats {args.repeats}"
        + (" --quick" if args.quick else ""),
        notes=(
            f"Timing rows: torch on 2 threads; {repeats} rounds, each encoding all documents in chunks of {CHUNK} that "
            "every variant encodes back to back (order rotated), so load changes on the shared machine hit all alike; "
            "median s = median round total (each round in the json), speed-up = median over chunks and rounds of "
            "the reference's time / the row's time on the same chunk; cosine per document to the reference "
            f"({ref_name}). Corpus: installed distributions' descriptions as prose (module docstring). "
            "Downstream rows: ContentKNN on the cold test items with MiniLM (max_length 128) features from each "
            "runtime; diff / p: paired over test users against float32 on the same split seed (users share the "
            "same few cold items, so these p-values overstate independence). " + verdict
        ),
    )


if __name__ == "__main__":
    main()
