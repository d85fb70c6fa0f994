"""Paired significance tests between two models over the same users."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusionrec.errors import ConfigError

__all__ = ["PairedTest", "paired_ttest", "wilcoxon_test"]


@dataclass(frozen=True)
class PairedTest:
    """Result of a paired test of ``a`` against ``b`` (per-user metric values)."""

    test: str
    statistic: float
    p_value: float
    mean_difference: float
    n: int

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ConfigError(
            f"paired tests need the same users in both results ({a.shape} vs {b.shape}); "
            "evaluate both models on the same split"
        )
    keep = ~(np.isnan(a) | np.isnan(b))
    if keep.sum() < 2:
        raise ConfigError("a paired test needs at least two users with values for both models")
    return a[keep], b[keep]


def paired_ttest(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Two-sided paired t-test of per-user metric values."""
    from scipy import stats

    a, b = _paired(a, b)
    if np.allclose(a, b):
        return PairedTest("paired t-test", 0.0, 1.0, 0.0, len(a))
    res = stats.ttest_rel(a, b)
    return PairedTest("paired t-test", float(res.statistic), float(res.pvalue), float(np.mean(a - b)), len(a))


def wilcoxon_test(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test (zero differences dropped, Pratt would keep them)."""
    from scipy import stats

    a, b = _paired(a, b)
    if np.allclose(a, b):
        return PairedTest("wilcoxon", 0.0, 1.0, 0.0, len(a))
    res = stats.wilcoxon(a, b, zero_method="wilcox")
    return PairedTest("wilcoxon", float(res.statistic), float(res.pvalue), float(np.mean(a - b)), len(a))
