"""Input normalisations: the layer does what its scale and offset say, and recorded values map back to names."""

import numpy as np
import pytest

from hfgd_tf.layers.input_normalization import (
    INPUT_NORMALIZATIONS,
    input_normalization_layer,
    input_scale_and_offset,
    normalization_named,
    reverses_channels,
)


@pytest.mark.parametrize("method", INPUT_NORMALIZATIONS)
def test_the_layer_maps_each_channel_by_its_scale_and_offset(method):
    images = np.random.default_rng(0).uniform(0, 255, (2, 5, 7, 3)).astype("float32")
    scale, offset = input_scale_and_offset(method)
    expected = images * np.asarray(scale, "float32") + np.asarray(offset, "float32")
    if reverses_channels(method):
        expected = expected[..., ::-1]
    np.testing.assert_allclose(input_normalization_layer(method)(images).numpy(), expected, rtol=1e-5, atol=1e-5)
    # A recorded per-channel scale and offset never names a normalisation that also reorders channels.
    assert normalization_named(scale, offset) == (None if reverses_channels(method) else method)


def test_caffe_is_keras_applications_resnet_preprocessing():
    import keras

    images = np.random.default_rng(1).integers(0, 256, (2, 5, 7, 3)).astype("float32")
    expected = keras.applications.resnet50.preprocess_input(images.copy())  # BGR, minus the BGR mean
    np.testing.assert_allclose(input_normalization_layer("caffe")(images).numpy(), expected, rtol=0, atol=1e-4)


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
