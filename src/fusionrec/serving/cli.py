"""What the serving commands do, as library functions: :func:`train_bundle` (dataset, split file or own files ->
serving bundle), :func:`recommend_from_bundle` and :func:`forget_users` (the right to be forgotten).  The commands
themselves (``fusionrec train / recommend / serve / forget``) are in :mod:`fusionrec.cli.serve`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["describe_training", "forget_users", "recommend_from_bundle", "train_bundle"]


def train_bundle(
    source: str | None,
    model: str,
    out: Path,
    *,
    params: dict[str, Any] | None = None,
    data_dir: Path | None = None,
    implicit: bool = False,
    files: dict[str, Path | None] | None = None,
    file_options: dict[str, Any] | None = None,
    title_column: str | None = None,
    on_read: Callable[[list[str]], None] | None = None,
) -> Path:
    """Fit ``model`` and write a serving bundle.

    The training data is a dataset name (all its interactions), a benchmark split name or a split file (its
    train part), or -- with ``files`` -- a user's own files (``{"interactions": ..., "items": ..., "users": ...,
    "social": ...}``, read by :func:`fusionrec.data.from_files` with ``file_options``; every row is used). When the
    dataset has content (item/user modalities), it is encoded once with the default encoders; content-aware models
    are fitted with it, and the bundle keeps the features and the fitted encoders so that serving can place a new
    item by its posted content and a retrain keeps the content.  ``on_read`` is called, before the fit, with the
    lines of :func:`describe_training` (what was read, what each column became, what was ignored and why).
    """
    from fusionrec.data.datasets import load_dataset
    from fusionrec.data.datasets.registry import BENCHMARK_SPLITS, load_benchmark_split
    from fusionrec.data.io import load_split_file
    from fusionrec.errors import ConfigError
    from fusionrec.models.registry import make_model
    from fusionrec.serving.bundle import item_meta_from_dataset, save_bundle

    dataset = None
    estimator = make_model(model, **(params or {}))  # a bad name or parameter fails before any data is read
    if files and any(files.values()):
        from fusionrec.data import from_files

        if source is not None:
            raise ConfigError("give either a dataset/split SOURCE or --interactions FILE (with --items ...), not both")
        log = files.get("interactions")
        if log is None:
            raise ConfigError("--items/--users/--social need --interactions FILE (the behaviour log)")
        dataset = from_files(
            log,
            items=files.get("items"),
            users=files.get("users"),
            social=files.get("social"),
            **(file_options or {}),
        )
        train = dataset.interactions
        source_label = str(files["interactions"])
    elif source is None:
        raise ConfigError("name what to train on: a dataset, a benchmark split, a split file or --interactions FILE")
    elif Path(source).is_file():
        train = load_split_file(source).train
        source_label = source
    elif source in BENCHMARK_SPLITS:
        train = load_benchmark_split(source, data_dir=data_dir).train
        dataset = load_dataset(BENCHMARK_SPLITS[source], data_dir=data_dir)
        source_label = source
    else:
        dataset = load_dataset(source, data_dir=data_dir)
        train = dataset.interactions
        source_label = source
    if implicit:
        train = train.binarize()
    side = None
    if dataset is not None and (dataset.item_modalities or dataset.user_modalities or dataset.social is not None):
        side = _side_for(dataset, train)
    if on_read is not None:
        on_read(describe_training(source_label, train, dataset, side))
    raw: dict[str, Any] = {}
    documents = None
    decl = type(estimator).declaration()
    if dataset is not None and decl.raw_content:  # models that encode raw content themselves
        from fusionrec.data.documents import ItemDocuments, dataset_documents

        texts, images = dataset_documents(dataset, train.item_ids)
        raw = decl.fit_kwargs(texts=texts, images=images)
        documents = ItemDocuments.of(raw.get("texts"), raw.get("images"))  # kept: a retrain refits with them
    try:
        fitted = estimator.fit(train, side, **raw)
    except ConfigError as exc:
        # the model says what it lacks (content, image features, trust links); add where the CLI takes them from
        if side is None or not (side.item_features or side.user_features) or side.social is None:
            raise ConfigError(
                f"{exc}. With your own files: --items FILE gives item content (text, image, categorical or numeric "
                "columns), --users FILE user attributes and --social FILE (user,friend) links"
            ) from exc
        raise
    # the display title: ``title_column``, else a title/name column, else the shortest text column (never a review)
    meta = item_meta_from_dataset(dataset, train.item_ids, title_column=title_column) if dataset is not None else None
    return save_bundle(out, fitted, train, meta, side=side, extra={"source": source_label}, documents=documents)


def describe_training(source: str, train: Any, dataset: Any = None, side: Any = None) -> list[str]:
    """What ``fusionrec train`` read, as lines for a person: the interactions (rows, users, items, explicit or
    implicit), then per content file each column's role or modality with the encoder that turned it into features
    (and its width), the columns ignored with the reason, the links, and the loader's notes."""
    kind = "ratings" if train.explicit else "implicit feedback"
    lines = [f"read {source}: {train.nnz:,} interactions ({kind}), {train.n_users:,} users, {train.n_items:,} items"]
    ingest = ({} if dataset is None else dataset.meta.get("ingest")) or {}
    for table, what, encoders, features in (
        ("items", "item", {} if side is None else side.item_encoders, {} if side is None else side.item_features),
        ("users", "user", {} if side is None else side.user_encoders, {} if side is None else side.user_features),
    ):
        info = ingest.get(table)
        if not info:
            continue
        lines.append(f"{info.get('path', table)}: {info.get('rows', '?')} {what} rows")
        modalities = info.get("modalities", {})
        for column, col in info.get("columns", {}).items():
            role = col.get("kind", "?")
            if role == "ignored":
                lines.append(f"  {column}: ignored ({col.get('reason', 'no reason given')})")
                continue
            modality = col.get("modality", column if column in modalities else None)
            encoder = encoders.get(modality) if modality is not None else None
            if encoder is None:
                lines.append(f"  {column}: {role}")
                continue
            width = features[modality].shape[1] if modality in features else "?"
            into = "" if modality == column else f" (modality {modality!r})"
            lines.append(f"  {column}: {role}{into} -> {type(encoder).__name__}, {width} dims")
    social = ingest.get("social")
    if social:
        lines.append(f"{social.get('path', 'social')}: {social.get('links', 0):,} links between users")
    lines += [f"note: {note}" for note in ingest.get("notes", [])]
    return lines


def recommend_from_bundle(
    bundle: Any, user: str, k: int = 10, rerank: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Top-``k`` items of the bundle user whose raw id is ``user``, as ``{"rank", "item", "score"[, "title"]}``.

    ``rerank`` (a :func:`fusionrec.rerank.from_spec` spec such as ``{"calibrate": 0.3}``) re-ranks the model's
    top :func:`~fusionrec.serving.rules.rerank_depth` as ``GET /recommend?calibrate=`` does: the catalogue's ``genres`` (else its first
    multi-label column) are the groups, the user's training items the calibration target; scores stay the model's.

    ``user`` is matched against the bundle's raw ids by their text, so ``"1"`` finds the integer id ``1`` (and
    ``"01"`` or ``" 1"`` do not), and a string id is found as written.  Items the user already has are excluded.

    Raises
    ------
    UnknownIdError
        The bundle has no such user.
    ConfigError
        ``k`` is not a positive integer.
    """
    import numpy as np

    from fusionrec.errors import ConfigError, UnknownIdError
    from fusionrec.serving.rules import id_key, rerank_depth

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    raw = bundle.user_ids.ids.tolist()
    index = {id_key(x): i for i, x in enumerate(raw)}.get(id_key(user))
    if index is None:
        examples = ", ".join(repr(str(x)) for x in raw[:5])
        raise UnknownIdError(
            f"unknown user {user!r}: the bundle knows {len(raw)} users (e.g. {examples}); pass one of its raw ids "
            "(users added to a running service exist only there: ask it with GET /recommend)"
        )
    model = bundle.model
    n_named = len(bundle.item_ids)
    candidates = None if n_named == model.n_items_ else np.arange(n_named)
    depth = rerank_depth(k) if rerank else k
    items, scores = model.recommend(np.array([index]), depth, candidates=candidates)
    if rerank:
        items, scores = _rerank_bundle(bundle, index, items, scores, k, rerank)
    titles = bundle.item_meta.get("title")
    item_raw = bundle.item_ids.ids.tolist()  # plain int / str whatever the array's dtype
    out: list[dict[str, Any]] = []
    for i, score in zip(items[0].tolist(), scores[0].tolist()):
        if i < 0 or not np.isfinite(score):
            continue
        row: dict[str, Any] = {"rank": len(out) + 1, "item": item_raw[i], "score": float(score)}
        if titles is not None and titles[i]:
            row["title"] = str(titles[i])
        out.append(row)
    return out


def _rerank_bundle(bundle: Any, user: int, items: Any, scores: Any, k: int, spec: Mapping[str, Any]) -> tuple[Any, Any]:
    """Re-rank one user's candidate list from a bundle (see :func:`recommend_from_bundle`)."""
    import numpy as np

    from fusionrec.rerank import from_spec, groups_from_labels
    from fusionrec.serving.catalogue import label_column

    meta = bundle.item_meta
    col = label_column(meta)
    groups, names = groups_from_labels(meta[col]) if col is not None else (None, None)
    n_model = bundle.model.n_items_
    if groups is not None and len(groups) < n_model:  # items added after training have no labels here
        groups = np.vstack([groups, np.zeros((n_model - len(groups), groups.shape[1]))])
    history = bundle.model.seen_[[user]]
    vectors = bundle.model.item_embeddings() if "diversify" in spec else None
    reranker = from_spec(
        spec,
        item_groups=groups,
        item_vectors=vectors if vectors is not None else groups,
        history=history,
        group_names=names,
    )
    valid = items >= 0
    return reranker.rerank(np.zeros(1, np.int64), np.where(valid, items, 0), np.where(valid, scores, -np.inf), k)


def forget_users(
    bundle: Path, users: list[str], *, store: str | None = None, retrain: bool = False
) -> tuple[list[str], list[str]]:
    """Forget ``users`` (raw ids) of the service of ``bundle`` and its store (default: beside the bundle), as
    ``DELETE /users/{user}`` does: events and profile leave the store with a tombstone that running and restarted
    servers apply.  ``retrain`` then refits the bundle in place from the store (the bundle on disk no longer
    holds the users' training rows).  Returns ``(forgotten, unknown)`` raw ids.
    """
    from fusionrec.serving.engine import ServingEngine, UnknownUserError, retrain_bundle
    from fusionrec.serving.settings import ServingSettings
    from fusionrec.serving.store import open_store

    settings = ServingSettings(bundle_path=bundle, store_url=store)
    engine = ServingEngine(settings.bundle_path, open_store(settings.resolved_store_url), index="exact")
    forgotten, unknown = [], []
    try:
        for user in users:
            try:
                engine.delete_user(user)
            except UnknownUserError:
                unknown.append(user)
            else:
                forgotten.append(user)
        if retrain:
            retrain_bundle(engine.state, engine.store, settings.bundle_path)
    finally:
        engine.close()
    return forgotten, unknown


def _side_for(dataset: Any, train: Any) -> Any:
    """The dataset's content encoded with the default encoders, aligned with ``train``'s id maps."""
    import logging
    from dataclasses import replace

    import numpy as np
    import scipy.sparse as sp

    from fusionrec.features import build_side_info

    if train is not dataset.interactions:  # a split's train part or a binarised copy: align content by raw ids
        social = dataset.social
        if social is not None and not np.array_equal(train.user_ids.ids, dataset.user_ids.ids):
            rows = dataset.user_ids.to_index(train.user_ids.ids, missing="ignore")
            keep = rows >= 0
            take = sp.csr_matrix((np.ones(int(keep.sum())), (np.flatnonzero(keep), rows[keep])),
                                 shape=(len(rows), social.shape[0]))  # fmt: skip
            social = sp.csr_matrix(take @ social @ take.T)
        dataset = replace(dataset, interactions=train, social=social)
    side, report = build_side_info(dataset)
    for failure in report.failures[:5]:
        logging.getLogger(__name__).warning(
            "%s content of %r could not be encoded: %s", failure.modality, failure.item_id, failure.reason
        )
    return side
