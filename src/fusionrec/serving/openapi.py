"""The OpenAPI document narrowed to the served bundle: schema-valid requests are the accepted ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fusionrec.serving.state import OnlineState

__all__ = ["FILE_KINDS", "bundle_schema"]

#: modality kinds whose raw content is a file (must resolve under ``ServingSettings.content_root``)
FILE_KINDS = frozenset({"image", "audio", "video"})


def bundle_schema(schema: dict[str, Any], state: OnlineState) -> dict[str, Any]:
    """``schema`` (the OpenAPI document) with the request bodies narrowed to what the served bundle accepts: the
    event value range of the model, the width of its dense features, its item modalities and the kinds of its
    metadata columns (so that schema-valid requests are accepted)."""
    from fusionrec.serving import schemas as S
    from fusionrec.serving.bundle import DENSE_MODALITY

    comps = schema.get("components", {}).get("schemas", {})
    event = comps.get("EventIn", {}).get("properties", {}).get("value")
    if event is not None:
        lo, hi = state.value_domain()
        event.update(minimum=lo, maximum=hi)
    item = comps.get("ItemIn", {}).get("properties", {})
    side = state.side
    kinds = {} if side is None else dict(side.item_kinds)
    widths = {} if side is None else {k: int(v.shape[1]) for k, v in side.item_features.items()}
    numbers = {"type": "array", "items": {"type": "number", "minimum": -1e15, "maximum": 1e15}}
    if "features" in item:
        d = widths.get(DENSE_MODALITY)
        item["features"] = (
            {"anyOf": [{**numbers, "minItems": d, "maxItems": d}, {"type": "null"}]} if d else {"type": "null"}
        )
    if "content" in item:
        props: dict[str, Any] = {}
        for name, kind in kinds.items():
            if kind in ("text",) or kind in FILE_KINDS:
                props[name] = {"anyOf": [{"type": "string", "maxLength": 100_000}, {"type": "null"}]}
            elif kind == "categorical":
                labels = {"type": "array", "items": {"type": "string", "maxLength": 1000}, "maxItems": 1000}
                props[name] = {"anyOf": [{"type": "string", "maxLength": 1000}, labels, {"type": "null"}]}
            elif name in widths:
                d = widths[name]
                props[name] = {"anyOf": [{**numbers, "minItems": d, "maxItems": d}, {"type": "null"}]}
        item["content"] = {"type": "object", "properties": props, "additionalProperties": False}
    if "meta" in item:
        text = {"type": "string", "maxLength": S.MAX_SHORT_LENGTH}
        labels = {"type": "array", "items": text, "maxItems": 100}
        known = {key: (labels if col and isinstance(col[0], list) else text) for key, col in state.item_meta.items()}
        for key in ("title", "poster"):
            known.setdefault(key, text)
        item["meta"] = {**item["meta"], "properties": known}
    return schema
