"""Fusion layers: combine the ``M`` modality vectors of each item into one item vector.

Shapes: ``B`` items, ``M`` modalities (the item-id embedding counts as one), ``D`` tower width.
Every layer takes ``h [B, M, D]`` and a presence mask ``m [B, M]`` (1 = present, 0 = missing); a
missing modality never contributes (its vector is zeroed and it gets no weight).  Because the item
vector does not depend on the user, scores stay a dot product ``s_ui = p_u . v_i`` and all item
vectors can be precomputed.
"""

from __future__ import annotations

import torch
from torch import nn

from fusionrec.errors import ConfigError

__all__ = ["FUSIONS", "AttentionFusion", "ConcatFusion", "GatedFusion", "LateFusion", "make_fusion"]

FUSIONS = ("concat", "gated", "attention", "late")


class ConcatFusion(nn.Module):
    """Early fusion: ``v = W [m_1 h_1; ...; m_M h_M] + b``, ``[B, M, D] -> [B, D]``."""

    def __init__(self, n_modalities: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(n_modalities * dim, dim)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.proj((h * mask.unsqueeze(-1)).flatten(1))  # type: ignore[no-any-return]


class GatedFusion(nn.Module):
    """``v = sum_m m_m g_m h_m`` with a per-item gate ``g_m = sigmoid(w_m . h_m + c_m)``, ``[B, M, D] -> [B, D]``."""

    def __init__(self, n_modalities: int, dim: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(n_modalities, dim))
        self.c = nn.Parameter(torch.zeros(n_modalities))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid((h * self.w).sum(-1) + self.c) * mask  # [B, M]
        return (gate.unsqueeze(-1) * h).sum(1)


class AttentionFusion(nn.Module):
    """``v = sum_m a_m h_m``, ``a = softmax over present m of q . tanh(W h_m + b)``, ``[B, M, D] -> [B, D]``."""

    def __init__(self, n_modalities: int, dim: int) -> None:
        super().__init__()
        self.key = nn.Linear(dim, dim)
        self.query = nn.Parameter(torch.zeros(dim))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = torch.tanh(self.key(h)) @ self.query  # [B, M]
        logits = logits.masked_fill(mask <= 0, -1e9)
        att = torch.softmax(logits, dim=1) * mask  # all-missing rows get zero weights
        return (att.unsqueeze(-1) * h).sum(1)


class LateFusion(nn.Module):
    """Late fusion: ``s_ui = sum_m w_m m_m (p_u^m . h_m)`` with learned weights ``w_m``.

    Returns ``[w_1 m_1 h_1; ...; w_M m_M h_M]`` ``[B, M * D]``; the user side holds one vector per modality
    (``[M * D]``), so the score is still one dot product.
    """

    def __init__(self, n_modalities: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_modalities))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (h * (self.weight * mask).unsqueeze(-1)).flatten(1)


def make_fusion(kind: str, n_modalities: int, dim: int) -> nn.Module:
    """The fusion layer named ``kind`` (one of :data:`FUSIONS`)."""
    layers: dict[str, type[nn.Module]] = {
        "concat": ConcatFusion,
        "gated": GatedFusion,
        "attention": AttentionFusion,
        "late": LateFusion,
    }
    if kind not in layers:
        raise ConfigError(f"fusion must be one of {FUSIONS}, got {kind!r}")
    return layers[kind](n_modalities, dim)
