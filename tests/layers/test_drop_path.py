"""DropPath: identity at inference, masks a function of (seed, checkpointed call count), resumable."""

import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.backbones import SwinBackbone
from hfgd_tf.layers.drop_path import DropPath
from tests.conftest import random_images


def _masks(layer, x, calls):
    return [layer(x, training=True).numpy()[:, 0, 0, 0] for _ in range(calls)]


def test_identity_at_inference_and_at_rate_zero():
    x = tf.random.normal((4, 3, 3, 2))
    layer = DropPath(0.5, name="dp")
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    np.testing.assert_array_equal(DropPath(0.0)(x, training=True).numpy(), x.numpy())
    assert int(layer.calls.numpy()) == 0  # inference does not advance the state


def test_a_frozen_layer_runs_in_inference_mode():
    x = tf.ones((64, 2, 2, 3))
    layer = DropPath(0.5, seed=1)
    layer.build(x.shape)
    layer.trainable = False  # what a frozen backbone (TrainConfig.freeze_backbone) sets on its layers
    np.testing.assert_array_equal(layer(x, training=True).numpy(), x.numpy())
    assert int(layer.calls.numpy()) == 0


def test_masks_drop_whole_examples_and_rescale():
    x = tf.ones((64, 2, 2, 3))
    out = DropPath(0.25, seed=1)(x, training=True).numpy()
    per_example = out.reshape(64, -1)
    assert set(np.unique(per_example)) <= {0.0, np.float32(1 / 0.75)}
    assert (per_example == per_example[:, :1]).all()  # one decision per example
    assert 0 < (per_example[:, 0] == 0).sum() < 64


def test_deterministic_given_seed_and_state_and_resumable():
    x = tf.ones((16, 1, 1, 1))
    first = DropPath(0.5, seed=7)
    run = _masks(first, x, 4)
    assert int(first.calls.numpy()) == 4
    assert any((a != b).any() for a, b in zip(run, run[1:]))  # the mask changes from call to call
    # A fresh layer with the same seed replays the same sequence.
    again = DropPath(0.5, seed=7)
    for a, b in zip(run, _masks(again, x, 4)):
        np.testing.assert_array_equal(a, b)
    # "Resume" after two calls: restoring the checkpointed count continues the sequence exactly.
    resumed = DropPath(0.5, seed=7)
    resumed.build(x.shape)
    resumed.calls.assign(2)
    for a, b in zip(run[2:], _masks(resumed, x, 2)):
        np.testing.assert_array_equal(a, b)
    other = DropPath(0.5, seed=8)
    assert any((a != b).any() for a, b in zip(run, _masks(other, x, 4)))


def test_default_seed_comes_from_the_layer_name():
    assert DropPath(0.1, name="block_a").seed == DropPath(0.1, name="block_a").seed
    assert DropPath(0.1, name="block_a").seed != DropPath(0.1, name="block_b").seed
    layer = DropPath(0.3, name="block_a")
    assert DropPath.from_config(layer.get_config()).seed == layer.seed


def test_bad_rate():
    with pytest.raises(ValueError, match="drop path rate"):
        DropPath(1.0)


def test_swin_drop_path_counts_are_weights_and_training_is_reproducible():
    def build():
        return SwinBackbone(
            embed_dim=8,
            depths=(1, 1, 1, 1),
            num_heads=(1, 1, 2, 2),
            window_size=2,
            drop_path_rate=0.5,
            norm="batch_norm",
            name="swin",
        )

    images = random_images(batch=4, height=32, width=32)
    a, b = build(), build()
    b.set_weights(a.get_weights())  # same parameters and the same (zero) drop path counts
    assert any(w.path.endswith("drop_path_calls") for w in a.weights)
    np.testing.assert_array_equal(a(images)["C5"].numpy(), a(images)["C5"].numpy())  # inference: no randomness
    first = [a(images, training=True)["C5"].numpy() for _ in range(2)]
    second = [b(images, training=True)["C5"].numpy() for _ in range(2)]
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
    assert np.abs(first[0] - first[1]).max() > 0
