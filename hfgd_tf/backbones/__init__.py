"""Backbones: Keras models mapping images `[B, H, W, 3]` to a feature dict.

Every backbone returns the keys of `FEATURE_KEYS` (`S1` at OS2, `C2`..`C5` at OS4..OS32, or less
stride for dilated stages) and exposes `feature_strides` / `feature_channels` dicts.
"""

from hfgd_tf.backbones.factory import BACKBONE_PRESETS, build_backbone
from hfgd_tf.backbones.resnet import ResNetBackbone

FEATURE_KEYS = ("S1", "C2", "C3", "C4", "C5")

__all__ = ["BACKBONE_PRESETS", "FEATURE_KEYS", "ResNetBackbone", "build_backbone"]
