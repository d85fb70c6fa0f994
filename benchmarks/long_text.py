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
    "timed docs",
    "tokens/doc",
    "windows/doc",
    "median s",
    "speed-up vs before",
    "speed-up vs exact",
    "cos min",
    "cos mean",
    "top-10 overlap",
    "excerpt hit@1",
    "excerpt MRR",
    "MRR diff",
    "MRR wilcoxon p",
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


def downstream(data_dir: Path, seed: int, records: list[Record], version: str) -> int:
    """ContentKNN on the cold items with float32 vs int8 MiniLM text features; paired test over test users.

    Returns how many item documents are longer than 3 windows of 128 tokens (those a window budget would change).
    """
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
    tokenizer = SentenceEncoder()._load().tokenizer
    n_long = sum(len(t) > 3 * 126 for t in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"])
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
    return int(n_long)


def neighbour_overlap(x: np.ndarray, ref: np.ndarray, k: int = 10) -> np.ndarray:
    """Per document: the share of its ``k`` nearest documents (cosine, itself excluded) that ``x`` and ``ref`` agree on."""

    k = min(k, len(x) - 1)

    def top(v: np.ndarray) -> np.ndarray:
        sims = v @ v.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1, kind="stable")[:, :k]

    a, b = top(x), top(ref)
    return np.array([len(set(r) & set(s)) / k for r, s in zip(a, b)])


def excerpts(docs: list[str], per_doc: int, chars: int, seed: int) -> tuple[list[str], np.ndarray]:
    """``per_doc`` passages of about ``chars`` characters from each document at seeded random places (word bounds)."""
    rng = np.random.default_rng(seed)
    queries, owner = [], []
    for j, doc in enumerate(docs):
        for _ in range(per_doc):
            start = int(rng.integers(0, max(len(doc) - chars, 1)))
            start = doc.find(" ", start) + 1 if start else 0
            end = doc.rfind(" ", start, start + chars)
            queries.append(doc[start : end if end > start else start + chars])
            owner.append(j)
    return queries, np.asarray(owner)


def reciprocal_ranks(queries: np.ndarray, owner: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """1 / rank of each query's own document among all documents by cosine (ties count against it)."""
    sims = queries @ docs.T
    own = sims[np.arange(len(owner)), owner]
    return 1.0 / (1.0 + np.sum(sims >= own[:, None], axis=1) - 1)


def knobs(model_name: str, docs: list[str], repeats: int) -> list[tuple[str, float]]:
    """Same-run ratios of the encoder's other knobs, interleaved and repeated: batch size, threads, grad mode.

    Returns ``(what, ratio)`` rows; a ratio > 1 means the first setting is faster than the second.
    """
    import torch

    from fusionrec.features import SentenceEncoder

    def encoder(bs: int) -> SentenceEncoder:
        return SentenceEncoder(model=model_name, batch_size=bs, max_length=256)

    def threads(n: int, fn):
        def run(d: list[str]) -> None:
            torch.set_num_threads(n)
            try:
                fn(d)
            finally:
                torch.set_num_threads(2)

        return run

    model = encoder(64)._load()
    batch = model.tokenizer(docs[:2], padding="max_length", truncation=True, max_length=256, return_tensors="pt")
    feats = {k: v for k, v in batch.items()}

    def forward(mode):
        def run(_: list[str]) -> None:
            with mode():
                model(dict(feats))

        return run

    cases = {
        "batch 16": encoder(16).transform,
        "batch 64": encoder(64).transform,
        "1 thread": threads(1, encoder(64).transform),
        "forward inference_mode": forward(torch.inference_mode),
        "forward no_grad": forward(torch.no_grad),
        "forward with grad": forward(torch.enable_grad),
    }
    for fn in cases.values():
        fn(docs[:1])
    times: dict[str, list[float]] = {k: [] for k in cases}
    names = list(cases)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            cases[name](docs)
            times[name].append(time.perf_counter() - start)
    t = {k: np.asarray(v) for k, v in times.items()}
    ratio = lambda a, b: float(np.median(t[b] / t[a]))  # paired per repeat
    return [
        ("batch 64 vs batch 16", ratio("batch 64", "batch 16")),
        ("2 threads vs 1 thread (batch 64)", ratio("batch 64", "1 thread")),
        (
            "inference_mode vs no_grad (one forward of 2 x 256 tokens)",
            ratio("forward inference_mode", "forward no_grad"),
        ),
        ("inference_mode vs grad enabled", ratio("forward inference_mode", "forward with grad")),
    ]


def padding_share(tokenizer, docs: list[str], batch: int = 64, width: int = 254) -> tuple[float, float]:
    """Padded tokens / real tokens of the windows in batches of ``batch``: length-sorted vs in document order."""
    lengths = []
    for ids in tokenizer(docs, add_special_tokens=False, verbose=False)["input_ids"]:
        lengths += [len(ids[s : s + width]) + 2 for s in range(0, max(len(ids), 1), width)]

    def padded(ls: list[int]) -> int:
        return sum(max(ls[s : s + batch]) * len(ls[s : s + batch]) for s in range(0, len(ls), batch))

    real = sum(lengths)
    return padded(sorted(lengths, reverse=True)) / real - 1, padded(lengths) / real - 1


def main() -> None:
    def extra(parser) -> None:
        parser.add_argument("--repeats", type=int, default=3, help="timing rounds (median reported)")
        parser.add_argument("--before", default=BEFORE, help="commit whose encoder is the baseline")

    args = parse_args(__doc__ or "", extra)
    import torch

    torch.set_num_threads(2)
    from fusionrec.features import SentenceEncoder

    # quick: 30 documents timed, quality over 60 (the other 30 encoded once, untimed)
    n_docs, n_timed, chars = (6, 3, 1500) if args.smoke else (60, 30, 8000) if args.quick else (100, 100, 8000)
    repeats = 1 if args.smoke else args.repeats
    docs = corpus(n_docs, chars)
    timed = docs[:n_timed]
    version = library_version("fusionrec")
    old = before_module(args.before)
    new = SentenceEncoder(batch_size=64, max_length=256)
    model = new._load()
    n_tokens = [len(t) for t in model.tokenizer(docs, add_special_tokens=False, verbose=False)["input_ids"]]
    doc_windows = np.array([max(-(-n // 254), 1) for n in n_tokens])

    variants = {}
    budgets: dict[str, int | None] = {}
    if old is not None:
        before = old.SentenceEncoder(batch_size=64, max_length=256)
        variants[f"SentenceEncoder before ({args.before})"] = before.transform
    else:
        print(f"no commit {args.before} in git: the float32 path of this version is the reference", flush=True)
    variants["sentence-transformers encode, all windows in one call"] = lambda d: st_windows(model, d)
    exact_name = "SentenceEncoder runtime=torch (default, exact)"
    encoders = {exact_name: new, "SentenceEncoder runtime=int8": SentenceEncoder(runtime="int8")}
    for runtime, k in (("torch", 3), ("int8", 3), ("int8", 2)):
        encoders[f"SentenceEncoder runtime={runtime}, max_windows={k}"] = SentenceEncoder(
            runtime=runtime, max_windows=k
        )
        budgets[f"SentenceEncoder runtime={runtime}, max_windows={k}"] = k
    variants.update({k: e.transform for k, e in encoders.items()})
    for fn in variants.values():
        fn(docs[:1])  # load and quantise outside the timed part
    # the machine is shared: every variant encodes the same chunk of documents back to back (order rotated), so a
    # change of load hits all variants alike; a round's time is the sum over its chunks
    seconds: dict[str, list[float]] = {k: [] for k in variants}
    chunk_seconds: dict[str, list[float]] = {k: [] for k in variants}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in variants}
    names = list(variants)
    chunks = [timed[s : s + CHUNK] for s in range(0, len(timed), CHUNK)]
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
    if n_docs > n_timed:
        for name in names:  # quality only: the rest of the corpus, once, untimed
            parts[name].append(variants[name](docs[n_timed:]))
        print(f"encoded the other {n_docs - n_timed} documents for the quality columns", flush=True)
    vectors = {k: np.concatenate(v) for k, v in parts.items()}
    ref = vectors[exact_name]
    before_chunks = np.asarray(chunk_seconds[names[0] if old is not None else exact_name])
    exact_chunks = np.asarray(chunk_seconds[exact_name])
    queries, owner = excerpts(docs, per_doc=3, chars=600, seed=0)
    q = new.transform(queries)  # every variant's documents are searched with the same exact query vectors
    rr_ref = reciprocal_ranks(q, owner, ref)
    records: list[Record] = []
    for name in names:
        cos = np.sum(vectors[name] * ref, axis=1)
        med = float(np.median(seconds[name]))
        k = budgets.get(name)
        rr = reciprocal_ranks(q, owner, vectors[name])
        metrics = {
            "docs": float(n_docs),
            "timed docs": float(n_timed),
            "tokens/doc": float(np.mean(n_tokens)),
            "windows/doc": float(np.mean(doc_windows if k is None else np.minimum(doc_windows, k))),
            "median s": med,
            "speed-up vs before": float(np.median(before_chunks / np.asarray(chunk_seconds[name]))),
            "speed-up vs exact": float(np.median(exact_chunks / np.asarray(chunk_seconds[name]))),
            "cos min": float(cos.min()),
            "cos mean": float(cos.mean()),
            "top-10 overlap": float(neighbour_overlap(vectors[name], ref).mean()),
            "excerpt hit@1": float(np.mean(rr == 1.0)),
            "excerpt MRR": float(rr.mean()),
        }
        if name != exact_name:
            test_p = paired(rr, rr_ref)
            metrics.update({"MRR diff": test_p["diff"], "MRR wilcoxon p": test_p["wilcoxon_p"]})
        records.append(
            Record(
                "sentence-transformers" if name.startswith("sentence-transformers") else "fusionrec",
                library_version("sentence-transformers") if name.startswith("sentence-transformers") else version,
                name,
                f"{n_docs} docs x {chars} chars",
                "-",
                {} if k is None else {"max_windows": k},
                metrics,
                None,
                med,
                None,
                "rounds: " + ", ".join(f"{s:.1f}" for s in seconds[name]),
            )
        )
        print(
            f"{name:50s} median {med:7.1f}s x{metrics['speed-up vs before']:5.2f} cos {cos.min():.4f} "
            f"knn {metrics['top-10 overlap']:.3f} mrr {metrics['excerpt MRR']:.3f}",
            flush=True,
        )

    knob_rows: list[tuple[str, float]] = []
    if not args.smoke:
        knob_rows = knobs(new.model, timed[:8], repeats=max(repeats, 3))
        for what, ratio in knob_rows:
            print(f"knob {what}: {ratio:.2f}x", flush=True)
    sorted_pad, unsorted_pad = padding_share(model.tokenizer, docs)

    n_long: list[int] = []
    if args.data_dir is not None and not args.smoke:
        with PeakRSS():
            for seed in args.seeds:
                n_long.append(downstream(args.data_dir, seed, records, version))
    else:
        print("smoke: the downstream ContentKNN comparison is skipped", flush=True)

    seeds = ",".join(map(str, args.seeds))
    timing = {r.model: r.metrics for r in records if "speed-up vs before" in r.metrics}
    int8 = timing["SentenceEncoder runtime=int8"]
    fast = [n for n, m in timing.items() if m["speed-up vs before"] >= 3]
    by_cos = [n for n in fast if timing[n]["cos min"] >= 0.97]
    by_knn = [n for n in fast if timing[n]["top-10 overlap"] >= int8["top-10 overlap"]]
    by_mrr = [n for n in fast if timing[n].get("MRR wilcoxon p", 0.0) >= 0.05 or timing[n].get("MRR diff", -1) >= 0]

    def listed(ns: list[str]) -> str:
        return "; ".join(f"{n} ({timing[n]['speed-up vs before']:.2f}x)" for n in ns) or "none"

    verdict = (
        "Target (issue 22): at least 3x faster than before at equal quality. Variants at 3x or more: "
        f"{listed(fast)}. Of those, (a) every document's cosine to the exact vectors >= 0.97 (the bar int8 was "
        f"accepted at): {listed(by_cos)}; (b) top-10 neighbour overlap at least int8's "
        f"({int8['top-10 overlap']:.3f}): {listed(by_knn)}; (c) excerpt-retrieval MRR not worse than the exact "
        f"vectors (Wilcoxon p >= 0.05 or no loss): {listed(by_mrr)}. "
    )
    equal = [
        n
        for n, m in timing.items()
        if m["cos min"] >= 0.97
        and m["top-10 overlap"] >= int8["top-10 overlap"]
        and (m.get("MRR wilcoxon p", 1.0) >= 0.05 or m.get("MRR diff", 0.0) >= 0)
    ]
    top = max(equal, key=lambda n: timing[n]["speed-up vs before"])
    met = [n for n in equal if timing[n]["speed-up vs before"] >= 3]
    verdict += (
        f"{'Met' if met else 'Not met'} by all three: the fastest variant that passes (a), (b) and (c) is {top} at "
        f"{timing[top]['speed-up vs before']:.2f}x."
    )
    knob_text = "; ".join(f"{w} {r:.2f}x" for w, r in knob_rows)
    write_results(
        "long_text",
        records,
        metric_columns=METRICS,
        title="Long item documents through all-MiniLM-L6-v2 (issue 22): time and quality",
        command=f"python benchmarks/long_text.py --data-dir ../shared/data --seed {seeds} --repeats {args.repeats}"
        + (" --quick" if args.quick else ""),
        notes=(
            f"Timing rows: torch on 2 threads; {repeats} rounds over the first {n_timed} documents, each in chunks of "
            f"{CHUNK} that every variant encodes back to back (order rotated), so load changes on the shared machine "
            "hit all alike; median s = median round total (each round in the json), speed-up = median over chunks "
            "and rounds of the reference's time / the row's time on the same chunk. Quality columns over all "
            f"{n_docs} documents against the exact float32 vectors ({exact_name}): cosine per document; top-10 "
            "overlap = mean share of each document's 10 cosine neighbours in the corpus that the row and the exact "
            "vectors agree on; excerpt hit@1 / MRR = 3 passages of 600 characters per document at seeded random "
            "places, encoded exactly, searched among all documents (a passage in a skipped window is what a window "
            "budget can lose); MRR diff / p: paired over the passages against the exact vectors. Corpus: installed "
            "distributions' descriptions as prose (module docstring). Knobs (same-run ratios, interleaved, "
            f"{max(repeats, 3)} repeats, 8 documents): {knob_text or 'not run'}. Length-sorted batches: padding "
            f"{sorted_pad:.1%} of the real tokens vs {unsorted_pad:.1%} in document order (batches of 64; these "
            "documents are full 254-token windows but for each one's tail). Downstream rows: ContentKNN on the cold "
            "test items with MiniLM (max_length 128) features from each runtime; diff / p: paired over test users "
            "against float32 on the same split seed (users share the same few cold items, so these p-values "
            "overstate independence); ml-posters documents are short (median 9 tokens; longer than 3 windows of 128 "
            f"tokens, per seed: {', '.join(map(str, n_long)) or 'not run'} of 2,943), so a window budget of 3 leaves "
            "those features unchanged and is not a downstream row. " + verdict
        ),
    )


if __name__ == "__main__":
    main()
