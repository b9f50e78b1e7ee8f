"""Input normalisations: the layer does what its scale and offset say, and recorded values map back to names."""

import numpy as np
import pytest

from hfgd_tf.layers.input_normalization import (
    INPUT_NORMALIZATIONS,
    input_normalization_layer,
    input_scale_and_offset,
    normalization_named,
)


@pytest.mark.parametrize("method", INPUT_NORMALIZATIONS)
def test_the_layer_maps_each_channel_by_its_scale_and_offset(method):
    images = np.random.default_rng(0).uniform(0, 255, (2, 5, 7, 3)).astype("float32")
    scale, offset = input_scale_and_offset(method)
    expected = images * np.asarray(scale, "float32") + np.asarray(offset, "float32")
    np.testing.assert_allclose(input_normalization_layer(method)(images).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert normalization_named(scale, offset) == method


def test_recorded_values_map_to_the_name_that_reproduces_them():
    # keras-hub's ResNet presets: ImageNet mean/std in [0, 1] units, rounded as published.
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    assert normalization_named(list(1 / (255 * std)), list(-mean / std)) == "imagenet"
    assert normalization_named(1 / 255, None) == "zero_one"
    assert normalization_named(1 / 127.5, -1.0) == "minus_one_one"
    assert normalization_named(1 / 255, -0.5) is None
    assert normalization_named(None, None) is None  # raw [0, 255] inputs: none of ours
    with pytest.raises(ValueError, match="must be one of"):
        input_scale_and_offset("zero_to_one")
