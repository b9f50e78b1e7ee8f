"""Class kernels: the one classifier shared by the high-level head and the guided upsampler."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="hfgd_tf")
class ClassKernels(keras.layers.Layer):
    """A 1x1 classifier whose single weight is shared by both HFGD heads.

    HFGD (arXiv:2303.08646) trains the class kernels only with the high-level features and reuses them,
    behind a stop-gradient, as the classifier of the upsampling head. Both heads call this one layer
    object, so there is exactly one `kernel` variable `[D, K]` and one `bias` `[K]`; the stop-gradient is
    applied in `call` (never by copying weights).

    Args:
        num_classes: int. K, the number of classes.

    Call arguments:
        features: `[B, H, W, D]`.
        stop_gradient: bool. When True, gradients do not reach `kernel` and `bias` (they still flow to
            `features`). Defaults to False.

    Returns:
        Logits `[B, H, W, K]` in the layer's compute dtype.

    Example:
    >>> kernels = ClassKernels(num_classes=3)
    >>> kernels(np.zeros((2, 4, 4, 8), "float32")).shape
    TensorShape([2, 4, 4, 3])
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"`num_classes` must be >= 1. Received: num_classes={num_classes}")
        self.num_classes = num_classes

    def build(self, input_shape):
        num_channels = input_shape[-1]
        if num_channels is None:
            raise ValueError("ClassKernels needs a known channel dimension. Received: input_shape={input_shape}")
        self.kernel = self.add_weight(
            name="kernel",
            shape=(num_channels, self.num_classes),
            initializer=keras.initializers.RandomNormal(stddev=0.01),
        )
        self.bias = self.add_weight(name="bias", shape=(self.num_classes,), initializer="zeros")

    def call(self, features, stop_gradient=False):
        kernel = tf.cast(self.kernel, self.compute_dtype)
        bias = tf.cast(self.bias, self.compute_dtype)
        if stop_gradient:
            kernel = tf.stop_gradient(kernel)
            bias = tf.stop_gradient(bias)
        return tf.einsum("bhwd,dk->bhwk", features, kernel) + bias

    def compute_output_shape(self, features_shape):
        return tuple(features_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes)
        return config
