"""Evaluation: pure metrics, the ranking / rating protocol and paired significance tests."""

from fusionrec.evaluation import metrics
from fusionrec.evaluation.protocol import RankingResult, evaluate_ranking, evaluate_ratings
from fusionrec.evaluation.stats import PairedTest, paired_ttest, wilcoxon_test

__all__ = [
    "PairedTest",
    "RankingResult",
    "evaluate_ranking",
    "evaluate_ratings",
    "metrics",
    "paired_ttest",
    "wilcoxon_test",
]
