import keras
import numpy as np
import tensorflow as tf

from hfgd_tf.layers import ClassKernels


def test_output_is_features_times_kernel_plus_bias():
    layer = ClassKernels(3)
    features = np.arange(2 * 2 * 2 * 4, dtype="float32").reshape(2, 2, 2, 4)
    layer.build(features.shape)
    kernel = np.arange(12, dtype="float32").reshape(4, 3) / 10
    layer.kernel.assign(kernel)
    layer.bias.assign([1.0, -1.0, 0.5])
    expected = features @ kernel + np.array([1.0, -1.0, 0.5])
    np.testing.assert_allclose(layer(features).numpy(), expected, rtol=1e-6)


def test_one_kernel_and_one_bias_variable():
    layer = ClassKernels(5)
    layer(np.zeros((1, 2, 2, 8), "float32"))
    assert [tuple(w.shape) for w in layer.weights] == [(8, 5), (5,)]


def test_stop_gradient_cuts_kernel_gradient_but_not_feature_gradient():
    layer = ClassKernels(3)
    features = tf.constant(np.random.default_rng(0).normal(size=(1, 2, 2, 4)), tf.float32)
    layer(features)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(features)
        stopped = tf.reduce_sum(layer(features, stop_gradient=True) ** 2)
        flowing = tf.reduce_sum(layer(features) ** 2)
    assert all(g is None for g in tape.gradient(stopped, layer.trainable_variables))
    assert all(np.any(g.numpy() != 0) for g in tape.gradient(flowing, layer.trainable_variables))
    assert np.any(tape.gradient(stopped, features).numpy() != 0)


def test_config_round_trip():
    layer = ClassKernels(7, name="kernels")
    clone = ClassKernels.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer)).num_classes == 7


def test_rejects_zero_classes():
    try:
        ClassKernels(0)
    except ValueError as error:
        assert "num_classes" in str(error)
    else:
        raise AssertionError("ClassKernels(0) did not raise")
