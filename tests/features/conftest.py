"""Tiny generated media files for the feature tests (images, a corrupt file, wav audio, texts)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test writes its feature cache under its own tmp folder."""
    monkeypatch.setenv("FUSIONREC_CACHE_DIR", str(tmp_path / "cache"))


def _gradient(size: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    img = np.stack([x * 255 // size, y * 255 // size, (x + y) * 127 // size], axis=2).astype(np.uint8)
    return np.clip(img.astype(int) + rng.integers(0, 30, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def image_files(tmp_path: Path) -> dict[str, Path]:
    """RGB PNG, RGB JPEG, CMYK JPEG, grayscale PNG, palette PNG with transparency, RGBA PNG,
    a PNG saved with a .jpg name, a 16-bit grey PNG, a corrupt file and a truncated JPEG."""
    from PIL import Image

    d = tmp_path / "img"
    d.mkdir()
    rgb = Image.fromarray(_gradient())
    files = {}
    files["png"] = d / "a.png"
    rgb.save(files["png"])
    files["jpeg"] = d / "b.jpg"
    rgb.save(files["jpeg"], quality=90)
    files["cmyk"] = d / "c.jpg"
    rgb.convert("CMYK").save(files["cmyk"])
    files["grey"] = d / "d.png"
    rgb.convert("L").save(files["grey"])
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    files["palette"] = d / "e.png"
    pal.save(files["palette"], transparency=0)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    files["rgba"] = d / "f.png"
    rgba.save(files["rgba"])
    files["png_as_jpg"] = d / "g.jpg"
    rgb.save(files["png_as_jpg"], format="PNG")
    files["grey16"] = d / "h.png"
    Image.fromarray(_gradient()[:, :, 0].astype(np.uint16) * 200).save(files["grey16"])
    files["corrupt"] = d / "bad.jpg"
    files["corrupt"].write_bytes(b"this is not an image at all")
    full = files["jpeg"].read_bytes()
    files["truncated"] = d / "trunc.jpg"
    files["truncated"].write_bytes(full[: len(full) // 2])
    return files


def write_wav(
    path: Path, seconds: float = 1.0, rate: int = 16000, freq: float = 440.0, channels: int = 1, noise: float = 0.05
) -> Path:
    """A sine tone plus seeded white noise as 16-bit PCM through the stdlib wave module."""
    t = np.arange(int(seconds * rate)) / rate
    y = 0.5 * np.sin(2 * np.pi * freq * t) + noise * np.random.default_rng(0).standard_normal(len(t))
    pcm = (y * 32767).astype("<i2")
    if channels == 2:
        pcm = np.stack([pcm, pcm], axis=1).reshape(-1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path
