"""Resizing to the spatial size of another tensor, which keeps odd input sizes exact.

A fixed 2x upsampling breaks on odd sizes (257 -> 129 -> 65 -> 33 -> 17 -> 9, and 2 * 9 != 17), so
every top-down step resizes to the shape of the feature it is added to.
"""

import keras
import tensorflow as tf


def resize_as_float32(inputs, size, method="bilinear"):
    """`tf.image.resize` of bfloat16/float16 inputs computed in float32, cast back to the dtype of `inputs`.

    TF's ResizeBilinear already computes and returns float32 for bfloat16/float16 inputs, but the XLA
    lowering of its gradient (ResizeBilinearGrad with T=bfloat16) emits float32 where the graph says
    bfloat16, and a mixed-precision training step then fails to compile ("Seen floating point types of
    different precisions", tensorflow/tensorflow#81273). Casting first keeps the resize and its gradient
    in float32 and leaves the precision change to a Cast, whose gradient XLA handles.

    Args:
        inputs: `[B, h, w, C]`.
        size: `[2]` int32 tensor or pair of ints, the output height and width.
        method: str. A `tf.image.resize` method.

    Returns:
        `[B, H, W, C]` in the dtype of `inputs`.
    """
    # Only half precisions go through float32: float32/float64 and integer inputs (nearest) keep their values.
    half = inputs.dtype in (tf.bfloat16, tf.float16)
    resized = tf.image.resize(tf.cast(inputs, tf.float32) if half else inputs, size, method=method)
    return tf.cast(resized, inputs.dtype)


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
        return resize_as_float32(inputs, size, self.interpolation)

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
