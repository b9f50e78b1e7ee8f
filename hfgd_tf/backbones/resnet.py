"""ResNet v1 backbone with output-stride control by dilation and the stems of the common checkpoints.

Hand-written rather than taken from keras-cv/keras-hub because their ResNets have neither dilation
(needed for output stride 16/8 and the DeepLab baselines) nor the deep 3x3 stem used by segmentation
codebases. The layout options are those of the ImageNet checkpoints users have, so that a
converted checkpoint (`hfgd_tf.backbones.convert`) computes exactly what it computed in PyTorch:

- the stride of a stage sits in the first block's 3x3 conv (ResNet v1.5: torchvision, timm, mmseg);
- strided convolutions and the stem max pool pad symmetrically (`padding="symmetric"`, PyTorch) or
  bottom/right (`"same"`, Keras);
- stems: "standard" 7x7/2 conv (torchvision / timm `resnet50`), "deep" three 3x3 convs (timm
  `resnet50c`, mmseg ResNetV1c), and with `avg_down=True` the shortcut of a strided block average-pools
  before its 1x1 conv (timm `resnet50d`, "ResNet-D");
- dilation (output stride 16/8): the first block of a dilated stage keeps the previous stage's dilation
  in its first 3x3 conv (`first_block_dilation="previous"`: torchvision `replace_stride_with_dilation`,
  timm `output_stride`, mmseg `contract_dilation=True`), or uses the stage's dilation like the rest
  (`"stage"`, DeepLab); multi-grid rates multiply the dilation of the last stage's blocks (DeepLabV3),
  off by default.
"""

import keras

from hfgd_tf.backbones.base import FeatureBackbone
from hfgd_tf.layers.conv_norm_act import PADDINGS, ConvNormAct
from hfgd_tf.layers.normalization import normalize_norm_spec

BLOCK_TYPES = ("basic", "bottleneck")
STEM_TYPES = ("standard", "deep")
FIRST_BLOCK_DILATIONS = ("previous", "stage")
BACKBONE_OUTPUT_STRIDES = (32, 16, 8)
_EXPANSION = {"basic": 1, "bottleneck": 4}


def _shortcut(x, out_channels, strides, dilation, avg_down, padding, norm, name):
    """Projection shortcut: 1x1 conv + norm, after a 2x2 average pool when `avg_down` (ResNet-D)."""
    conv_strides = strides
    if avg_down:
        conv_strides = 1
        if strides > 1:
            # PyTorch AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False) == Keras "same" (pads
            # bottom/right, excluded from the mean).
            x = keras.layers.AveragePooling2D(2, strides, padding="same", name=f"{name}_shortcut_pool")(x)
        elif dilation > 1:
            # timm's dilated ResNet-D: a 2x2/1 average over a bottom/right zero-padded map (the zeros count).
            x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_shortcut_pool_pad")(x)
            x = keras.layers.AveragePooling2D(2, 1, padding="valid", name=f"{name}_shortcut_pool")(x)
    return ConvNormAct(
        out_channels, 1, strides=conv_strides, norm=norm, activation=None, padding=padding, name=f"{name}_shortcut"
    )(x)


def _residual_block(
    x, filters, block_type, strides, dilation, first_dilation, avg_down, stride_in_1x1, padding, norm, name
):
    """One residual block; returns `[B, H/strides, W/strides, filters * expansion]`.

    `first_dilation` is the dilation of the block's first 3x3 conv (bottleneck conv2, basic conv1);
    `dilation` that of the basic block's second 3x3 conv.
    """
    out_channels = filters * _EXPANSION[block_type]
    shortcut = x
    if strides != 1 or x.shape[-1] != out_channels:
        shortcut = _shortcut(x, out_channels, strides, dilation, avg_down, padding, norm, name)
    common = dict(norm=norm, padding=padding)
    if block_type == "bottleneck":
        strides_1x1, strides_3x3 = (strides, 1) if stride_in_1x1 else (1, strides)
        y = ConvNormAct(filters, 1, strides=strides_1x1, name=f"{name}_conv1", **common)(x)
        y = ConvNormAct(filters, 3, strides=strides_3x3, dilation_rate=first_dilation, name=f"{name}_conv2", **common)(
            y
        )
        y = ConvNormAct(out_channels, 1, activation=None, name=f"{name}_conv3", **common)(y)
    else:
        y = ConvNormAct(filters, 3, strides=strides, dilation_rate=first_dilation, name=f"{name}_conv1", **common)(x)
        y = ConvNormAct(out_channels, 3, dilation_rate=dilation, activation=None, name=f"{name}_conv2", **common)(y)
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
        stem_type: str. "standard" (7x7/2 conv, torchvision / timm `resnet50`) or "deep" (3x3/2 conv to
            stem_num_filters / 2, 3x3, 3x3 to stem_num_filters: timm `resnet50c`/`resnet50d`, mmseg
            ResNetV1c). Both end with a 3x3/2 max pool. Defaults to "deep" (the presets set it).
        stem_num_filters: int. Stem output width (S1 channels). Defaults to 64 (deep stem 32, 32, 64 as
            mmseg/timm; the authors' deep stem 64, 64, 128 is `stem_num_filters=128`).
        stride_in_1x1: bool. Bottleneck blocks stride in their first 1x1 conv (ResNet v1 as published,
            Caffe, keras.applications, keras-cv) instead of the 3x3 conv (v1.5: torchvision, timm, mmseg).
            Defaults to False.
        avg_down: bool. Strided shortcuts average-pool 2x2 then apply a stride-1 1x1 conv (ResNet-D, timm
            `resnet50d`). Defaults to False.
        output_stride: int. Stride of C5: 32, 16 (C5 dilated) or 8 (C4 and C5 dilated). Defaults to 32.
        first_block_dilation: str. "previous": the first 3x3 conv of a dilated stage's first block keeps
            the previous stage's dilation (torchvision / timm / mmseg `contract_dilation`); "stage": it uses
            the stage's dilation like the other blocks (DeepLab; this project's layout in its first releases). Defaults to
            "previous".
        multi_grid: tuple of int. Dilation multipliers of the last stage's blocks when it is dilated,
            cycled over the blocks; any rate other than 1 applies to every block of the stage, first
            included (mmseg). Defaults to (1,): none (the checkpoints' layout; DeepLabV3 uses (1, 2, 4)).
        padding: str. "symmetric" (PyTorch padding of strided convs and the stem max pool; needed by
            converted PyTorch checkpoints) or "same" (Keras). Defaults to "symmetric".
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
        "avg_down",
        "stride_in_1x1",
        "output_stride",
        "first_block_dilation",
        "multi_grid",
        "padding",
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
        avg_down=False,
        stride_in_1x1=False,
        output_stride=32,
        first_block_dilation="previous",
        multi_grid=(1,),
        padding="symmetric",
        norm=None,
        image_shape=(None, None, 3),
        **kwargs,
    ):
        stagewise_num_blocks = tuple(int(b) for b in stagewise_num_blocks)
        stagewise_num_filters = tuple(int(f) for f in stagewise_num_filters)
        multi_grid = tuple(int(m) for m in multi_grid) or (1,)
        if len(stagewise_num_blocks) != 4 or min(stagewise_num_blocks) < 1:
            raise ValueError(
                f"`stagewise_num_blocks` must be 4 positive ints. Received: stagewise_num_blocks={stagewise_num_blocks}"
            )
        if len(stagewise_num_filters) != 4 or min(stagewise_num_filters) < 1:
            raise ValueError(
                f"`stagewise_num_filters` must be 4 positive ints. Received: stagewise_num_filters={stagewise_num_filters}"
            )
        for field, value, allowed in (
            ("block_type", block_type, BLOCK_TYPES),
            ("stem_type", stem_type, STEM_TYPES),
            ("output_stride", output_stride, BACKBONE_OUTPUT_STRIDES),
            ("first_block_dilation", first_block_dilation, FIRST_BLOCK_DILATIONS),
            ("padding", padding, PADDINGS),
        ):
            if value not in allowed:
                raise ValueError(f"`{field}` must be one of {allowed}. Received: {field}={value!r}")
        if min(multi_grid) < 1:
            raise ValueError(f"`multi_grid` rates must be >= 1. Received: multi_grid={multi_grid}")
        if stem_num_filters < 2 or (stem_type == "deep" and stem_num_filters % 2):
            raise ValueError(
                f"`stem_num_filters` must be >= 2 (even for the deep stem). Received: stem_num_filters={stem_num_filters}"
            )
        norm = normalize_norm_spec(norm)
        name = kwargs.pop("name", "resnet")

        # === Functional Model ===
        images = keras.Input(shape=image_shape, name="images")
        common = dict(norm=norm, padding=padding)
        if stem_type == "deep":
            x = ConvNormAct(stem_num_filters // 2, 3, strides=2, name=f"{name}_stem_conv1", **common)(images)
            x = ConvNormAct(stem_num_filters // 2, 3, name=f"{name}_stem_conv2", **common)(x)
            x = ConvNormAct(stem_num_filters, 3, name=f"{name}_stem_conv3", **common)(x)
        else:
            x = ConvNormAct(stem_num_filters, 7, strides=2, name=f"{name}_stem_conv1", **common)(images)
        features = {"S1": x}
        if padding == "symmetric":
            # PyTorch MaxPool2d(3, 2, padding=1). Zero padding equals its -inf padding here: the input is a ReLU output.
            x = keras.layers.ZeroPadding2D(1, name=f"{name}_stem_pool_pad")(x)
        x = keras.layers.MaxPooling2D(
            3, strides=2, padding="valid" if padding == "symmetric" else "same", name=f"{name}_stem_pool"
        )(x)

        current_stride, dilation = 4, 1
        use_multi_grid = any(rate != 1 for rate in multi_grid)
        for stage_index, (num_blocks, filters) in enumerate(zip(stagewise_num_blocks, stagewise_num_filters)):
            level = stage_index + 2
            strides = 1 if stage_index == 0 else 2
            previous_dilation = dilation
            if stage_index > 0 and current_stride >= output_stride:
                strides, dilation = 1, dilation * 2
            current_stride *= strides
            for block_index in range(num_blocks):
                block_dilation = dilation
                if level == 5 and dilation > 1 and use_multi_grid:
                    block_dilation = dilation * multi_grid[block_index % len(multi_grid)]
                    first_dilation = block_dilation
                elif block_index == 0 and first_block_dilation == "previous":
                    first_dilation = previous_dilation
                else:
                    first_dilation = block_dilation
                x = _residual_block(
                    x,
                    filters,
                    block_type,
                    strides if block_index == 0 else 1,
                    block_dilation,
                    first_dilation,
                    avg_down,
                    stride_in_1x1,
                    padding,
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
        self.avg_down = bool(avg_down)
        self.stride_in_1x1 = bool(stride_in_1x1)
        self.output_stride = output_stride
        self.first_block_dilation = first_block_dilation
        self.multi_grid = multi_grid
        self.padding = padding
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
