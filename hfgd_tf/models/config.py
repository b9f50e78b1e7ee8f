"""ModelConfig: the plain, checked description of a segmentation model."""

import dataclasses

from hfgd_tf.backbones import BACKBONE_PRESETS, parse_backbone_kwargs, parse_backbone_name
from hfgd_tf.backbones.factory import check_backbone_name, supports_dilation
from hfgd_tf.backbones.resnet import BACKBONE_OUTPUT_STRIDES, FIRST_BLOCK_DILATIONS, STEM_TYPES
from hfgd_tf.layers.conv_norm_act import PADDINGS
from hfgd_tf.layers.input_normalization import INPUT_NORMALIZATIONS
from hfgd_tf.layers.normalization import NORM_METHODS
from hfgd_tf.layers.position_encoding import POSITION_ENCODINGS
from hfgd_tf.layers.semantic_fpn import OUTPUT_STRIDES

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
            (a name or kaggle:// handle, which would download, is refused). Its weights' input normalisation
            is checked when training starts from them (`Trainer`).
        backbone_weights_path: str. Local `.weights.h5` for the backbone; "" for random init.
        backbone_output_stride: int. 32, 16 or 8 (dilated last stages).
        backbone_padding: str. ResNet strided convs and stem max pool: "symmetric" (PyTorch; what
            converted timm / torchvision / mmseg checkpoints need) or "same" (Keras; keras-cv checkpoints).
        backbone_bn_epsilon: float. BatchNorm epsilon inside the ResNet backbone (1e-5 as PyTorch;
            keras.applications / keras-cv checkpoints use 1.001e-5). The decoder keeps bn_epsilon.
        backbone_stem_type: str. ResNet stem: "" keeps the preset's (resnet50 standard, resnet50c/d deep),
            "standard" (7x7/2 conv) or "deep" (three 3x3 convs).
        backbone_stem_width: int. ResNet stem output width (S1 channels; the deep stem's first two convs
            have half); 0 keeps the preset's (64).
        backbone_shortcut: str. ResNet strided shortcuts: "" keeps the preset's, "conv" (1x1/2 conv) or
            "avg_down" (2x2 average pool then 1x1 conv: ResNet-D, resnet50d).
        backbone_stride_in_1x1: bool. ResNet bottlenecks stride in their first 1x1 conv (v1 as in
            keras.applications / keras-cv) instead of the 3x3 conv (v1.5: torchvision, timm, mmseg).
        backbone_first_block_dilation: str. Dilated ResNet stages: "previous" (the first block keeps the
            previous dilation in its first 3x3 conv: torchvision, timm, mmseg) or "stage" (DeepLab).
        backbone_multi_grid: tuple. Dilation multipliers of a dilated C5's blocks; (1,) for none (the
            default); DeepLabV3 uses 1,2,4.
        drop_path_rate: float. Stochastic depth of Swin and ConvNeXt backbones (rising linearly to this
            rate over the blocks; seeded and resumable). Segmentation recipes use 0.2-0.4; ResNets ignore it.
        num_channels: int. D, the width of the CAE, the class kernels and the upsampler's output.
        upsampler_num_channels: int. Width of the (U-)SFPN head's laterals and 3x3 stages; 0 (default)
            means num_channels // 2 (128 at D=256, the width of Kirillov et al.'s semantic head). The head
            projects to D at the end, so the class kernels still classify D channels. At D=256 a
            D-wide head (`upsampler_num_channels=256`, this project's head before the cheaper default)
            costs as much as a ResNet-50 at 512x512; docs/performance.md compares the two ([ours]).
        cae: str. Context encoder: "transformer" (default, [ours]), "aspp", "ppm" or "none".
        cae_num_blocks: int. Transformer blocks in the CAE.
        cae_num_heads: int. Attention heads in the CAE.
        cae_position_encoding: str. Positions of the transformer CAE's sine encoding: "index" (row and
            column indices, the default) or "normalized" (the place in the grid, the same codes on every
            grid size, so that whole frames larger than the training crop meet no unseen positions).
            Runs written before this field keep "index" when read back.
        upsampler: str. "usfpn" (HFGD's guided upsampler), "sfpn" (plain SemanticFPN baseline, a
            different model: no CAE, no high-level branch), "deeplabv3plus" (DeepLabV3+ baseline, meant
            for a dilated backbone: backbone_output_stride 16 or 8) or "none" (high-level branch only).
        output_stride: int. Output stride of the upsampler's logits: 8, 4 or 2. Not the authors'
            `output_stride` (their backbone's, set by dilation), which is `backbone_output_stride` here.
        os2_num_channels: int. Width of the OS2 stage of the upsampler; 0 means max(8, upsampler width // 4) ([ours]).
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
        input_normalization: str. "minus_one_one" (x * 2 / 255 - 1), "imagenet" (ImageNet mean/std, for timm
            and torchvision weights, keras.applications ConvNeXt, keras-hub's ResNet presets), "zero_one"
            (x / 255, for keras-cv presets) or "caffe" (RGB to BGR minus the BGR ImageNet mean, no std, for
            keras.applications ResNets). scripts/convert_weights.py prints the one its source was trained with.
    """

    num_classes: int
    backbone: str = "resnet50"
    backbone_weights_path: str = ""
    backbone_kwargs: str = ""
    backbone_preset_dir: str = ""
    backbone_output_stride: int = 32
    backbone_padding: str = "symmetric"
    backbone_bn_epsilon: float = 1e-5
    backbone_stem_type: str = ""
    backbone_stem_width: int = 0
    backbone_shortcut: str = ""
    backbone_stride_in_1x1: bool = False
    backbone_first_block_dilation: str = "previous"
    backbone_multi_grid: tuple = (1,)
    drop_path_rate: float = 0.2
    num_channels: int = 256
    upsampler_num_channels: int = 0
    cae: str = "transformer"
    cae_num_blocks: int = 1
    cae_num_heads: int = 8
    cae_position_encoding: str = "index"
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
        # A tuple also after a JSON round trip (run_config.json stores it as a list).
        object.__setattr__(self, "backbone_multi_grid", tuple(int(r) for r in self.backbone_multi_grid))
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"ModelConfig.num_classes must be an int >= 1. Received: num_classes={self.num_classes!r}")
        if parse_backbone_name(self.backbone) is None:
            _check_choice("backbone", self.backbone, tuple(sorted(BACKBONE_PRESETS)))
        check_backbone_name(self.backbone)
        parse_backbone_kwargs(self.backbone_kwargs)
        _check_choice("backbone_output_stride", self.backbone_output_stride, BACKBONE_OUTPUT_STRIDES)
        _check_choice("backbone_padding", self.backbone_padding, PADDINGS)
        _check_choice("backbone_stem_type", self.backbone_stem_type, ("",) + STEM_TYPES)
        _check_choice("backbone_shortcut", self.backbone_shortcut, ("", "conv", "avg_down"))
        _check_choice("backbone_first_block_dilation", self.backbone_first_block_dilation, FIRST_BLOCK_DILATIONS)
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(
                f"ModelConfig.drop_path_rate must be in [0, 1). Received: drop_path_rate={self.drop_path_rate}"
            )
        if not self.backbone_bn_epsilon > 0:
            raise ValueError(f"ModelConfig.backbone_bn_epsilon must be > 0. Received: {self.backbone_bn_epsilon}")
        if self.backbone_stem_width < 0 or not self.backbone_multi_grid or min(self.backbone_multi_grid) < 1:
            raise ValueError(
                "ModelConfig.backbone_stem_width must be >= 0 and backbone_multi_grid positive rates. Received: "
                f"backbone_stem_width={self.backbone_stem_width}, backbone_multi_grid={self.backbone_multi_grid}"
            )
        _check_choice("cae", self.cae, CAE_TYPES)
        _check_choice("cae_position_encoding", self.cae_position_encoding, POSITION_ENCODINGS)
        _check_choice("upsampler", self.upsampler, UPSAMPLERS)
        _check_choice("output_stride", self.output_stride, OUTPUT_STRIDES)
        _check_choice("norm_method", self.norm_method, NORM_METHODS)
        _check_choice("input_normalization", self.input_normalization, INPUT_NORMALIZATIONS)
        if self.num_channels < 4 or self.num_channels % 4:
            raise ValueError(
                f"ModelConfig.num_channels must be a positive multiple of 4. Received: num_channels={self.num_channels}"
            )
        if self.upsampler_num_channels < 0:
            raise ValueError(
                "ModelConfig.upsampler_num_channels must be >= 0 (0: num_channels // 2). "
                f"Received: upsampler_num_channels={self.upsampler_num_channels}"
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
        if not supports_dilation(self.backbone):
            # The ResNet layout fields do not reach other backbones: refuse them rather than ignore them.
            resnet_only = {
                "backbone_padding": (self.backbone_padding, "symmetric"),
                "backbone_bn_epsilon": (self.backbone_bn_epsilon, 1e-5),
                "backbone_stem_type": (self.backbone_stem_type, ""),
                "backbone_stem_width": (self.backbone_stem_width, 0),
                "backbone_shortcut": (self.backbone_shortcut, ""),
                "backbone_stride_in_1x1": (self.backbone_stride_in_1x1, False),
                "backbone_first_block_dilation": (self.backbone_first_block_dilation, "previous"),
                "backbone_multi_grid": (tuple(float(r) for r in self.backbone_multi_grid), (1.0,)),
            }
            given = [f"{name}={value!r}" for name, (value, default) in resnet_only.items() if value != default]
            if given:
                raise ValueError(
                    f"ModelConfig {', '.join(given)}: these ResNet layout fields (--{given[0].split('=')[0]} ...) "
                    f"do not apply to backbone {self.backbone!r}; leave them at their defaults"
                )
        if self.cae_num_blocks < 1:
            raise ValueError(f"ModelConfig.cae_num_blocks must be >= 1. Received: {self.cae_num_blocks}")
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ValueError(f"ModelConfig.bn_momentum must be in [0, 1). Received: bn_momentum={self.bn_momentum}")

    @property
    def upsampler_width(self):
        """The effective head width of the (U-)SFPN upsampler."""
        return self.upsampler_num_channels or self.num_channels // 2

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
    def backbone_arguments(self):
        """Constructor arguments of the backbone beyond the preset's (layout, norm, stochastic depth)."""
        arguments = {"norm": self.norm}
        if supports_dilation(self.backbone):  # the ResNets
            arguments.update(
                norm={**self.norm, "epsilon": self.backbone_bn_epsilon},
                padding=self.backbone_padding,
                stride_in_1x1=self.backbone_stride_in_1x1,
                first_block_dilation=self.backbone_first_block_dilation,
                multi_grid=tuple(int(rate) for rate in self.backbone_multi_grid),
            )
            if self.backbone_stem_type:
                arguments["stem_type"] = self.backbone_stem_type
            if self.backbone_stem_width:
                arguments["stem_num_filters"] = self.backbone_stem_width
            if self.backbone_shortcut:
                arguments["avg_down"] = self.backbone_shortcut == "avg_down"
        else:
            arguments["drop_path_rate"] = self.drop_path_rate
        return arguments

    @property
    def input_divisor(self):
        """Input sizes are best multiples of this (the backbone's C5 stride); any size works."""
        return self.backbone_output_stride
