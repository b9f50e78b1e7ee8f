"""ResNet v1 backbone with output-stride control by dilation and an optional deep stem.

Hand-written rather than taken from keras-cv/keras-hub because their ResNets have neither dilation
(needed for output stride 16/8 and the DeepLab baselines) nor the deep 3x3 stem used by segmentation
codebases (SPEC §4). Layout choices [ours, documented]: the stride of a stage sits in the first
block's 3x3 conv (ResNet v1.5 / torchvision / mmseg "V1c" layout), so that downsampling happens
before the stage's blocks; multi-grid rates (1, 2, 4) multiply the dilation of the last stage's
blocks when that stage is dilated, as in DeepLabV3 and the authors' code.
"""

import keras

from hfgd_tf.backbones.base import FeatureBackbone
from hfgd_tf.layers.conv_norm_act import ConvNormAct
from hfgd_tf.layers.normalization import normalize_norm_spec

BLOCK_TYPES = ("basic", "bottleneck")
STEM_TYPES = ("standard", "deep")
BACKBONE_OUTPUT_STRIDES = (32, 16, 8)
_EXPANSION = {"basic": 1, "bottleneck": 4}


def _residual_block(x, filters, block_type, strides, dilation, norm, name):
    """One residual block; returns `[B, H/strides, W/strides, filters * expansion]`."""
    out_channels = filters * _EXPANSION[block_type]
    shortcut = x
    if strides != 1 or x.shape[-1] != out_channels:
        shortcut = ConvNormAct(out_channels, 1, strides=strides, norm=norm, activation=None, name=f"{name}_shortcut")(x)
    if block_type == "bottleneck":
        y = ConvNormAct(filters, 1, norm=norm, name=f"{name}_conv1")(x)
        y = ConvNormAct(filters, 3, strides=strides, dilation_rate=dilation, norm=norm, name=f"{name}_conv2")(y)
        y = ConvNormAct(out_channels, 1, norm=norm, activation=None, name=f"{name}_conv3")(y)
    else:
        y = ConvNormAct(filters, 3, strides=strides, dilation_rate=dilation, norm=norm, name=f"{name}_conv1")(x)
        y = ConvNormAct(out_channels, 3, dilation_rate=dilation, norm=norm, activation=None, name=f"{name}_conv2")(y)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


@keras.saving.register_keras_serializable(package="hfgd_tf")
class ResNetBackbone(FeatureBackbone):
    """ResNet v1 feature extractor returning the feature dict `{S1, C2, C3, C4, C5}`.

    Reference: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016; dilation and
    multi-grid from Chen et al., "Rethinking Atrous Convolution" (DeepLabV3), 2017.

    Args:
        stagewise_num_blocks: tuple of 4 int. Blocks in stages C2..C5. ResNet-50: (3, 4, 6, 3).
        stagewise_num_filters: tuple of 4 int. Bottleneck widths per stage; outputs are 4x (bottleneck)
            or 1x (basic) that. Defaults to (64, 128, 256, 512).
        block_type: str. "bottleneck" or "basic". Defaults to "bottleneck".
        stem_type: str. "standard" (7x7/2 conv) or "deep" (3x3/2 conv to stem_num_filters / 2, 3x3,
            3x3 to stem_num_filters). Both end with a 3x3/2 max pool. Defaults to "deep".
        stem_num_filters: int. Stem width. Defaults to 64 (deep stem: 32, 32, 64... see above; the
            authors' deep stem is 64, 64, 128, which `stem_num_filters=128` gives).
        output_stride: int. Stride of C5: 32, 16 (C5 dilated) or 8 (C4 and C5 dilated). Defaults to 32.
        multi_grid: tuple of int. Dilation multipliers of the last stage's blocks when it is dilated.
            Defaults to (1, 2, 4).
        norm: str or dict. See `hfgd_tf.layers.normalization`. Defaults to None (sync batch norm).
        image_shape: tuple. Input shape `(H, W, 3)`; None keeps a size free. Defaults to (None, None, 3).

    Call arguments:
        images: `[B, H, W, 3]` float, already normalised.

    Returns:
        dict: `S1` `[B, H/2, W/2, stem]`, `C2` `[B, H/4, W/4, c2]`, `C3` `[B, H/8, W/8, c3]`,
        `C4` `[B, H/16, W/16, c4]` and `C5` `[B, H/output_stride, W/output_stride, c5]` (sizes rounded up;
        with dilation C4/C5 keep the stride of the last undilated stage).

    Example:
    >>> backbone = ResNetBackbone((1, 1, 1, 1), (8, 8, 16, 16), block_type="basic")
    >>> {k: v.shape[1] for k, v in backbone(np.zeros((1, 64, 64, 3))).items()}
    {'S1': 32, 'C2': 16, 'C3': 8, 'C4': 4, 'C5': 2}
    """

    CONFIG_KEYS = (
        "stagewise_num_blocks",
        "stagewise_num_filters",
        "block_type",
        "stem_type",
        "stem_num_filters",
        "output_stride",
        "multi_grid",
        "norm",
        "image_shape",
    )

    def __init__(
        self,
        stagewise_num_blocks=(3, 4, 6, 3),
        stagewise_num_filters=(64, 128, 256, 512),
        block_type="bottleneck",
        stem_type="deep",
        stem_num_filters=64,
        output_stride=32,
        multi_grid=(1, 2, 4),
        norm=None,
        image_shape=(None, None, 3),
        **kwargs,
    ):
        stagewise_num_blocks = tuple(int(b) for b in stagewise_num_blocks)
        stagewise_num_filters = tuple(int(f) for f in stagewise_num_filters)
        multi_grid = tuple(int(m) for m in multi_grid)
        if len(stagewise_num_blocks) != 4 or min(stagewise_num_blocks) < 1:
            raise ValueError(
                f"`stagewise_num_blocks` must be 4 positive ints. Received: stagewise_num_blocks={stagewise_num_blocks}"
            )
        if len(stagewise_num_filters) != 4 or min(stagewise_num_filters) < 1:
            raise ValueError(
                f"`stagewise_num_filters` must be 4 positive ints. Received: stagewise_num_filters={stagewise_num_filters}"
            )
        if block_type not in BLOCK_TYPES:
            raise ValueError(f"`block_type` must be one of {BLOCK_TYPES}. Received: block_type={block_type!r}")
        if stem_type not in STEM_TYPES:
            raise ValueError(f"`stem_type` must be one of {STEM_TYPES}. Received: stem_type={stem_type!r}")
        if output_stride not in BACKBONE_OUTPUT_STRIDES:
            raise ValueError(
                f"`output_stride` must be one of {BACKBONE_OUTPUT_STRIDES}. Received: output_stride={output_stride}"
            )
        if len(multi_grid) != stagewise_num_blocks[-1]:
            # Cycle the grid over the last stage's blocks, as DeepLab does for deeper stages.
            multi_grid = tuple(multi_grid[i % len(multi_grid)] for i in range(stagewise_num_blocks[-1]))
        norm = normalize_norm_spec(norm)
        name = kwargs.pop("name", "resnet")

        # === Functional Model ===
        images = keras.Input(shape=image_shape, name="images")
        if stem_type == "deep":
            x = ConvNormAct(stem_num_filters // 2, 3, strides=2, norm=norm, name=f"{name}_stem_conv1")(images)
            x = ConvNormAct(stem_num_filters // 2, 3, norm=norm, name=f"{name}_stem_conv2")(x)
            x = ConvNormAct(stem_num_filters, 3, norm=norm, name=f"{name}_stem_conv3")(x)
        else:
            x = ConvNormAct(stem_num_filters, 7, strides=2, norm=norm, name=f"{name}_stem_conv1")(images)
        features = {"S1": x}
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_stem_pool")(x)

        current_stride, dilation = 4, 1
        for stage_index, (num_blocks, filters) in enumerate(zip(stagewise_num_blocks, stagewise_num_filters)):
            level = stage_index + 2
            strides = 1 if stage_index == 0 else 2
            if stage_index > 0 and current_stride >= output_stride:
                strides, dilation = 1, dilation * 2
            current_stride *= strides
            for block_index in range(num_blocks):
                block_dilation = dilation
                if level == 5 and dilation > 1:
                    block_dilation = dilation * multi_grid[block_index]
                x = _residual_block(
                    x,
                    filters,
                    block_type,
                    strides if block_index == 0 else 1,
                    block_dilation,
                    norm,
                    name=f"{name}_c{level}_block{block_index}",
                )
            features[f"C{level}"] = x

        super().__init__(inputs=images, outputs=features, name=name, **kwargs)

        # === Config ===
        self.stagewise_num_blocks = stagewise_num_blocks
        self.stagewise_num_filters = stagewise_num_filters
        self.block_type = block_type
        self.stem_type = stem_type
        self.stem_num_filters = stem_num_filters
        self.output_stride = output_stride
        self.multi_grid = multi_grid
        self.norm = norm
        self.image_shape = tuple(image_shape)

    @property
    def feature_channels(self):
        """dict: channels of each feature key."""
        expansion = _EXPANSION[self.block_type]
        channels = {"S1": self.stem_num_filters}
        for index, filters in enumerate(self.stagewise_num_filters):
            channels[f"C{index + 2}"] = filters * expansion
        return channels
