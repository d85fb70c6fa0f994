"""Model-level fusion of fitted recommenders: weighted blends and stacking (score-level)."""

from fusionrec.ensemble.blend import Ensemble, WeightedBlend, blend_weights, load_ensemble, split_validation
from fusionrec.ensemble.stacking import Stacking, activity_features

__all__ = [
    "Ensemble",
    "Stacking",
    "WeightedBlend",
    "activity_features",
    "blend_weights",
    "load_ensemble",
    "split_validation",
]
