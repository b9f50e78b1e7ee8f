"""`build_model`: the one place that maps a `ModelConfig` to constructor arguments."""

import contextlib

from hfgd_tf.backbones import build_backbone
from hfgd_tf.layers.cae import ASPPEncoder, ContextAugmentationEncoder, PPMEncoder, ProjectionEncoder
from hfgd_tf.layers.deeplab import DeepLabV3PlusDecoder
from hfgd_tf.layers.policy import dtype_policy_scope as policy_scope
from hfgd_tf.layers.semantic_fpn import GuidedUpsampler, SemanticFPN
from hfgd_tf.models.baseline_segmenter import BaselineSegmenter
from hfgd_tf.models.hfgd import HFGDSegmenter

DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
# Width of the upsampler's own S1 image stem for backbones without a stride-2 level ([ours]).
IMAGE_STEM_NUM_CHANNELS = 32


def _build_context_encoder(config):
    if config.cae == "transformer":
        return ContextAugmentationEncoder(
            config.num_channels,
            num_blocks=config.cae_num_blocks,
            num_heads=config.cae_num_heads,
            norm=config.norm,
            position_encoding=config.cae_position_encoding,
            name="context_encoder",
        )
    if config.cae == "aspp":
        # DeepLabV3 rates (6, 12, 18) are for OS16; scale them to the C5 stride in use.
        rates = tuple(max(1, r * 16 // config.backbone_output_stride) for r in (6, 12, 18))
        return ASPPEncoder(config.num_channels, dilation_rates=rates, norm=config.norm, name="context_encoder")
    if config.cae == "ppm":
        return PPMEncoder(config.num_channels, norm=config.norm, name="context_encoder")
    return ProjectionEncoder(config.num_channels, norm=config.norm, name="context_encoder")


@contextlib.contextmanager
def dtype_policy_scope(policy):
    """Sets the Keras global dtype policy for layers built inside, and restores it afterwards."""
    if policy not in DTYPE_POLICIES:
        raise ValueError(f"dtype policy must be one of {DTYPE_POLICIES}. Received: {policy!r}")
    with policy_scope(policy):
        yield


def build_model(config, dtype_policy="float32"):
    """Builds the model described by `config`.

    Args:
        config: `ModelConfig`.
        dtype_policy: str. "float32", "mixed_float16" or "mixed_bfloat16". Logits are float32 always.

    Returns:
        `HFGDSegmenter` (upsampler "usfpn" or "none") or `BaselineSegmenter` (upsampler "sfpn" or
        "deeplabv3plus").
    """
    with dtype_policy_scope(dtype_policy):
        backbone = build_backbone(
            config.backbone,
            output_stride=config.backbone_output_stride,
            weights_path=config.backbone_weights_path or None,
            backbone_kwargs=config.backbone_kwargs,
            preset_dir=config.backbone_preset_dir,
            **config.backbone_arguments,
        )
        # S1 is used only at OS2. A backbone without a stride-2 level (ConvNeXt, Swin) returns no S1;
        # then the upsampler makes it with its own image stem, trained with the upsampler's loss.
        needs_image_stem = config.output_stride == 2 and "S1" not in backbone.output
        fpn_arguments = dict(
            output_stride=config.output_stride,
            norm=config.norm,
            os2_num_channels=config.os2_num_channels or None,
            image_stem_num_channels=IMAGE_STEM_NUM_CHANNELS if needs_image_stem else 0,
            output_channels=config.num_channels,
        )
        if config.upsampler == "sfpn":
            decoder = SemanticFPN(config.upsampler_width, name="decoder", **fpn_arguments)
            return BaselineSegmenter(
                backbone, decoder, config.num_classes, input_normalization=config.input_normalization
            )
        if config.upsampler == "deeplabv3plus":
            rates = tuple(r * 16 // config.backbone_output_stride for r in (6, 12, 18))
            decoder = DeepLabV3PlusDecoder(config.num_channels, dilation_rates=rates, norm=config.norm, name="decoder")
            return BaselineSegmenter(
                backbone, decoder, config.num_classes, input_normalization=config.input_normalization
            )
        upsampler = None
        if config.upsampler == "usfpn":
            upsampler = GuidedUpsampler(config.upsampler_width, name="guided_upsampler", **fpn_arguments)
        return HFGDSegmenter(
            backbone,
            _build_context_encoder(config),
            config.num_classes,
            upsampler=upsampler,
            stop_gradient_backbone=config.stop_gradient_backbone,
            stop_gradient_guidance=config.stop_gradient_guidance,
            stop_gradient_class_kernels=config.stop_gradient_class_kernels,
            share_class_kernels=config.share_class_kernels,
            input_normalization=config.input_normalization,
        )
