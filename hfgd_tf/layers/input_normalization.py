"""Input normalisations: how `[B, H, W, 3]` RGB images in [0, 255] become the backbone's inputs.

Each is per channel `x * scale + offset` on the RGB image; `caffe` (keras.applications ResNets, the Caffe
models they were ported from) then also reverses the channel order to BGR, which no per-channel affine map
can do. `normalization_named` maps a recorded scale and offset (a keras-hub preset's image converter) back to
the name that reproduces it.

Which normalisation a pretrained checkpoint needs is the one its source fed it during ImageNet training:

| source | its preprocessing | here |
| --- | --- | --- |
| timm, torchvision (ResNet, ConvNeXt, Swin) | x / 255, then ImageNet mean/std | `imagenet` |
| keras.applications ResNet50/101 | `preprocess_input` "caffe": RGB -> BGR, minus the BGR mean, no std | `caffe` |
| keras.applications ConvNeXt | inside the model (`include_preprocessing`): ImageNet mean/std | `imagenet` |
| keras-cv ResNetBackbone presets | inside the model (`include_rescaling`): x / 255 | `zero_one` |
| the authors' code, random init | x * 2 / 255 - 1 | `minus_one_one` |

(`hfgd_tf.backbones.convert.source_input_normalization` holds the same table for the converter.)
"""

import keras
import numpy as np
from keras import ops

INPUT_NORMALIZATIONS = ("minus_one_one", "imagenet", "zero_one", "caffe")
IMAGENET_MEAN = (123.675, 116.28, 103.53)  # in [0, 255] units, RGB
IMAGENET_STD = (58.395, 57.12, 57.375)
# keras.applications' "caffe" mode: subtracted from the BGR image in [0, 255] (keras.applications.imagenet_utils).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def input_scale_and_offset(method):
    """`(scale, offset)`, three floats each, per RGB input channel: `method` maps a channel value x to
    `x * scale + offset` (and `caffe` then reverses the channel order: see `reverses_channels`)."""
    if method == "minus_one_one":
        return (2.0 / 255.0,) * 3, (-1.0,) * 3
    if method == "imagenet":
        return tuple(1.0 / s for s in IMAGENET_STD), tuple(-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD))
    if method == "zero_one":
        return (1.0 / 255.0,) * 3, (0.0,) * 3
    if method == "caffe":
        return (1.0,) * 3, tuple(-m for m in reversed(CAFFE_MEAN_BGR))
    raise ValueError(f"`input_normalization` must be one of {INPUT_NORMALIZATIONS}. Received: {method!r}")


def reverses_channels(method):
    """True when `method` feeds the backbone BGR images (after the per-channel map)."""
    input_scale_and_offset(method)  # refuses an unknown method
    return method == "caffe"


def normalization_named(scale, offset):
    """The `INPUT_NORMALIZATIONS` name whose per-channel `x * scale + offset` this is, or None.

    Only the normalisations that keep the RGB order can match: an image converter's scale and offset do not
    reorder channels.

    Args:
        scale, offset: float, a sequence of 3 floats, or None (no scaling: 1; no offset: 0).

    Returns:
        str or None.
    """
    scale = np.broadcast_to(np.asarray(1.0 if scale is None else scale, "float64"), (3,))
    offset = np.broadcast_to(np.asarray(0.0 if offset is None else offset, "float64"), (3,))
    for method in INPUT_NORMALIZATIONS:
        if reverses_channels(method):
            continue
        expected_scale, expected_offset = input_scale_and_offset(method)
        # To 0.1%: values stored in float32 match; values rounded to 3 significant digits may not (then None).
        if np.allclose(scale, expected_scale, rtol=1e-3, atol=0) and np.allclose(
            offset, expected_offset, rtol=1e-3, atol=1e-6
        ):
            return method
    return None


@keras.saving.register_keras_serializable(package="hfgd_tf")
class CaffeInputNormalization(keras.layers.Layer):
    """keras.applications' "caffe" preprocessing inside the model: RGB [0, 255] -> BGR minus the BGR mean.

    Input and output `[B, H, W, 3]`. No weights; the constants are those of
    `keras.applications.imagenet_utils.preprocess_input(mode="caffe")`.
    """

    def call(self, images):
        bgr = ops.flip(images, axis=-1)
        return bgr - ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=bgr.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def input_normalization_layer(method):
    """The layer mapping `[B, H, W, 3]` images in [0, 255] to `method`'s range, same shape (no adapt step)."""
    scale, offset = input_scale_and_offset(method)  # refuses an unknown method
    if method == "imagenet":  # per channel (a Normalization layer, as in checkpoints of earlier versions)
        variance = tuple(s**2 for s in IMAGENET_STD)
        return keras.layers.Normalization(mean=IMAGENET_MEAN, variance=variance, name="input_normalization")
    if method == "caffe":
        return CaffeInputNormalization(name="input_normalization")
    return keras.layers.Rescaling(scale[0], offset=offset[0], name="input_normalization")
