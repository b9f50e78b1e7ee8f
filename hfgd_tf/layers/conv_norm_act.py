"""Conv -> norm -> activation, the unit every decoder stage is made of."""

import keras

from hfgd_tf.layers.normalization import make_norm, normalize_norm_spec

PADDINGS = ("same", "symmetric")


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
        padding: str. "same" (Keras: a strided convolution pads only bottom/right at even sizes) or
            "symmetric" (PyTorch: a strided convolution pads `dilation * (kernel_size - 1) // 2` on every
            side, so it samples the pixels PyTorch-trained kernels expect; stride 1 is the same either way).
            Defaults to "same".

    Call arguments:
        inputs: `[B, H, W, C]`.

    Returns:
        `[B, ceil(H / strides), ceil(W / strides), num_channels]` (odd kernels; "symmetric" gives
        `floor((H - 1) / strides) + 1`, the same size).
    """

    def __init__(
        self,
        num_channels,
        kernel_size=3,
        strides=1,
        dilation_rate=1,
        norm=None,
        activation="relu",
        padding="same",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if padding not in PADDINGS:
            raise ValueError(f"`padding` must be one of {PADDINGS}. Received: padding={padding!r}")
        if num_channels < 1:
            raise ValueError(f"`num_channels` must be >= 1. Received: num_channels={num_channels}")
        self.num_channels = num_channels
        self.kernel_size = kernel_size
        self.strides = strides
        self.dilation_rate = dilation_rate
        self.norm = normalize_norm_spec(norm)
        self.activation = activation
        self.padding = padding
        explicit = padding == "symmetric" and strides > 1
        self.pad_layer = (
            keras.layers.ZeroPadding2D(dilation_rate * (kernel_size - 1) // 2, dtype=self.dtype_policy, name="pad")
            if explicit
            else None
        )
        self.conv = keras.layers.Conv2D(
            num_channels,
            kernel_size,
            strides=strides,
            dilation_rate=dilation_rate,
            padding="valid" if explicit else "same",
            use_bias=False,
            kernel_initializer="he_normal",
            dtype=self.dtype_policy,
            name="conv",
        )
        self.norm_layer = make_norm(self.norm, name="norm", num_channels=num_channels, dtype=self.dtype_policy)
        self.activation_layer = (
            keras.layers.Activation(activation, dtype=self.dtype_policy, name="act") if activation else None
        )

    def _padded_shape(self, input_shape):
        return self.pad_layer.compute_output_shape(input_shape) if self.pad_layer is not None else input_shape

    def build(self, input_shape):
        if self.pad_layer is not None:
            self.pad_layer.build(input_shape)
        self.conv.build(self._padded_shape(input_shape))
        output_shape = self.conv.compute_output_shape(self._padded_shape(input_shape))
        self.norm_layer.build(output_shape)

    def call(self, inputs, training=None):
        x = self.pad_layer(inputs) if self.pad_layer is not None else inputs
        x = self.conv(x)
        x = self.norm_layer(x, training=training)
        if self.activation_layer is not None:
            x = self.activation_layer(x)
        return x

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(self._padded_shape(input_shape))

    def get_config(self):
        config = super().get_config()
        config.update(
            num_channels=self.num_channels,
            kernel_size=self.kernel_size,
            strides=self.strides,
            dilation_rate=self.dilation_rate,
            norm=self.norm,
            activation=self.activation,
            padding=self.padding,
        )
        return config
