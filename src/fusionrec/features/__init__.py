"""Feature extraction: encoders turn raw content (text, images, audio, video, tables, behaviour) into dense matrices.

Every encoder follows :class:`Encoder` (``fit`` / ``transform`` -> ``float32 [n, d]``); per-item failures become
zero rows listed in a :class:`FeatureReport`; :class:`FeatureCache` keeps rows by content hash.
``build_side_info(dataset)`` encodes a whole dataset with weight-free defaults and keeps the fitted encoders;
``encoder_to_state`` / ``side_to_state`` store them (and the side information) as JSON plus arrays, no pickle.  Heavy libraries (torch,
sentence-transformers, librosa, PyAV) load only when an encoder that needs them runs.
"""

from fusionrec.features.audio import AisfxEncoder, AudioStatsEncoder
from fusionrec.features.base import Encoder, FeatureFailure, FeatureReport, ItemError, Pipeline, PostProcess
from fusionrec.features.cache import FeatureCache, content_hash
from fusionrec.features.image import EfficientNetEncoder, ImageDescriptorEncoder, ImageModelEncoder, load_image
from fusionrec.features.pipeline import (
    ENCODERS,
    available_encoders,
    build_side_info,
    default_encoder,
    encode_modality,
    make_encoder,
)
from fusionrec.features.sequence import BehaviourStatsEncoder, GRUSequenceEncoder, behaviour_stats
from fusionrec.features.state import encoder_from_state, encoder_to_state, side_from_state, side_to_state
from fusionrec.features.tabular import HashingEncoder, MultiHotEncoder, TabularEncoder
from fusionrec.features.text import BM25Encoder, SentenceEncoder, TfidfEncoder
from fusionrec.features.video import VideoEncoder, read_video

__all__ = [
    "ENCODERS",
    "AisfxEncoder",
    "AudioStatsEncoder",
    "BM25Encoder",
    "BehaviourStatsEncoder",
    "EfficientNetEncoder",
    "Encoder",
    "FeatureCache",
    "FeatureFailure",
    "FeatureReport",
    "GRUSequenceEncoder",
    "HashingEncoder",
    "ImageDescriptorEncoder",
    "ImageModelEncoder",
    "ItemError",
    "MultiHotEncoder",
    "Pipeline",
    "PostProcess",
    "SentenceEncoder",
    "TabularEncoder",
    "TfidfEncoder",
    "VideoEncoder",
    "available_encoders",
    "behaviour_stats",
    "build_side_info",
    "content_hash",
    "default_encoder",
    "encode_modality",
    "encoder_from_state",
    "encoder_to_state",
    "load_image",
    "make_encoder",
    "read_video",
    "side_from_state",
    "side_to_state",
]
