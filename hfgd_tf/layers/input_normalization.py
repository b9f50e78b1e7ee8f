"""Input normalisations: how `[B, H, W, 3]` images in [0, 255] become the backbone's inputs.

Each is per channel `x * scale + offset`; `normalization_named` maps a recorded scale and offset (a keras-hub
preset's image converter) back to the name that reproduces it.
"""

import keras
import numpy as np

INPUT_NORMALIZATIONS = ("minus_one_one", "imagenet", "zero_one")
IMAGENET_MEAN = (123.675, 116.28, 103.53)  # in [0, 255] units
IMAGENET_STD = (58.395, 57.12, 57.375)


def input_scale_and_offset(method):
    """`(scale, offset)`, three floats each: `method` maps a channel value x to `x * scale + offset`."""
    if method == "minus_one_one":
        return (2.0 / 255.0,) * 3, (-1.0,) * 3
    if method == "imagenet":
        return tuple(1.0 / s for s in IMAGENET_STD), tuple(-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD))
    if method == "zero_one":
        return (1.0 / 255.0,) * 3, (0.0,) * 3
    raise ValueError(f"`input_normalization` must be one of {INPUT_NORMALIZATIONS}. Received: {method!r}")


def normalization_named(scale, offset):
    """The `INPUT_NORMALIZATIONS` name whose per-channel `x * scale + offset` this is, or None.

    Args:
        scale, offset: float, a sequence of 3 floats, or None (no scaling: 1; no offset: 0).

    Returns:
        str or None.
    """
    scale = np.broadcast_to(np.asarray(1.0 if scale is None else scale, "float64"), (3,))
    offset = np.broadcast_to(np.asarray(0.0 if offset is None else offset, "float64"), (3,))
    for method in INPUT_NORMALIZATIONS:
        expected_scale, expected_offset = input_scale_and_offset(method)
        # To 0.1%: values stored in float32 match; values rounded to 3 significant digits may not (then None).
        if np.allclose(scale, expected_scale, rtol=1e-3, atol=0) and np.allclose(offset, expected_offset, rtol=1e-3, atol=1e-6):
            return method
    return None


def input_normalization_layer(method):
    """The layer mapping `[B, H, W, 3]` images in [0, 255] to `method`'s range, same shape (no adapt step)."""
    scale, offset = input_scale_and_offset(method)  # refuses an unknown method
    if method == "imagenet":  # per channel (a Normalization layer, as in checkpoints of earlier versions)
        variance = tuple(s**2 for s in IMAGENET_STD)
        return keras.layers.Normalization(mean=IMAGENET_MEAN, variance=variance, name="input_normalization")
    return keras.layers.Rescaling(scale[0], offset=offset[0], name="input_normalization")
