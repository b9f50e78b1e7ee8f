"""ConvNeXt backbone (Liu et al., "A ConvNet for the 2020s", CVPR 2022) as a feature dict.

Hand-written with `keras.applications.ConvNeXt`'s layer names and numerics (4x4/4 and 2x2/2 "valid"
patchify convolutions, LayerNorm epsilon 1e-6, 7x7 depthwise conv, exact GELU, layer scale), which are
also those of the official / timm ConvNeXt, so converted checkpoints compute what they computed
(`hfgd_tf.backbones.convert`). Hand-written rather than wrapped because keras.applications draws
stochastic depth from an unseeded random op and fixes its rate at 0; here it is `DropPath`, resumable
and configurable (`drop_path_rate`; segmentation recipes use 0.2-0.4). The stage outputs are C2..C5,
each followed by a LayerNorm as segmentation codebases do (no ImageNet checkpoint has these: they start
fresh; trainable on C5 only, see `stage_output_norm`). ConvNeXt's 4x4/4 patchify stem has no stride-2
map, so the backbone returns no `S1`: the OS2 upsampler makes its own from the image
(`SemanticFPN(image_stem_num_channels=...)`), where it is trained with the upsampler's loss and
computed only at output stride 2.
"""

import keras
import numpy as np

from hfgd_tf.backbones.base import FeatureBackbone
from hfgd_tf.layers.drop_path import DropPath
from hfgd_tf.layers.normalization import normalize_norm_spec

CONVNEXT_VARIANTS = {
    "tiny": dict(depths=(3, 3, 9, 3), projection_dims=(96, 192, 384, 768)),
    "small": dict(depths=(3, 3, 27, 3), projection_dims=(96, 192, 384, 768)),
    "base": dict(depths=(3, 3, 27, 3), projection_dims=(128, 256, 512, 1024)),
    "large": dict(depths=(3, 3, 27, 3), projection_dims=(192, 384, 768, 1536)),
}


def stage_output_norm(level, epsilon, name):
    """The LayerNorm on a stage output; its gamma/beta are frozen (identity) except on C5.

    C2..C4 feed only the upsampler, whose first layer on each is a 1x1 conv (a lateral) that absorbs
    any per-channel affine, and which under HFGD sits behind a stop-gradient: a trainable gamma/beta
    there would be redundant and would never train. C5 feeds the context encoder and trains with the
    high-level loss. The variables stay (same weight files, converters list them as fresh).
    """
    return keras.layers.LayerNormalization(
        epsilon=epsilon, trainable=level == "C5", name=f"{name}_{level.lower()}_norm"
    )


@keras.saving.register_keras_serializable(package="hfgd_tf")
class LayerScale(keras.layers.Layer):
    """Per-channel learned scale `x * gamma` (Touvron et al., CaiT), as in keras.applications ConvNeXt.

    Args:
        init_value: float. Initial value of every gamma.
        num_channels: int. C.

    Call arguments:
        inputs: `[..., C]`.

    Returns:
        `[..., C]`.
    """

    def __init__(self, init_value, num_channels, **kwargs):
        super().__init__(**kwargs)
        self.init_value, self.num_channels = init_value, num_channels

    def build(self, input_shape):
        self.gamma = self.add_weight(
            name="gamma", shape=(self.num_channels,), initializer=keras.initializers.Constant(self.init_value)
        )

    def call(self, inputs):
        return inputs * keras.ops.cast(self.gamma, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(init_value=self.init_value, num_channels=self.num_channels)
        return config


def _convnext_block(x, channels, drop_path_rate, layer_scale_init_value, name):
    """Depthwise 7x7 -> LayerNorm -> Dense 4C -> GELU -> Dense C -> layer scale -> drop path -> + x."""
    y = keras.layers.Conv2D(channels, 7, padding="same", groups=channels, name=f"{name}_depthwise_conv")(x)
    y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_layernorm")(y)
    y = keras.layers.Dense(4 * channels, name=f"{name}_pointwise_conv_1")(y)
    y = keras.layers.Activation("gelu", name=f"{name}_gelu")(y)
    y = keras.layers.Dense(channels, name=f"{name}_pointwise_conv_2")(y)
    y = LayerScale(layer_scale_init_value, channels, name=f"{name}_layer_scale")(y)
    y = DropPath(drop_path_rate, name=f"{name}_drop_path")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


@keras.saving.register_keras_serializable(package="hfgd_tf")
class ConvNeXtBackbone(FeatureBackbone):
    """ConvNeXt returning `{C2, C3, C4, C5}` at strides 4, 8, 16, 32 (no stride-2 level, so no `S1`).

    Args:
        variant: str. "tiny", "small", "base" or "large".
        depths: tuple of 4 int or None. Blocks per stage; None takes the variant's. Defaults to None.
        projection_dims: tuple of 4 int or None. Stage widths; None takes the variant's. Defaults to None.
        drop_path_rate: float. Stochastic depth, rising linearly over the blocks to this rate (0 at the
            first block). Defaults to 0.
        layer_scale_init_value: float. Initial layer scale. Defaults to 1e-6.
        norm: str or dict. Unused (ConvNeXt has no batch norm); accepted so that every backbone takes
            the builder's `norm`. Defaults to None.
        image_shape: tuple. Defaults to (None, None, 3).

    Call arguments:
        images: `[B, H, W, 3]`, normalised.

    Returns:
        dict: C2..C5 `[B, floor(H/s), floor(W/s), C_s]` (the patchify convolutions drop a remainder, as
        in PyTorch); widths 96-768 (tiny), 128-1024 (base),
        192-1536 (large).
    """

    CONFIG_KEYS = (
        "variant",
        "depths",
        "projection_dims",
        "drop_path_rate",
        "layer_scale_init_value",
        "norm",
        "image_shape",
    )

    def __init__(
        self,
        variant="tiny",
        depths=None,
        projection_dims=None,
        drop_path_rate=0.0,
        layer_scale_init_value=1e-6,
        norm=None,
        image_shape=(None, None, 3),
        **kwargs,
    ):
        if variant not in CONVNEXT_VARIANTS:
            raise ValueError(f"`variant` must be one of {sorted(CONVNEXT_VARIANTS)}. Received: variant={variant!r}")
        depths = tuple(int(d) for d in (depths or CONVNEXT_VARIANTS[variant]["depths"]))
        projection_dims = tuple(int(d) for d in (projection_dims or CONVNEXT_VARIANTS[variant]["projection_dims"]))
        if len(depths) != 4 or len(projection_dims) != 4 or min(depths) < 1 or min(projection_dims) < 1:
            raise ValueError(
                f"`depths` and `projection_dims` must be 4 positive ints each. Received: {depths}, {projection_dims}"
            )
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"`drop_path_rate` must be in [0, 1). Received: drop_path_rate={drop_path_rate}")
        norm = normalize_norm_spec(norm)
        name = kwargs.pop("name", f"convnext_{variant}")
        images = keras.Input(shape=image_shape, name="images")
        features = {}
        x = keras.layers.Conv2D(projection_dims[0], 4, strides=4, name=f"{name}_stem_conv")(images)
        x = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_stem_layernorm")(x)
        rates = np.linspace(0.0, drop_path_rate, sum(depths)).tolist()
        block_index = 0
        for stage, (depth, channels) in enumerate(zip(depths, projection_dims)):
            if stage > 0:
                x = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_downsampling_layernorm_{stage - 1}")(x)
                x = keras.layers.Conv2D(channels, 2, strides=2, name=f"{name}_downsampling_conv_{stage - 1}")(x)
            for block in range(depth):
                x = _convnext_block(
                    x, channels, rates[block_index], layer_scale_init_value, name=f"{name}_stage_{stage}_block_{block}"
                )
                block_index += 1
            level = f"C{stage + 2}"
            features[level] = stage_output_norm(level, 1e-6, name)(x)
        super().__init__(inputs=images, outputs=features, name=name, **kwargs)
        self.variant, self.depths, self.projection_dims = variant, depths, projection_dims
        self.drop_path_rate, self.layer_scale_init_value = float(drop_path_rate), layer_scale_init_value
        self.norm = norm
        self.image_shape = tuple(image_shape)
        self.output_stride = 32
