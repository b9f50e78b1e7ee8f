import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.train.losses import is_decayed_variable, l2_weight_decay, pixel_cross_entropy_sum
from hfgd_tf.train.schedules import WarmupDecaySchedule


def test_cross_entropy_by_hand():
    logits = np.zeros((1, 1, 2, 3), np.float32)
    logits[0, 0, 0] = [2.0, 0.0, 0.0]
    labels = np.array([[[0, 2]]], np.int32)
    loss_sum, count = pixel_cross_entropy_sum(tf.constant(labels), tf.constant(logits), 255)
    expected = -np.log(np.exp(2) / (np.exp(2) + 2)) - np.log(1 / 3)
    assert float(count) == 2
    assert float(loss_sum) == pytest.approx(expected, rel=1e-6)


def test_an_ignored_pixel_changes_neither_sum_nor_count():
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(1, 2, 2, 3)), tf.float32)
    labels = tf.constant([[[0, 1], [2, 255]]], tf.int32)
    other_logits = tf.tensor_scatter_nd_update(logits, [[0, 1, 1]], [[9.0, -9.0, 3.0]])
    first = pixel_cross_entropy_sum(labels, logits, 255)
    second = pixel_cross_entropy_sum(labels, other_logits, 255)
    assert float(first[0]) == pytest.approx(float(second[0]))
    assert float(first[1]) == 3


def test_low_resolution_logits_are_upsampled_to_the_labels():
    loss_sum, count = pixel_cross_entropy_sum(tf.zeros([2, 8, 8], tf.int32), tf.zeros([2, 2, 2, 4]), 255)
    assert float(count) == 128
    assert float(loss_sum) == pytest.approx(128 * np.log(4), rel=1e-5)


def test_weight_decay_only_on_kernels_by_default():
    kernel = tf.Variable(tf.ones([2, 2]), name="kernel")
    bias = tf.Variable(tf.ones([2]), name="bias")
    assert is_decayed_variable(kernel) and not is_decayed_variable(bias)
    assert float(l2_weight_decay([kernel, bias], 0.1)) == pytest.approx(0.1 * 4 / 2)
    assert float(l2_weight_decay([kernel, bias], 0.1, decay_norm_vars=True)) == pytest.approx(0.1 * 6 / 2)


def test_poly_schedule_with_warmup():
    schedule = WarmupDecaySchedule(0.01, total_steps=110, decay_strategy="poly", power=0.9, warmup_steps=10)
    assert float(schedule(0)) == pytest.approx(0.001)
    assert float(schedule(9)) == pytest.approx(0.01)
    assert float(schedule(60)) == pytest.approx(0.01 * 0.5**0.9)
    assert float(schedule(110)) == pytest.approx(0.0)
    cosine = WarmupDecaySchedule(1.0, total_steps=100, decay_strategy="cosine")
    assert float(cosine(50)) == pytest.approx(0.5)


def test_class_weights_give_the_weighted_mean():
    logits = tf.constant(np.random.default_rng(1).normal(size=(1, 1, 3, 2)), tf.float32)
    labels = tf.constant([[[0, 1, 1]]], tf.int32)
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits).numpy()[0, 0]
    loss_sum, weight_sum = pixel_cross_entropy_sum(labels, logits, 255, class_weights=[2.0, 0.5])
    assert float(weight_sum) == pytest.approx(3.0)
    assert float(loss_sum) == pytest.approx(2.0 * per_pixel[0] + 0.5 * (per_pixel[1] + per_pixel[2]), rel=1e-6)
