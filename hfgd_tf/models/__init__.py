"""Segmentation models: HFGD and its baselines, built from a `ModelConfig`."""

from hfgd_tf.models.config import ModelConfig
from hfgd_tf.models.factory import build_model, dtype_policy_scope
from hfgd_tf.models.hfgd import HFGDSegmenter
from hfgd_tf.models.semantic_fpn_segmenter import SemanticFPNSegmenter

__all__ = ["HFGDSegmenter", "ModelConfig", "SemanticFPNSegmenter", "build_model", "dtype_policy_scope"]
