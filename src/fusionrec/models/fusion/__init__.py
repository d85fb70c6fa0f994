"""Deep multimodal fusion (imports torch: load it through the registry, ``make_model("DeepFusion")``)."""

from fusionrec.models.fusion.layers import FUSIONS, AttentionFusion, ConcatFusion, GatedFusion, LateFusion
from fusionrec.models.fusion.model import DeepFusion, FusionNet, FusionNetConfig
from fusionrec.models.fusion.towers import DenseTower, DenseTowerConfig, TextTower, TextTowerConfig, hash_tokenize

__all__ = [
    "FUSIONS",
    "AttentionFusion",
    "ConcatFusion",
    "DeepFusion",
    "DenseTower",
    "DenseTowerConfig",
    "FusionNet",
    "FusionNetConfig",
    "GatedFusion",
    "LateFusion",
    "TextTower",
    "TextTowerConfig",
    "hash_tokenize",
]
