"""Encoder hyper-parameters: keyword-only, declared constraints checked once, did-you-mean, renames, clone."""

from __future__ import annotations

import importlib
import inspect
import warnings
from typing import Any

import numpy as np
import pytest

from fusionrec.errors import ConfigError
from fusionrec.features import (
    ENCODERS,
    BM25Encoder,
    Encoder,
    GRUSequenceEncoder,
    ImageDescriptorEncoder,
    ImageModelEncoder,
    Pipeline,
    PostProcess,
    TabularEncoder,
    TfidfEncoder,
    encoder_from_state,
    encoder_to_state,
    make_encoder,
)


def _fn(batch: np.ndarray) -> np.ndarray:
    return batch.mean(axis=(2, 3))


#: every encoder class that can be stored: the registry plus the composition / hook classes
CLASSES: dict[str, type[Encoder]] = {
    name: getattr(importlib.import_module(path.partition(":")[0]), path.partition(":")[2])
    for name, path in ENCODERS.items()
}
CLASSES.update({"pipeline": Pipeline, "postprocess": PostProcess, "image-model": ImageModelEncoder})
#: the parameters without a default, per class
REQUIRED: dict[str, dict[str, Any]] = {
    "pipeline": {"encoder": TfidfEncoder()},
    "image-model": {"fn": _fn, "dim": 3},
}


def _build(name: str) -> Encoder:
    return CLASSES[name](**REQUIRED.get(name, {}))


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_constructor_is_keyword_only_and_every_parameter_is_declared(name: str) -> None:
    cls = CLASSES[name]
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    positional = [p.name for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert not positional, f"{cls.__name__} takes {positional} positionally; make __init__(self, *, ...)"
    undeclared = set(cls.param_names()) - set(cls.param_constraints())
    assert not undeclared, f"{cls.__name__} declares no allowed values for {sorted(undeclared)}"
    assert not set(cls.param_constraints()) - set(cls.param_names()), "a constraint names no parameter"


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_parameters_are_stored_unchanged_and_clone_round_trips(name: str) -> None:
    enc = _build(name)
    given = REQUIRED.get(name, {})
    for key, value in given.items():
        assert enc.get_params()[key] is value
    copy = enc.clone()
    assert type(copy) is type(enc) and copy is not enc
    assert set(copy.get_params()) == set(enc.param_names())
    for key, value in enc.get_params().items():
        if isinstance(value, Encoder):  # nested encoders are fresh copies with the same parameters
            assert copy.get_params()[key] is not value
            assert copy.get_params()[key].storable_params() == value.storable_params()
        else:
            assert copy.get_params()[key] == value


def test_positional_arguments_are_refused_with_the_names() -> None:
    with pytest.raises(ConfigError, match=r"keyword arguments only.*method=\.\.\."):
        PostProcess("standard")  # type: ignore[misc]
    with pytest.raises(ConfigError, match="keyword arguments only"):
        Pipeline(TfidfEncoder(), PostProcess())  # type: ignore[misc, arg-type]


def test_unknown_names_get_a_did_you_mean() -> None:
    with pytest.raises(ConfigError, match="did you mean 'max_features'"):
        TfidfEncoder(max_feature=10)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="did you mean 'svd_components'"):
        make_encoder("tfidf", svd_component=2)
    with pytest.raises(ConfigError, match="did you mean 'n_components'"):
        PostProcess(n_component=2)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("build", "param"),
    [
        (lambda: TfidfEncoder(max_features=0), "max_features"),
        (lambda: TfidfEncoder(ngram_range=(2, 1)), "ngram_range"),
        (lambda: TfidfEncoder(min_df=1.5), "min_df"),
        (lambda: TfidfEncoder(sublinear_tf="yes"), "sublinear_tf"),  # type: ignore[arg-type]
        (lambda: BM25Encoder(b=1.5), "b"),
        (lambda: BM25Encoder(k1=-1.0), "k1"),
        (lambda: PostProcess(method="bogus"), "method"),
        (lambda: PostProcess(n_components=0), "n_components"),
        (lambda: ImageDescriptorEncoder(hsv_bins=(4, 2)), "hsv_bins"),  # type: ignore[arg-type]
        (lambda: ImageDescriptorEncoder(size=4), "size"),
        (lambda: TabularEncoder(numeric="robust"), "numeric"),
        (lambda: GRUSequenceEncoder(lr=0.0), "lr"),
        (lambda: ImageModelEncoder(fn="not callable", dim=3), "fn"),  # type: ignore[arg-type]
        (lambda: Pipeline(encoder=TfidfEncoder(), steps=[TfidfEncoder()]), "steps"),  # type: ignore[list-item]
        (lambda: make_encoder("sentence", long_texts="cut"), "long_texts"),
    ],
)
def test_declared_constraints_are_checked_when_the_encoder_is_built(build: Any, param: str) -> None:
    with pytest.raises(ConfigError, match=rf"{param}=.* is not allowed; {param} must be"):
        build()


def test_clone_catches_a_constructor_that_alters_its_arguments() -> None:
    class Listing(TfidfEncoder):
        def __init__(self, *, ngram_range: tuple[int, int] = (1, 1)) -> None:
            super().__init__(ngram_range=ngram_range)
            self.ngram_range = list(ngram_range)  # type: ignore[assignment]  # a converted copy, not the argument

    enc = Listing(ngram_range=(1, 2))
    with pytest.raises(ConfigError, match="does not store parameter 'ngram_range' unchanged"):
        enc.clone()


def test_former_names_work_with_a_future_warning_and_stored_states_upgrade_silently() -> None:
    with pytest.warns(FutureWarning, match="'embedding_dim' was renamed 'n_factors'"):
        gru = GRUSequenceEncoder(embedding_dim=8)  # type: ignore[call-arg]
    assert gru.n_factors == 8
    with pytest.warns(FutureWarning, match="'weight_decay' was renamed 'reg'"):
        assert GRUSequenceEncoder(weight_decay=0.01).reg == 0.01  # type: ignore[call-arg]
    with pytest.warns(FutureWarning, match="renamed 'reg'"):
        assert gru.clone(weight_decay=0.5).reg == 0.5
    with pytest.raises(ConfigError, match="it was renamed 'n_factors'"):
        GRUSequenceEncoder(embedding_dim=8, n_factors=8)  # type: ignore[call-arg]
    meta, arrays = encoder_to_state(GRUSequenceEncoder(n_factors=4, reg=0.1))
    params = dict(meta["params"])
    params["embedding_dim"], params["weight_decay"] = params.pop("n_factors"), params.pop("reg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = encoder_from_state({**meta, "params": params}, arrays)
    assert (back.n_factors, back.reg) == (4, 0.1)  # type: ignore[attr-defined]


def test_an_image_model_stores_its_key_not_the_callable() -> None:
    enc = ImageModelEncoder(fn=_fn, dim=3, key="channel-means")
    assert enc.get_params()["fn"] is _fn and enc.dim == 3
    assert enc.storable_params()["fn"] == "channel-means"
    assert enc.cache_key() == ImageModelEncoder(fn=lambda x: x, dim=3, key="channel-means").cache_key()
    back = encoder_from_state(*encoder_to_state(enc), callables={"channel-means": _fn})
    assert back.get_params()["fn"] is _fn and back.dim == 3
