"""Bundle integrity (issue 21): one rule for every format version that loads, and the manifests validated against
what the model declares before anything is used.

* a format-2 ``bundle.json`` (or model ``manifest.json``) that carries the format-1 ``arrays_sha256`` instead of
  ``sha256`` is a downgrade and a typed :class:`BundleError` (it loaded as format 2 and nothing else was checked: an
  edited ``store_seq`` and swapped model files were served);
* an unknown checksum field is a :class:`BundleError`; a format-1 bundle may not hold a format-2 model;
* the model's hyper-parameters are checked against its declared constraints (``n_factors=-5``) and its stored
  scalars may only be learned state (``score=0`` replaced the method and the first ``recommend`` raised
  ``TypeError: 'int' object is not callable``);
* a bundle that claims events its store never held (``store_seq`` beyond the store) is refused when served.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fusionrec.errors import BundleError
from fusionrec.serving import load_bundle


def _rewrite(path: Path, edit: object, *, resign: bool = True) -> None:
    """Apply ``edit(manifest)`` to ``path``'s JSON; ``resign`` recomputes its ``sha256`` as a forger would (the
    checksum is not a signature: it catches damage and edits that do not know the rule, not a forger)."""
    from fusionrec._storage import CHECKSUM_KEY, _checksum

    manifest = json.loads(path.read_text())
    edit(manifest)  # type: ignore[operator]
    if resign and CHECKSUM_KEY in manifest:
        arrays = path.parent / ("serving.npz" if path.name == "bundle.json" else "arrays.npz")
        manifest[CHECKSUM_KEY] = _checksum(manifest, arrays.read_bytes())
    path.write_text(json.dumps(manifest))


def _downgrade(manifest: dict, arrays: Path) -> None:
    manifest.pop("sha256", None)
    manifest.pop("children", None)
    manifest["arrays_sha256"] = hashlib.sha256(arrays.read_bytes()).hexdigest()


def test_downgraded_checksum_field_is_refused(tiny_bundle: Path) -> None:
    """The issue's repro: remove sha256 and children, set arrays_sha256 and store_seq = 10**9."""

    def edit(m: dict) -> None:
        _downgrade(m, tiny_bundle / "serving.npz")
        m["store_seq"] = 10**9

    _rewrite(tiny_bundle / "bundle.json", edit, resign=False)
    with pytest.raises(BundleError, match="arrays_sha256"):
        load_bundle(tiny_bundle)


def test_downgraded_model_manifest_is_refused(tiny_bundle: Path) -> None:
    from fusionrec.models import load_model

    model_dir = tiny_bundle / "model"
    _rewrite(model_dir / "manifest.json", lambda m: _downgrade(m, model_dir / "arrays.npz"), resign=False)
    with pytest.raises(BundleError, match="arrays_sha256"):
        load_model(model_dir)
    with pytest.raises(BundleError):
        load_bundle(tiny_bundle)


def test_unknown_checksum_field_is_refused(tiny_bundle: Path) -> None:
    def edit(m: dict) -> None:
        m["sha512"] = m.pop("sha256")

    _rewrite(tiny_bundle / "bundle.json", edit, resign=False)
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(tiny_bundle)


def test_format_1_bundle_with_a_format_2_model_is_a_downgrade(tiny_bundle: Path) -> None:
    """Declaring the whole bundle format 1 does not skip the model's checksum: a genuine format-1 bundle holds a
    format-1 model, so a format-2 model inside one was downgraded around."""

    def edit(m: dict) -> None:
        _downgrade(m, tiny_bundle / "serving.npz")
        m["format_version"] = 1
        m.pop("side", None)

    _rewrite(tiny_bundle / "bundle.json", edit, resign=False)
    with pytest.raises(BundleError, match="format 1"):
        load_bundle(tiny_bundle)


def test_scalar_shadowing_a_method_is_refused(tiny_bundle: Path) -> None:
    """``score=0`` among the model's stored scalars (with a valid checksum) replaced ``score``."""
    from fusionrec.models import load_model

    _rewrite(tiny_bundle / "model" / "manifest.json", lambda m: m["scalars"].update(score=0))
    _rewrite(tiny_bundle / "bundle.json", lambda m: m["children"].update(model=_sha(tiny_bundle / "model")))
    with pytest.raises(BundleError, match="score"):
        load_model(tiny_bundle / "model")
    with pytest.raises(BundleError, match="score"):
        load_bundle(tiny_bundle)


def test_learned_scalar_of_the_wrong_type_is_refused(tiny_bundle: Path) -> None:
    from fusionrec.models import load_model

    _rewrite(tiny_bundle / "model" / "manifest.json", lambda m: m["scalars"].update(n_users_="50"))
    with pytest.raises(BundleError, match="n_users_"):
        load_model(tiny_bundle / "model")


def test_parameter_outside_its_declared_range_is_refused(tmp_path: Path, implicit_train: object) -> None:
    from fusionrec.models import load_model, make_model
    from fusionrec.serving import save_bundle

    model = make_model("ALS", n_factors=3, epochs=2, seed=0).fit(implicit_train)
    bundle = save_bundle(tmp_path / "als", model, implicit_train)  # type: ignore[arg-type]
    _rewrite(bundle / "model" / "manifest.json", lambda m: m["params"].update(n_factors=-5))
    _rewrite(bundle / "bundle.json", lambda m: m["children"].update(model=_sha(bundle / "model")))
    with pytest.raises(BundleError, match="n_factors"):
        load_model(bundle / "model")
    with pytest.raises(BundleError, match="n_factors"):
        load_bundle(bundle)


def test_unknown_parameter_is_refused(tiny_bundle: Path) -> None:
    from fusionrec.models import load_model

    _rewrite(tiny_bundle / "model" / "manifest.json", lambda m: m["params"].update(bogus=1))
    with pytest.raises(BundleError, match="bogus"):
        load_model(tiny_bundle / "model")


@pytest.mark.parametrize(
    ("field", "value"),
    [("store_seq", "10"), ("store_seq", -1), ("meta_columns", "title"), ("extra", [1]), ("created", "x")],
)
def test_bundle_manifest_fields_of_the_wrong_type_are_refused(tiny_bundle: Path, field: str, value: object) -> None:
    _rewrite(tiny_bundle / "bundle.json", lambda m: m.update({field: value}))
    with pytest.raises(BundleError, match=field):
        load_bundle(tiny_bundle)


def test_bundle_beyond_its_store_is_refused_when_served(tiny_bundle: Path) -> None:
    """A (re-signed) store_seq beyond every event the store ever held would silently skip the store's events."""
    from fusionrec.serving.engine import ServingEngine
    from fusionrec.serving.store import Event, SQLiteStore

    _rewrite(tiny_bundle / "bundle.json", lambda m: m.update(store_seq=10**9))
    assert load_bundle(tiny_bundle).store_seq == 10**9  # well-formed: only the store can tell
    store = SQLiteStore(tiny_bundle.parent / "events.db")
    store.append([Event("u1", "i1")])
    with pytest.raises(BundleError, match="store_seq"):
        ServingEngine(tiny_bundle, store)
    store.close()


def test_bundle_at_a_position_whose_events_were_forgotten_still_serves(tiny_bundle: Path) -> None:
    """The store's highest position counts the events of forgotten users (their tombstone records it)."""
    from fusionrec.serving.engine import ServingEngine
    from fusionrec.serving.store import Event, SQLiteStore

    store = SQLiteStore(tiny_bundle.parent / "events.db")
    store.append([Event("u1", "i1"), Event("gone", "i2")])
    store.delete_user("gone")
    assert store.last_seq() == 1
    _rewrite(tiny_bundle / "bundle.json", lambda m: m.update(store_seq=2))
    ServingEngine(tiny_bundle, store).close()


def _sha(model_dir: Path) -> str:
    return str(json.loads((model_dir / "manifest.json").read_text())["sha256"])
