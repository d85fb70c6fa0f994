"""From raw modalities to dense features: ``encode_modality``, ``build_side_info`` and encoders by name."""

from __future__ import annotations

import importlib
import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionrec.data.modalities import Modality
from fusionrec.errors import ConfigError
from fusionrec.features.base import Encoder, FeatureReport, Pipeline, PostProcess
from fusionrec.features.cache import FeatureCache

if TYPE_CHECKING:
    from fusionrec.data.dataset import Dataset
    from fusionrec.data.side import SideInfo

__all__ = [
    "ENCODERS",
    "available_encoders",
    "build_side_info",
    "default_encoder",
    "encode_modality",
    "make_encoder",
    "resolve_encoder",
]

#: name -> "module:Class" (``make_encoder(name, **params)``)
ENCODERS: dict[str, str] = {
    "tfidf": "fusionrec.features.text:TfidfEncoder",
    "bm25": "fusionrec.features.text:BM25Encoder",
    "sentence": "fusionrec.features.text:SentenceEncoder",
    "image-descriptors": "fusionrec.features.image:ImageDescriptorEncoder",
    "efficientnet-lite0": "fusionrec.features.image:EfficientNetEncoder",
    "audio-stats": "fusionrec.features.audio:AudioStatsEncoder",
    "aisfx": "fusionrec.features.audio:AisfxEncoder",
    "video": "fusionrec.features.video:VideoEncoder",
    "tabular": "fusionrec.features.tabular:TabularEncoder",
    "multihot": "fusionrec.features.tabular:MultiHotEncoder",
    "hashing": "fusionrec.features.tabular:HashingEncoder",
    "behaviour-stats": "fusionrec.features.sequence:BehaviourStatsEncoder",
    "gru-sequence": "fusionrec.features.sequence:GRUSequenceEncoder",
}
_ALIASES = {
    "minilm": ("sentence", {}),
    # the fast preset for long texts (issue 22): int8 Linear layers and at most 3 evenly spread windows per text;
    # faster, not equal: SentenceEncoder's max_windows says what it costs
    "minilm-fast": ("sentence", {"runtime": "int8", "max_windows": 3}),
    "e5": ("sentence", {"model": "multilingual-e5-small"}),
    "efficientnet": ("efficientnet-lite0", {}),
    "colour": ("image-descriptors", {}),
    "color": ("image-descriptors", {}),
}


def available_encoders() -> list[str]:
    return sorted([*ENCODERS, *_ALIASES])


def make_encoder(name: str, **params: Any) -> Encoder:
    """Instantiate an encoder by name (``"tfidf"``, ``"minilm"``, ``"efficientnet"``, ...)."""
    if name in _ALIASES:
        name, preset = _ALIASES[name]
        params = {**preset, **params}
    if name not in ENCODERS:
        raise ConfigError(f"unknown encoder {name!r}; available: {available_encoders()}")
    module, _, cls = ENCODERS[name].partition(":")
    try:
        return getattr(importlib.import_module(module), cls)(**params)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise ConfigError(f"bad parameters for encoder {name}: {exc}") from exc


def default_encoder(kind: str) -> Encoder | None:
    """The deterministic, weight-free default encoder of a modality kind (``None``: nothing to encode).

    text: TF-IDF (2048 terms); image: colour / edge / texture descriptors; audio: spectral statistics,
    standardised; video: frame descriptors + audio statistics (when PyAV is installed); tabular: scaling,
    one-hot and hashing; categorical: multi-hot.
    """
    from fusionrec.features.audio import AudioStatsEncoder
    from fusionrec.features.image import ImageDescriptorEncoder
    from fusionrec.features.tabular import MultiHotEncoder, TabularEncoder
    from fusionrec.features.text import TfidfEncoder

    if kind == "text":
        return TfidfEncoder(max_features=2048)
    if kind == "image":
        return ImageDescriptorEncoder()
    if kind == "audio":
        return Pipeline(encoder=AudioStatsEncoder(), steps=[PostProcess(method="standard")])
    if kind == "video":
        try:
            import av  # noqa: F401
        except ImportError:
            return None
        from fusionrec.features.video import VideoEncoder

        return VideoEncoder()
    if kind == "tabular":
        return TabularEncoder()
    if kind == "categorical":
        return MultiHotEncoder()
    return None


def resolve_encoder(kind: str, encoder: Encoder | None) -> Encoder:
    """``encoder``, or the :func:`default_encoder` of a ``kind`` modality; :class:`ConfigError` when it has none."""
    enc = encoder if encoder is not None else default_encoder(kind)
    if enc is None:
        raise ConfigError(f"no default encoder for a {kind!r} modality; pass encoder= (see fusionrec.features)")
    return enc


def _cache(cache: bool | str | os.PathLike[str] | FeatureCache | None) -> FeatureCache | None:
    if cache is None or cache is False:
        return None
    if cache is True:
        return FeatureCache()
    if isinstance(cache, FeatureCache):
        return cache
    return FeatureCache(cache)


def encode_modality(
    modality: Modality,
    encoder: Encoder | None = None,
    cache: bool | str | os.PathLike[str] | FeatureCache | None = True,
    *,
    verbose: bool | None = None,
) -> tuple[Modality, FeatureReport]:
    """Encode a raw modality into a ``features`` modality with the same ids and target.

    ``encoder`` defaults to :func:`default_encoder` of the modality kind; it is fitted on the modality's data
    unless already fitted.  ``cache`` is ``True`` (the default cache directory), ``False``, a folder or a
    :class:`FeatureCache`.  Items that fail get zero rows and are listed (with their ids) in the report.
    ``verbose=True`` draws one progress bar with an ETA over all items (``None``: :func:`fusionrec.set_progress`).
    """
    if verbose is not None:
        from fusionrec._progress import progress_enabled

        with progress_enabled(verbose):
            return encode_modality(modality, encoder, cache)
    if modality.kind == "features":
        return modality, FeatureReport(n_items=len(modality), notes=["already dense features"])
    enc = resolve_encoder(modality.kind, encoder)
    store = _cache(cache)
    raw = modality.data
    if isinstance(enc, Pipeline):
        if not enc.is_fitted:
            enc.fit(raw, cache=store)
        rows, report = enc.transform_report(raw, ids=modality.ids.ids, cache=store)
    else:
        if not enc.is_fitted:
            enc.fit(raw)
        if store is not None:
            rows, report = store.transform(enc, raw, ids=modality.ids.ids)
        else:
            rows, report = enc.transform_report(raw, ids=modality.ids.ids)
    rows = np.nan_to_num(np.asarray(rows, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    report.notes.append(f"encoded with {enc!r} -> {rows.shape[1]} dims")
    return Modality("features", modality.ids, rows, target=modality.target), report


_EXTRA_HINTS = {
    "audio": "Install the audio extra: pip install 'fusionrec[audio]'.",
    "video": "Install the video extra: pip install 'fusionrec[video]'.",
    "text": "Install the text extra: pip install 'fusionrec[text]'.",
}


def build_side_info(
    dataset: Dataset,
    encoders: dict[str, Encoder | None] | None = None,
    cache: bool | str | os.PathLike[str] | FeatureCache | None = True,
    *,
    verbose: bool | None = None,
) -> tuple[SideInfo, FeatureReport]:
    """Encode every item and user modality of ``dataset`` into a :class:`~fusionrec.models.SideInfo`.

    Parameters
    ----------
    dataset
        Its modalities are aligned with ``dataset.item_ids`` / ``user_ids`` (absent ids get zero rows and
        ``present=False``).
    encoders
        Encoder per modality name (or per kind, e.g. ``{"image": EfficientNetEncoder()}``); a name mapped to
        ``None`` is skipped.  Others use :func:`default_encoder`; kinds without one are skipped (noted).
    cache
        As in :func:`encode_modality`.
    verbose
        Draw a progress bar with an ETA per encoded modality (``None``: as set by :func:`fusionrec.set_progress`).

    Returns
    -------
    (SideInfo, FeatureReport)
        ``side.item_encoders[name]`` / ``user_encoders`` hold the fitted encoder of every encoded modality (so
        ``side.encode_items({name: [raw value]})`` gives a new item the row it would have had), and
        ``item_kinds`` / ``user_kinds`` every kept modality's raw kind (``"features"`` for dense ones).
        The report merges every modality's counts and failures (tagged with the modality name).
    """
    from fusionrec.data.side import SideInfo

    if verbose is not None:
        from fusionrec._progress import progress_enabled

        with progress_enabled(verbose):
            return build_side_info(dataset, encoders, cache)
    encoders = dict(encoders or {})
    side = SideInfo(social=dataset.social)
    report = FeatureReport()
    store = _cache(cache)
    for target, modalities, idmap in (
        ("item", dataset.item_modalities, dataset.item_ids),
        ("user", dataset.user_modalities, dataset.user_ids),
    ):
        for name, mod in modalities.items():
            if name in encoders:
                enc = encoders[name]
                if enc is None:
                    report.notes.append(f"{target} modality {name!r} skipped (encoder None)")
                    continue
            else:
                enc = encoders.get(mod.kind) if mod.kind in encoders else default_encoder(mod.kind)
                if enc is not None and mod.kind in encoders:
                    enc = enc.clone()  # one fitted copy per modality
            if enc is None and mod.kind != "features":
                report.notes.append(f"{target} modality {name!r} ({mod.kind}) skipped: no default encoder")
                continue
            chosen = name in encoders or mod.kind in encoders
            try:
                feats, sub = encode_modality(mod, enc, cache=store if store is not None else False)
            except ImportError as exc:
                if chosen:  # the caller asked for this encoder: its missing package is their error to see
                    raise
                hint = _EXTRA_HINTS.get(mod.kind, "")
                msg = f"{target} modality {name!r} ({mod.kind}) skipped: {exc}. {hint}".strip()
                logging.getLogger(__name__).warning(msg)
                report.notes.append(msg)
                continue
            report.merge(sub, modality=name)
            arr, present = feats.align(idmap)
            features, presence, fitted, kinds = (
                (side.item_features, side.item_present, side.item_encoders, side.item_kinds)
                if target == "item"
                else (side.user_features, side.user_present, side.user_encoders, side.user_kinds)
            )
            features[name], presence[name] = arr, present
            kinds[name] = mod.kind
            if mod.kind != "features" and enc is not None:
                fitted[name] = enc  # fitted by encode_modality: encodes new items / users the same way
    return side, report
