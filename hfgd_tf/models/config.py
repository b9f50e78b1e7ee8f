"""ModelConfig: the plain, checked description of a segmentation model."""

import dataclasses

from hfgd_tf.backbones import BACKBONE_PRESETS
from hfgd_tf.backbones.external import parse_backbone_kwargs, parse_backbone_name
from hfgd_tf.backbones.factory import check_backbone_name, supports_dilation
from hfgd_tf.backbones.resnet import BACKBONE_OUTPUT_STRIDES
from hfgd_tf.layers.normalization import NORM_METHODS
from hfgd_tf.layers.semantic_fpn import OUTPUT_STRIDES
from hfgd_tf.models.hfgd import INPUT_NORMALIZATIONS

CAE_TYPES = ("transformer", "aspp", "ppm", "none")
UPSAMPLERS = ("usfpn", "sfpn", "deeplabv3plus", "none")


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"ModelConfig.{name} must be one of {allowed}. Received: {name}={value!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """What to build; `hfgd_tf.models.build_model` turns it into a Keras model.

    Attributes:
        num_classes: int. K.
        backbone: str. A key of `hfgd_tf.backbones.BACKBONE_PRESETS`, or keras_cv:<ClassName> /
            keras_hub:<ClassName> (hfgd_tf.backbones.external).
        backbone_kwargs: str. keras_cv:/keras_hub: backbones only: a JSON object of constructor arguments
            over the class's defaults, e.g. '{"stackwise_filters": [16, 32, 64, 128]}'.
        backbone_preset_dir: str. keras_cv:/keras_hub: backbones only: a local preset directory to load
            (nothing is downloaded).
        backbone_weights_path: str. Local `.weights.h5` for the backbone; "" for random init.
        backbone_output_stride: int. 32, 16 or 8 (dilated last stages).
        num_channels: int. D, the width of the CAE, class kernels and upsampler.
        cae: str. Context encoder: "transformer" (default, [ours]), "aspp", "ppm" or "none".
        cae_num_blocks: int. Transformer blocks in the CAE.
        cae_num_heads: int. Attention heads in the CAE.
        upsampler: str. "usfpn" (HFGD's guided upsampler), "sfpn" (plain SemanticFPN baseline, a
            different model: no CAE, no high-level branch), "deeplabv3plus" (DeepLabV3+ baseline, meant
            for a dilated backbone: backbone_output_stride 16 or 8) or "none" (high-level branch only).
        output_stride: int. Output stride of the upsampler's logits: 8, 4 or 2. Not the authors'
            `output_stride` (their backbone's, set by dilation), which is `backbone_output_stride` here.
        os2_num_channels: int. Width of the OS2 stage of the upsampler; 0 means num_channels // 4 ([ours]).
        stop_gradient_backbone: bool. Stop the gradient of the backbone features entering the upsampler
            (C2.., and S1 at OS2), so that the upsampler's loss does not train the backbone. Default on.
        stop_gradient_guidance: bool. Stop the gradient of the guidance H (the CAE output) entering the
            upsampler, so that the upsampler's loss does not train the CAE. Default on.
        stop_gradient_class_kernels: bool. Stop the gradient of the shared class kernels in the
            upsampler's classifier, so that they train with the high-level loss only. Default on.
        share_class_kernels: bool. The upsampler classifies with the high-level branch's class kernels
            (HFGD); off gives it its own classifier (the plain baseline). Default on.
        norm_method: str. "sync_batch_norm" (default; plain BN on one replica), "batch_norm",
            "group_norm".
        bn_momentum, bn_epsilon: float. BatchNorm settings (Keras momentum semantics).
        group_norm_groups: int.
        input_normalization: str. "minus_one_one" or "imagenet".
    """

    num_classes: int
    backbone: str = "resnet50"
    backbone_weights_path: str = ""
    backbone_kwargs: str = ""
    backbone_preset_dir: str = ""
    backbone_output_stride: int = 32
    num_channels: int = 256
    cae: str = "transformer"
    cae_num_blocks: int = 1
    cae_num_heads: int = 8
    upsampler: str = "usfpn"
    output_stride: int = 4
    os2_num_channels: int = 0
    stop_gradient_backbone: bool = True
    stop_gradient_guidance: bool = True
    stop_gradient_class_kernels: bool = True
    share_class_kernels: bool = True
    norm_method: str = "sync_batch_norm"
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    group_norm_groups: int = 32
    input_normalization: str = "minus_one_one"

    def __post_init__(self):
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"ModelConfig.num_classes must be an int >= 1. Received: num_classes={self.num_classes!r}")
        if parse_backbone_name(self.backbone) is None:
            _check_choice("backbone", self.backbone, tuple(sorted(BACKBONE_PRESETS)))
        check_backbone_name(self.backbone)
        parse_backbone_kwargs(self.backbone_kwargs)
        _check_choice("backbone_output_stride", self.backbone_output_stride, BACKBONE_OUTPUT_STRIDES)
        _check_choice("cae", self.cae, CAE_TYPES)
        _check_choice("upsampler", self.upsampler, UPSAMPLERS)
        _check_choice("output_stride", self.output_stride, OUTPUT_STRIDES)
        _check_choice("norm_method", self.norm_method, NORM_METHODS)
        _check_choice("input_normalization", self.input_normalization, INPUT_NORMALIZATIONS)
        if self.num_channels < 4 or self.num_channels % 4:
            raise ValueError(
                f"ModelConfig.num_channels must be a positive multiple of 4. Received: num_channels={self.num_channels}"
            )
        if self.cae == "transformer" and self.num_channels % self.cae_num_heads:
            raise ValueError(
                "ModelConfig.num_channels must be divisible by cae_num_heads. "
                f"Received: num_channels={self.num_channels}, cae_num_heads={self.cae_num_heads}"
            )
        if self.backbone_output_stride != 32 and not supports_dilation(self.backbone):
            raise ValueError(
                f"ModelConfig.backbone_output_stride={self.backbone_output_stride} needs a ResNet backbone "
                f"(dilation); {self.backbone!r} supports only 32"
            )
        if self.cae_num_blocks < 1:
            raise ValueError(f"ModelConfig.cae_num_blocks must be >= 1. Received: {self.cae_num_blocks}")
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ValueError(f"ModelConfig.bn_momentum must be in [0, 1). Received: bn_momentum={self.bn_momentum}")

    @property
    def norm(self):
        """The norm spec dict passed to every layer."""
        return {
            "method": self.norm_method,
            "momentum": self.bn_momentum,
            "epsilon": self.bn_epsilon,
            "groups": self.group_norm_groups,
        }

    @property
    def input_divisor(self):
        """Input sizes are best multiples of this (the backbone's C5 stride); any size works."""
        return self.backbone_output_stride
