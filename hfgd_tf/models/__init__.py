"""Segmentation models: HFGD and its baselines (SemanticFPN, DeepLabV3+, high-level only), built from a `ModelConfig`."""

from hfgd_tf.models.baseline_segmenter import BaselineSegmenter
from hfgd_tf.models.config import ModelConfig
from hfgd_tf.models.factory import build_model, dtype_policy_scope
from hfgd_tf.models.hfgd import HFGDSegmenter

__all__ = ["BaselineSegmenter", "HFGDSegmenter", "ModelConfig", "build_model", "dtype_policy_scope"]
