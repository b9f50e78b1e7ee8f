"""Joint augmentation keeps image and label aligned and never invents label values."""

import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.data import DataConfig, augment


def _coded_pair(height=40, width=56, seed=0):
    """An image whose red channel *is* the label (x 20), so alignment can be read back exactly."""
    rng = np.random.default_rng(seed)
    label = np.kron(rng.integers(0, 6, (height // 8, width // 8)), np.ones((8, 8), np.int64)).astype(np.int32)
    image = np.stack([label * 20.0, np.zeros_like(label, float), np.zeros_like(label, float)], -1).astype(np.float32)
    return tf.constant(image), tf.constant(label)


@pytest.mark.parametrize("index", range(8))
def test_training_augmentation_keeps_alignment_and_label_set(index):
    config = DataConfig("synthetic_streets", crop_height=48, crop_width=48, random_brightness=False)
    image, label = _coded_pair()
    out_image, out_label = augment.augment_for_training(image, label, tf.constant([3, index], tf.int64), config, 255)
    out_image, out_label = out_image.numpy(), out_label.numpy()
    assert out_image.shape == (48, 48, 3) and out_label.shape == (48, 48)
    assert set(np.unique(out_label)) <= set(np.unique(label.numpy())) | {255}
    # Away from class borders (bilinear image vs nearest label), the red channel encodes the label.
    valid = out_label != 255
    padded = np.pad(out_label, 1, mode="edge")
    uniform = np.ones_like(valid)
    for dy in range(3):
        for dx in range(3):
            uniform &= padded[dy : dy + 48, dx : dx + 48] == out_label
    interior = valid & uniform
    assert interior.mean() > 0.2
    np.testing.assert_array_equal(np.round(out_image[..., 0][interior] / 20), out_label[interior])
    # Padding: ignore label in labels, the mean pixel in images.
    np.testing.assert_allclose(out_image[~valid], augment.IMAGE_PAD_VALUE)


def _coordinate_pair(height=40, width=56):
    """Image channels hold each pixel's row and column; the label encodes them modulo 15 (row * 16 + col).

    Bilinear resizing interpolates the coordinate ramps exactly, and nearest-neighbour label resizing
    picks the source pixel nearest that same point, so an aligned pair agrees to within half a pixel
    everywhere, while a label shifted by one pixel is off by at least half a pixel, mostly by a whole one.
    """
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    image = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.float32)
    label = ((rows % 15) * 16 + cols % 15).astype(np.int32)
    return tf.constant(image), tf.constant(label)


def _modular_distance(a, b, period=15):
    d = np.mod(a - b, period)
    return np.minimum(d, period - d)


@pytest.mark.parametrize("index", range(8))
def test_augmentation_keeps_image_and_label_aligned_to_the_pixel(index):
    config = DataConfig("synthetic_streets", crop_height=48, crop_width=48, random_brightness=False)
    image, label = _coordinate_pair()
    out_image, out_label = augment.augment_for_training(image, label, tf.constant([5, index], tf.int64), config, 255)
    out_image, out_label = out_image.numpy(), out_label.numpy()
    valid = out_label != 255
    assert valid.mean() > 0.2
    for channel, label_coordinate in ((0, out_label // 16), (1, out_label % 16)):
        error = _modular_distance(out_image[..., channel][valid], label_coordinate[valid])
        assert error.max() <= 0.5 + 1e-3, (channel, error.max())


def test_same_seed_same_augmentation():
    config = DataConfig("synthetic_streets", crop_height=32, crop_width=32)
    image, label = _coded_pair()
    first = augment.augment_for_training(image, label, tf.constant([1, 2], tf.int64), config, 255)
    second = augment.augment_for_training(image, label, tf.constant([1, 2], tf.int64), config, 255)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_pad_to_size_uses_ignore_and_mean_pixel():
    image, label = augment.pad_to_size(tf.zeros([2, 3, 3]), tf.zeros([2, 3], tf.int32), 4, 5, 255)
    assert label.numpy().tolist() == [[0, 0, 0, 255, 255], [0, 0, 0, 255, 255], [255] * 5, [255] * 5]
    assert image.numpy()[3, 4, 0] == augment.IMAGE_PAD_VALUE and image.numpy()[0, 0, 0] == 0


def test_scale_steps_are_from_the_grid():
    sizes = set()
    for index in range(40):
        _, label = augment.random_scale(
            tf.zeros([40, 40, 3]), tf.zeros([40, 40], tf.int32), tf.constant([0, index], tf.int64), 0.5, 2.0, 0.25
        )
        sizes.add(label.shape[0])
    assert sizes <= {20, 30, 40, 50, 60, 70, 80} and len(sizes) > 3
