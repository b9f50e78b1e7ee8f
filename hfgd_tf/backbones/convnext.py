"""ConvNeXt backbone (Liu et al., "A ConvNet for the 2020s", CVPR 2022) as a feature dict.

Built from `keras.applications.ConvNeXt{Tiny,Small,Base,Large}` (weights=None: nothing downloads; load
a local `.weights.h5` instead), with the stage outputs taken as C2..C5 and a LayerNorm on each, as
segmentation codebases do. keras.applications fixes the stochastic depth rate at 0 for these presets. ConvNeXt's 4x4/4 patchify stem has no stride-2 map, so `S1` (needed only by
the OS2 upsampler) comes from a light two-conv image stem [ours].
"""

import keras

from hfgd_tf.backbones.base import FeatureBackbone
from hfgd_tf.layers.conv_norm_act import ConvNormAct
from hfgd_tf.layers.normalization import normalize_norm_spec

CONVNEXT_VARIANTS = {
    "tiny": keras.applications.ConvNeXtTiny,
    "small": keras.applications.ConvNeXtSmall,
    "base": keras.applications.ConvNeXtBase,
    "large": keras.applications.ConvNeXtLarge,
}


def image_stem(images, num_channels, norm, name):
    """S1 `[B, H/2, W/2, num_channels]` for backbones whose own stem starts at stride 4."""
    x = ConvNormAct(num_channels, 3, strides=2, norm=norm, name=f"{name}_s1_conv1")(images)
    return ConvNormAct(num_channels, 3, norm=norm, name=f"{name}_s1_conv2")(x)


@keras.saving.register_keras_serializable(package="hfgd_tf")
class ConvNeXtBackbone(FeatureBackbone):
    """ConvNeXt returning `{S1, C2, C3, C4, C5}` at strides 2, 4, 8, 16, 32.

    Args:
        variant: str. "tiny", "small", "base" or "large".
        stem_num_channels: int. Width of the S1 image stem. Defaults to 32.
        norm: str or dict. Norm of the S1 image stem. Defaults to None (sync batch norm).
        image_shape: tuple. Defaults to (None, None, 3).

    Call arguments:
        images: `[B, H, W, 3]`, normalised.

    Returns:
        dict of `[B, ceil(H/s), ceil(W/s), C_s]`; C2..C5 widths 96-768 (tiny), 128-1024 (base), 192-1536 (large).
    """

    CONFIG_KEYS = ("variant", "stem_num_channels", "norm", "image_shape")

    def __init__(self, variant="tiny", stem_num_channels=32, norm=None, image_shape=(None, None, 3), **kwargs):
        if variant not in CONVNEXT_VARIANTS:
            raise ValueError(f"`variant` must be one of {sorted(CONVNEXT_VARIANTS)}. Received: variant={variant!r}")
        norm = normalize_norm_spec(norm)
        name = kwargs.pop("name", f"convnext_{variant}")
        images = keras.Input(shape=image_shape, name="images")
        base = CONVNEXT_VARIANTS[variant](
            include_top=False,
            weights=None,
            input_tensor=images,
            include_preprocessing=False,
        )
        prefix = base.name
        stage_outputs = [base.get_layer(f"{prefix}_downsampling_block_{i}").input for i in range(3)] + [base.output]
        features = {"S1": image_stem(images, stem_num_channels, norm, name)}
        for level, output in zip(("C2", "C3", "C4", "C5"), stage_outputs):
            features[level] = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_{level.lower()}_norm")(output)
        super().__init__(inputs=images, outputs=features, name=name, **kwargs)
        self.variant = variant
        self.stem_num_channels = stem_num_channels
        self.norm = norm
        self.image_shape = tuple(image_shape)
        self.output_stride = 32
