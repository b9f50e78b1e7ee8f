"""ConvNeXt backbone (Liu et al., "A ConvNet for the 2020s", CVPR 2022) as a feature dict.

Built from `keras.applications.ConvNeXt{Tiny,Small,Base,Large}` (weights=None: nothing downloads; load
a local `.weights.h5` instead), with the stage outputs taken as C2..C5 and a LayerNorm on each, as
segmentation codebases do (trainable on C5 only, see `stage_output_norm`). keras.applications fixes the stochastic depth rate at 0 for these presets. ConvNeXt's 4x4/4 patchify stem has no stride-2 map, so the backbone returns no `S1`:
the OS2 upsampler makes its own from the image (`SemanticFPN(image_stem_num_channels=...)`), where it
is trained with the upsampler's loss and computed only at output stride 2.
"""

import keras

from hfgd_tf.backbones.base import FeatureBackbone
from hfgd_tf.layers.normalization import normalize_norm_spec

CONVNEXT_VARIANTS = {
    "tiny": keras.applications.ConvNeXtTiny,
    "small": keras.applications.ConvNeXtSmall,
    "base": keras.applications.ConvNeXtBase,
    "large": keras.applications.ConvNeXtLarge,
}


def stage_output_norm(level, epsilon, name):
    """The LayerNorm on a stage output; its gamma/beta are frozen (identity) except on C5.

    C2..C4 feed only the upsampler, whose first layer on each is a 1x1 conv (a lateral) that absorbs
    any per-channel affine, and which under HFGD sits behind a stop-gradient: a trainable gamma/beta
    there would be redundant and would never train. C5 feeds the context encoder and trains with the
    high-level loss. The variables stay (same weight files, converters list them as fresh).
    """
    return keras.layers.LayerNormalization(epsilon=epsilon, trainable=level == "C5", name=f"{name}_{level.lower()}_norm")


@keras.saving.register_keras_serializable(package="hfgd_tf")
class ConvNeXtBackbone(FeatureBackbone):
    """ConvNeXt returning `{C2, C3, C4, C5}` at strides 4, 8, 16, 32 (no stride-2 level, so no `S1`).

    Args:
        variant: str. "tiny", "small", "base" or "large".
        norm: str or dict. Unused (ConvNeXt has no batch norm); accepted so that every backbone takes
            the builder's `norm`. Defaults to None.
        image_shape: tuple. Defaults to (None, None, 3).

    Call arguments:
        images: `[B, H, W, 3]`, normalised.

    Returns:
        dict of `[B, ceil(H/s), ceil(W/s), C_s]`; C2..C5 widths 96-768 (tiny), 128-1024 (base), 192-1536 (large).
    """

    CONFIG_KEYS = ("variant", "norm", "image_shape")

    def __init__(self, variant="tiny", norm=None, image_shape=(None, None, 3), **kwargs):
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
        features = {}
        for level, output in zip(("C2", "C3", "C4", "C5"), stage_outputs):
            features[level] = stage_output_norm(level, 1e-6, name)(output)
        super().__init__(inputs=images, outputs=features, name=name, **kwargs)
        self.variant = variant
        self.norm = norm
        self.image_shape = tuple(image_shape)
        self.output_stride = 32
