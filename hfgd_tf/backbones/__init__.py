"""Backbones: Keras models mapping images `[B, H, W, 3]` to a feature dict.

Every backbone returns the keys of `FEATURE_KEYS` (`S1` at OS2, `C2`..`C5` at OS4..OS32, or less
stride for dilated stages), except `S1` for backbones without a stride-2 level (ConvNeXt, Swin: the
OS2 upsampler then makes S1 itself), and exposes a `feature_strides` dict of the keys it returns (ResNet
also `feature_channels`).
"""

from hfgd_tf.backbones.convnext import ConvNeXtBackbone
from hfgd_tf.backbones.external import parse_backbone_kwargs, parse_backbone_name, preset_input_normalization
from hfgd_tf.backbones.factory import BACKBONE_PRESETS, build_backbone
from hfgd_tf.backbones.loading import load_backbone_weights
from hfgd_tf.backbones.resnet import ResNetBackbone
from hfgd_tf.backbones.swin import SwinBackbone
from hfgd_tf.backbones.weights import load_weights_by_name, save_weights_by_name

FEATURE_KEYS = ("S1", "C2", "C3", "C4", "C5")

__all__ = [
    "BACKBONE_PRESETS",
    "ConvNeXtBackbone",
    "FEATURE_KEYS",
    "ResNetBackbone",
    "SwinBackbone",
    "build_backbone",
    "load_backbone_weights",
    "load_weights_by_name",
    "parse_backbone_kwargs",
    "parse_backbone_name",
    "preset_input_normalization",
    "save_weights_by_name",
]
