"""Score-level fusion of fitted recommenders: weighted blends, stacking, reciprocal-rank fusion, switching."""

from fusionrec.ensemble.blend import Ensemble, WeightedBlend, blend_weights, load_ensemble, split_validation
from fusionrec.ensemble.rankfusion import ReciprocalRankFusion
from fusionrec.ensemble.stacking import Stacking, activity_features
from fusionrec.ensemble.switching import Switching

__all__ = [
    "Ensemble",
    "ReciprocalRankFusion",
    "Stacking",
    "Switching",
    "WeightedBlend",
    "activity_features",
    "blend_weights",
    "load_ensemble",
    "split_validation",
]
