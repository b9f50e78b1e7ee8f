import keras
import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.evaluation import EvalConfig, predict_logits
from hfgd_tf.evaluation.inference import _window_starts
from hfgd_tf.models import build_model
from tests.conftest import random_images, tiny_model_config


class _PixelwiseModel(keras.Model):
    """Logits depend only on each pixel, so windows and whole-image inference must agree exactly."""

    def call(self, images, training=False):
        return {"logits": tf.concat([images[..., :1] / 255.0, 1.0 - images[..., 1:2] / 255.0], -1)}


class _LeftToRightModel(keras.Model):
    """Not flip-invariant: logit 0 is the column index plus red / 255, logit 1 is green / 255."""

    def call(self, images, training=False):
        ramp = tf.cast(tf.range(tf.shape(images)[2]), tf.float32)[None, None, :, None]
        ramp = tf.broadcast_to(ramp, tf.shape(images[..., :1]))
        return {"logits": tf.concat([ramp + images[..., :1] / 255.0, images[..., 1:2] / 255.0], -1)}


class _SizeModel(keras.Model):
    """Logits constant over the image, [input height / 10, 0]: every scale predicts something else."""

    def call(self, images, training=False):
        height = tf.cast(tf.shape(images)[1], tf.float32)
        first = tf.fill(tf.shape(images[..., :1]), height / 10.0)
        return {"logits": tf.concat([first, tf.zeros_like(first)], -1)}


def test_window_starts_cover_the_image_and_align_the_last_window():
    assert _window_starts(10, 4) == [0, 3, 6]
    assert _window_starts(4, 4) == [0]
    assert _window_starts(3, 4) == [0]


def test_sliding_window_equals_whole_image_for_a_pixelwise_model():
    images = tf.constant(random_images(batch=2, height=37, width=53))
    whole = predict_logits(_PixelwiseModel(), images)
    windowed = predict_logits(_PixelwiseModel(), images, EvalConfig(sliding_window_height=16, sliding_window_width=24))
    np.testing.assert_allclose(windowed.numpy(), whole.numpy(), atol=1e-6)


def test_sliding_window_covering_the_image_equals_whole_image():
    model = build_model(tiny_model_config())
    images = tf.constant(random_images(batch=1, height=64, width=64))
    whole = predict_logits(model, images)
    windowed = predict_logits(model, images, EvalConfig(sliding_window_height=64, sliding_window_width=64))
    np.testing.assert_allclose(windowed.numpy(), whole.numpy(), atol=1e-5)


def test_flip_averages_the_mirrored_prediction():
    images = tf.constant(random_images(batch=2, height=8, width=10))
    flipped = predict_logits(_LeftToRightModel(), images, EvalConfig(flip=True)).numpy()
    # Mirrored input, prediction mirrored back: column j gets (9 - j) + red_j / 255; the mean of the
    # two is 4.5 + red / 255. A flip skipped, or not mirrored back, gives another ramp.
    np.testing.assert_allclose(flipped[..., 0], 4.5 + images.numpy()[..., 0] / 255.0, atol=1e-5)
    np.testing.assert_allclose(flipped[..., 1], images.numpy()[..., 1] / 255.0, atol=1e-6)
    plain = predict_logits(_LeftToRightModel(), images).numpy()
    assert np.abs(plain[..., 0] - flipped[..., 0]).max() > 4


def test_multi_scale_returns_input_size_logits():
    model = build_model(tiny_model_config())
    logits = predict_logits(
        model, tf.constant(random_images(batch=2, height=48, width=80)), EvalConfig(eval_scales=(0.5, 1.0, 1.5))
    )
    assert logits.shape == (2, 48, 80, 4)


def test_multi_scale_averages_logits_not_probabilities():
    images = tf.constant(random_images(batch=1, height=48, width=80))
    logits = predict_logits(_SizeModel(), images, EvalConfig(eval_scales=(0.5, 1.0, 1.5))).numpy()
    # Heights 24, 48, 72: logits 2.4, 4.8, 7.2, mean 4.8. Averaged softmax probabilities (or their log)
    # would not give these values.
    assert logits.shape == (1, 48, 80, 2)
    np.testing.assert_allclose(logits[..., 0], 4.8, rtol=1e-6)
    np.testing.assert_allclose(logits[..., 1], 0.0, atol=1e-6)


def test_protocol_is_described():
    protocol = EvalConfig(eval_scales=(0.5, 1.0), flip=True).protocol()
    assert protocol["scales"] == [0.5, 1.0] and protocol["flip"] is True


def test_bad_window_is_rejected():
    with pytest.raises(ValueError, match="sliding_window"):
        EvalConfig(sliding_window_height=10)


class _TwoHeadModel(keras.Model):
    """`logits` = [1, 0] at input size; `logits_high` at 1/4 size = [0, column index of the low grid]."""

    def call(self, images, training=False):
        logits = tf.concat([tf.ones_like(images[..., :1]), tf.zeros_like(images[..., :1])], -1)
        low = images[:, ::4, ::4, :1]
        ramp = tf.cast(tf.range(tf.shape(low)[2]), tf.float32)[None, None, :, None]
        ramp = tf.broadcast_to(ramp, tf.shape(low))
        return {"logits": logits, "logits_high": tf.concat([tf.zeros_like(low), ramp], -1)}


def test_scored_output_picks_the_guidance_head_resized_to_the_input():
    images = tf.constant(random_images(batch=1, height=16, width=32))
    whole = predict_logits(_TwoHeadModel(), images, EvalConfig(scored_output="logits_high")).numpy()
    expected = tf.image.resize(_TwoHeadModel()(images)["logits_high"], (16, 32), method="bilinear").numpy()
    assert whole.shape == (1, 16, 32, 2)
    np.testing.assert_allclose(whole, expected, atol=1e-6)
    assert whole[..., 1].max() > 1.0  # the ramp, not the `logits` output's constant [1, 0]
    default = predict_logits(_TwoHeadModel(), images, EvalConfig()).numpy()
    np.testing.assert_allclose(default[..., 0], 1.0)
    # Windows score the guidance head too: each window's own ramp starts again at 0.
    windowed = predict_logits(
        _TwoHeadModel(),
        images,
        EvalConfig(scored_output="logits_high", sliding_window_height=16, sliding_window_width=16),
    ).numpy()
    assert windowed[..., 1].max() < whole[..., 1].max()
    assert EvalConfig(scored_output="logits_high").protocol()["scored_output"] == "logits_high"


def test_scored_output_is_checked():
    with pytest.raises(ValueError, match="scored_output"):
        EvalConfig(scored_output="probabilities")
    images = tf.constant(random_images(batch=1, height=16, width=16))
    with pytest.raises(ValueError, match="no such output"):
        predict_logits(_PixelwiseModel(), images, EvalConfig(scored_output="logits_high"))


def test_hfgd_guidance_head_is_scored_at_input_size():
    model = build_model(tiny_model_config())
    images = tf.constant(random_images(batch=1, height=64, width=96))
    logits = predict_logits(model, images, EvalConfig(scored_output="logits_high")).numpy()
    high = model(images, training=False)["logits_high"]
    assert high.shape[1:3] == (2, 3) and logits.shape == (1, 64, 96, 4)
    np.testing.assert_allclose(logits, tf.image.resize(high, (64, 96)).numpy(), atol=1e-5)
