"""Per-modality towers: each maps one modality of a batch of items to a ``D``-dimensional vector.

Shapes: ``B`` items in a batch, ``F`` a modality's input width, ``D`` the shared embedding width,
``L`` tokens per text, ``E`` token-embedding width.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fusionrec.errors import ConfigError

__all__ = ["DenseTower", "DenseTowerConfig", "TextTower", "TextTowerConfig", "hash_tokenize"]

_WORD = re.compile(r"[a-z0-9]+")
TEXT_ENCODERS = ("cnn", "lstm", "cnn+lstm")


def hash_tokenize(texts: Sequence[str | None], vocab_size: int, max_len: int) -> np.ndarray:
    """Word ids ``int64 [n, max_len]`` by the hashing trick: ``1 + crc32(word) mod (vocab_size - 1)``.

    Lower-cased alphanumeric words, truncated to ``max_len``, padded with 0.  No vocabulary is stored,
    so texts of items added after fitting tokenise the same way.
    """
    if vocab_size < 2 or max_len < 1:
        raise ConfigError("the text tower needs text_vocab >= 2 and text_len >= 1")
    out = np.zeros((len(texts), max_len), dtype=np.int64)
    for row, text in enumerate(texts):
        words = _WORD.findall(str(text or "").lower())[:max_len]
        out[row, : len(words)] = [1 + zlib.crc32(w.encode()) % (vocab_size - 1) for w in words]
    return out


@dataclass(frozen=True)
class DenseTowerConfig:
    """MLP ``F -> hidden -> D`` over precomputed (dense or pretrained) item features."""

    in_dim: int
    out_dim: int
    hidden: int = 64
    dropout: float = 0.0


class DenseTower(nn.Module):
    """``h = W_2 relu(W_1 x + b_1) + b_2`` with dropout after the hidden layer."""

    def __init__(self, config: DenseTowerConfig) -> None:
        super().__init__()
        self.config = config
        self.net = nn.Sequential(
            nn.Linear(config.in_dim, config.hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, F] -> [B, D]``."""
        return self.net(x)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class TextTowerConfig:
    """Learned text tower: word embeddings, then a CNN and/or an LSTM (the CNN+LSTM concatenation model)."""

    vocab_size: int
    out_dim: int
    embed_dim: int = 32
    channels: int = 32
    kernel_size: int = 3
    encoder: str = "cnn"

    def __post_init__(self) -> None:
        if self.encoder not in TEXT_ENCODERS:
            raise ConfigError(f"text_tower must be one of {TEXT_ENCODERS}, got {self.encoder!r}")


class TextTower(nn.Module):
    """Word ids to a text vector.

    CNN branch: ``max_t relu(conv1d_k(E[w])_t)`` (``channels`` wide, kernel ``k``); LSTM branch: the
    mean of the LSTM hidden states over the non-padding tokens (``channels`` wide).  The branches in
    use are concatenated and projected linearly to ``D``.  Padding (id 0) embeds to zero.
    """

    def __init__(self, config: TextTowerConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        width = 0
        self.conv: nn.Conv1d | None = None
        self.lstm: nn.LSTM | None = None
        if "cnn" in config.encoder:
            self.conv = nn.Conv1d(
                config.embed_dim, config.channels, config.kernel_size, padding=config.kernel_size // 2
            )
            width += config.channels
        if "lstm" in config.encoder:
            self.lstm = nn.LSTM(config.embed_dim, config.channels, batch_first=True)
            width += config.channels
        self.proj = nn.Linear(width, config.out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens int64 [B, L] -> [B, D]`` (an all-padding row gives ``proj`` of zeros)."""
        mask = (tokens > 0).unsqueeze(-1).to(torch.float32)  # [B, L, 1]
        emb = self.embed(tokens)  # [B, L, E]
        parts = []
        if self.conv is not None:
            conv = torch.relu(self.conv(emb.transpose(1, 2))).transpose(1, 2)  # [B, L, C]
            parts.append((conv * mask).amax(dim=1))
        if self.lstm is not None:
            hidden, _ = self.lstm(emb)  # [B, L, C]
            parts.append((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0))
        return self.proj(torch.cat(parts, dim=1))  # type: ignore[no-any-return]
