"""Resizing to the spatial size of another tensor, which keeps odd input sizes exact.

A fixed 2x upsampling breaks on odd sizes (257 -> 129 -> 65 -> 33 -> 17 -> 9, and 2 * 9 != 17), so
every top-down step resizes to the shape of the feature it is added to.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="hfgd_tf")
class ResizeLike(keras.layers.Layer):
    """Resizes `inputs` to the height and width of `reference`.

    Args:
        interpolation: str. "bilinear" or "nearest". Defaults to "bilinear".

    Call arguments:
        inputs: `[B, h, w, C]`.
        reference: `[B, H, W, ...]`; only its spatial size is used.

    Returns:
        `[B, H, W, C]` in the dtype of `inputs`.
    """

    def __init__(self, interpolation="bilinear", **kwargs):
        super().__init__(**kwargs)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(
                f"`interpolation` must be 'bilinear' or 'nearest'. Received: interpolation={interpolation!r}"
            )
        self.interpolation = interpolation

    def call(self, inputs, reference):
        # tf.image.resize accepts a dynamic size tensor; keras.ops.image.resize wants Python ints.
        size = tf.shape(reference)[1:3]
        resized = tf.image.resize(inputs, size, method=self.interpolation)
        return tf.cast(resized, inputs.dtype)

    def compute_output_shape(self, inputs_shape, reference_shape):
        return (inputs_shape[0], reference_shape[1], reference_shape[2], inputs_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(interpolation=self.interpolation)
        return config


@keras.saving.register_keras_serializable(package="hfgd_tf")
class StopGradient(keras.layers.Layer):
    """`tf.stop_gradient` as a layer, so that a functional graph shows where gradients are cut.

    Args:
        enabled: bool. When False the layer is the identity (the ablation switch). Defaults to True.
    """

    def __init__(self, enabled=True, **kwargs):
        super().__init__(**kwargs)
        self.enabled = bool(enabled)

    def call(self, inputs):
        return tf.stop_gradient(inputs) if self.enabled else inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(enabled=self.enabled)
        return config
