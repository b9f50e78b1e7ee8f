"""Conv -> norm -> activation, the unit every decoder stage is made of."""

import keras

from hfgd_tf.layers.normalization import make_norm, normalize_norm_spec


@keras.saving.register_keras_serializable(package="hfgd_tf")
class ConvNormAct(keras.layers.Layer):
    """`Conv2D` (no bias) followed by normalization and an optional activation.

    Args:
        num_channels: int. Output channels.
        kernel_size: int. Square kernel size. Defaults to 3.
        strides: int. Defaults to 1.
        dilation_rate: int. Defaults to 1.
        norm: str or dict. See `hfgd_tf.layers.normalization`. Defaults to None (sync batch norm).
        activation: str or None. Defaults to "relu".

    Call arguments:
        inputs: `[B, H, W, C]`.

    Returns:
        `[B, ceil(H / strides), ceil(W / strides), num_channels]`.
    """

    def __init__(
        self,
        num_channels,
        kernel_size=3,
        strides=1,
        dilation_rate=1,
        norm=None,
        activation="relu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_channels < 1:
            raise ValueError(f"`num_channels` must be >= 1. Received: num_channels={num_channels}")
        self.num_channels = num_channels
        self.kernel_size = kernel_size
        self.strides = strides
        self.dilation_rate = dilation_rate
        self.norm = normalize_norm_spec(norm)
        self.activation = activation
        self.conv = keras.layers.Conv2D(
            num_channels,
            kernel_size,
            strides=strides,
            dilation_rate=dilation_rate,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            dtype=self.dtype_policy,
            name="conv",
        )
        self.norm_layer = make_norm(self.norm, name="norm", num_channels=num_channels, dtype=self.dtype_policy)
        self.activation_layer = (
            keras.layers.Activation(activation, dtype=self.dtype_policy, name="act") if activation else None
        )

    def build(self, input_shape):
        self.conv.build(input_shape)
        output_shape = self.conv.compute_output_shape(input_shape)
        self.norm_layer.build(output_shape)

    def call(self, inputs, training=None):
        x = self.conv(inputs)
        x = self.norm_layer(x, training=training)
        if self.activation_layer is not None:
            x = self.activation_layer(x)
        return x

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_channels=self.num_channels,
            kernel_size=self.kernel_size,
            strides=self.strides,
            dilation_rate=self.dilation_rate,
            norm=self.norm,
            activation=self.activation,
        )
        return config
