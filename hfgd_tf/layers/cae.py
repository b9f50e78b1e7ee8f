"""Context augmentation encoders (CAE) for the low-resolution high-level feature.

HFGD (arXiv:2303.08646) enriches the OS32 high-level feature with context before the class kernels
classify it and before it guides the upsampler. The paper does not fix the encoder; our default
([ours], `ModelConfig.cae="transformer"`) is a small transformer encoder with 2-D sine positions:
at OS32 a 512x512 crop is only 16x16 = 256 tokens, so global self-attention is cheap. The
alternatives `aspp` (DeepLabV3), `ppm` (PSPNet) and `none` (a projection only) are the ablations.

Every encoder maps C5 `[B, h, w, C]` to the high-level feature H `[B, h, w, D]` (D `num_channels`).
"""

import keras
import tensorflow as tf

from hfgd_tf.layers.conv_norm_act import ConvNormAct
from hfgd_tf.layers.normalization import normalize_norm_spec
from hfgd_tf.layers.policy import dtype_policy_scope
from hfgd_tf.layers.position_encoding import SinePositionEncoding2D
from hfgd_tf.layers.resize import resize_as_float32


class _ContextEncoderBase(keras.layers.Layer):
    """Stores `num_channels` and `norm` and projects C5 to D channels with a 1x1 conv-norm-ReLU."""

    def __init__(self, num_channels, norm=None, **kwargs):
        super().__init__(**kwargs)
        if num_channels < 1:
            raise ValueError(f"`num_channels` must be >= 1. Received: num_channels={num_channels}")
        self.num_channels = num_channels
        self.norm = normalize_norm_spec(norm)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_channels,)

    def get_config(self):
        config = super().get_config()
        config.update(num_channels=self.num_channels, norm=self.norm)
        return config


@keras.saving.register_keras_serializable(package="hfgd_tf")
class ProjectionEncoder(_ContextEncoderBase):
    """No context: a 3x3 conv-norm-ReLU projection of C5 to D channels (`cae="none"`).

    Args:
        num_channels: int. D.
        norm: str or dict. Defaults to None (sync batch norm).
    """

    def __init__(self, num_channels, norm=None, **kwargs):
        super().__init__(num_channels, norm=norm, **kwargs)
        self.projection = ConvNormAct(num_channels, 3, norm=self.norm, dtype=self.dtype_policy, name="projection")

    def build(self, input_shape):
        self.projection.build(input_shape)

    def call(self, inputs, training=None):
        return self.projection(inputs, training=training)


@keras.saving.register_keras_serializable(package="hfgd_tf")
class ContextAugmentationEncoder(_ContextEncoderBase):
    """Transformer CAE: 1x1 projection, `num_blocks` pre-norm self-attention + MLP blocks, 3x3 output conv.

    Position information enters the queries and keys of every block as a 2-D sine encoding (DETR),
    so the encoder accepts any feature size.

    Args:
        num_channels: int. D; divisible by 4 and by `num_heads`.
        num_blocks: int. Transformer blocks. Defaults to 1.
        num_heads: int. Attention heads. Defaults to 4.
        mlp_ratio: int. MLP hidden width / D. Defaults to 4.
        dropout: float. Attention and MLP dropout. Defaults to 0.
        norm: str or dict. For the conv layers. Defaults to None (sync batch norm).
        position_encoding: str. "index" (row/column indices; the default, as in this project's first
            releases) or "normalized" (positions scaled to the grid's extent, the same codes on every
            grid size): see `SinePositionEncoding2D`.

    Call arguments:
        inputs: C5 `[B, h, w, C]`.

    Returns:
        H `[B, h, w, D]`.
    """

    def __init__(
        self,
        num_channels,
        num_blocks=1,
        num_heads=4,
        mlp_ratio=4,
        dropout=0.0,
        norm=None,
        position_encoding="index",
        **kwargs,
    ):
        super().__init__(num_channels, norm=norm, **kwargs)
        if num_channels % 4 or num_channels % num_heads:
            raise ValueError(
                "`num_channels` must be divisible by 4 and by `num_heads`. "
                f"Received: num_channels={num_channels}, num_heads={num_heads}"
            )
        if num_blocks < 1:
            raise ValueError(f"`num_blocks` must be >= 1 (use cae='none' for no encoder). Received: {num_blocks}")
        self.num_blocks = num_blocks
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.dropout = dropout
        self.position_encoding_type = position_encoding
        policy = self.dtype_policy
        self.input_projection = ConvNormAct(num_channels, 1, norm=self.norm, dtype=policy, name="input_projection")
        self.position_encoding = SinePositionEncoding2D(
            positions=position_encoding, dtype=policy, name="position_encoding"
        )
        self.attention_norms, self.attentions, self.mlp_norms, self.mlps = [], [], [], []
        for i in range(num_blocks):
            self.attention_norms.append(
                keras.layers.LayerNormalization(epsilon=1e-6, dtype=policy, name=f"block{i}_attention_norm")
            )
            self.attentions.append(
                keras.layers.MultiHeadAttention(
                    num_heads, num_channels // num_heads, dropout=dropout, dtype=policy, name=f"block{i}_attention"
                )
            )
            self.mlp_norms.append(
                keras.layers.LayerNormalization(epsilon=1e-6, dtype=policy, name=f"block{i}_mlp_norm")
            )
            # keras.Sequential takes no `dtype`: it gets this layer's policy from the scope (on load too).
            with dtype_policy_scope(policy):
                self.mlps.append(
                    keras.Sequential(
                        [
                            keras.layers.Dense(num_channels * mlp_ratio, activation="gelu", dtype=policy, name="fc1"),
                            keras.layers.Dropout(dropout, dtype=policy, name="dropout1"),
                            keras.layers.Dense(num_channels, dtype=policy, name="fc2"),
                            keras.layers.Dropout(dropout, dtype=policy, name="dropout2"),
                        ],
                        name=f"block{i}_mlp",
                    )
                )
        self.output_norm = keras.layers.LayerNormalization(epsilon=1e-6, dtype=policy, name="output_norm")
        self.output_projection = ConvNormAct(num_channels, 3, norm=self.norm, dtype=policy, name="output_projection")

    def build(self, input_shape):
        self.input_projection.build(input_shape)
        feature_shape = tuple(input_shape[:-1]) + (self.num_channels,)
        self.position_encoding.build(feature_shape)
        token_shape = (input_shape[0], None, self.num_channels)
        for norm, attention, mlp_norm, mlp in zip(self.attention_norms, self.attentions, self.mlp_norms, self.mlps):
            norm.build(token_shape)
            attention.build(token_shape, token_shape, token_shape)
            mlp_norm.build(token_shape)
            mlp.build(token_shape)
        self.output_norm.build(token_shape)
        self.output_projection.build(feature_shape)

    def call(self, inputs, training=None):
        features = self.input_projection(inputs, training=training)
        shape = tf.shape(features)
        position = self.position_encoding(features)
        tokens = tf.reshape(features, [shape[0], -1, self.num_channels])
        position_tokens = tf.reshape(position, [1, -1, self.num_channels])
        for norm, attention, mlp_norm, mlp in zip(self.attention_norms, self.attentions, self.mlp_norms, self.mlps):
            normed = norm(tokens)
            query_key = normed + position_tokens
            tokens = tokens + attention(query_key, normed, key=query_key, training=training)
            tokens = tokens + mlp(mlp_norm(tokens), training=training)
        tokens = self.output_norm(tokens)
        features = tf.reshape(tokens, shape)
        return self.output_projection(features, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_blocks=self.num_blocks,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            dropout=self.dropout,
            position_encoding=self.position_encoding_type,
        )
        return config


@keras.saving.register_keras_serializable(package="hfgd_tf")
class ASPPEncoder(_ContextEncoderBase):
    """Atrous spatial pyramid pooling (DeepLabV3) as the context encoder (`cae="aspp"`).

    Hand-written rather than `keras_cv.layers.SpatialPyramidPooling` because that layer fixes its own
    (unsynchronised) BatchNorm; here the norm follows `norm` like every other HFGD layer, and the image
    pooling branch resizes to the runtime size (safe on any input size and at batch 1 with GroupNorm).

    Args:
        num_channels: int. D.
        dilation_rates: tuple of int. Rates of the 3x3 branches. Defaults to (6, 12, 18) (OS16 rates;
            at OS32 (1, 2, 3) covers the same field of view, which the model builder picks).
        norm: str or dict. Defaults to None (sync batch norm).

    Call arguments:
        inputs: `[B, h, w, C]`.

    Returns:
        `[B, h, w, D]`.
    """

    def __init__(self, num_channels, dilation_rates=(6, 12, 18), norm=None, **kwargs):
        super().__init__(num_channels, norm=norm, **kwargs)
        self.dilation_rates = tuple(int(r) for r in dilation_rates)
        policy = self.dtype_policy
        self.branches = [ConvNormAct(num_channels, 1, norm=self.norm, dtype=policy, name="branch_1x1")]
        for rate in self.dilation_rates:
            self.branches.append(
                ConvNormAct(
                    num_channels, 3, dilation_rate=rate, norm=self.norm, dtype=policy, name=f"branch_rate{rate}"
                )
            )
        self.pooling_projection = ConvNormAct(num_channels, 1, norm=self.norm, dtype=policy, name="image_pooling")
        self.output_projection = ConvNormAct(num_channels, 1, norm=self.norm, dtype=policy, name="output_projection")

    def build(self, input_shape):
        for branch in self.branches:
            branch.build(input_shape)
        self.pooling_projection.build((input_shape[0], 1, 1, input_shape[-1]))
        concat_channels = self.num_channels * (len(self.branches) + 1)
        self.output_projection.build(tuple(input_shape[:-1]) + (concat_channels,))

    def call(self, inputs, training=None):
        outputs = [branch(inputs, training=training) for branch in self.branches]
        pooled = tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
        pooled = self.pooling_projection(pooled, training=training)
        outputs.append(tf.broadcast_to(pooled, tf.shape(outputs[0])))
        return self.output_projection(tf.concat(outputs, axis=-1), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(dilation_rates=self.dilation_rates)
        return config


def _adaptive_pooling_matrix(size, bins, dtype):
    """`[bins, size]`: row i averages positions floor(i * size / bins) .. ceil((i + 1) * size / bins) - 1."""
    index = tf.range(bins)[:, None]
    position = tf.range(size)[None, :]
    start = (index * size) // bins
    end = ((index + 1) * size + bins - 1) // bins
    inside = tf.cast((position >= start) & (position < end), dtype)
    return inside / tf.cast(end - start, dtype)


def adaptive_average_pool(inputs, bins):
    """Adaptive average pooling of `[B, h, w, C]` to `[B, bins, bins, C]` with PyTorch's bin edges.

    Written by hand: `keras.ops.adaptive_average_pool` (Keras 3.15) needs static spatial sizes, and the
    models are built for `[B, None, None, 3]` images; `tf.image.resize(method="area")` has no gradient.
    Takes and returns the dtype of `inputs`; the pooling itself is a float32 einsum.
    """
    shape = tf.shape(inputs)
    rows = _adaptive_pooling_matrix(shape[1], bins, tf.float32)
    columns = _adaptive_pooling_matrix(shape[2], bins, tf.float32)
    pooled = tf.einsum("ih,bhwc,jw->bijc", rows, tf.cast(inputs, tf.float32), columns)
    return tf.cast(pooled, inputs.dtype)


@keras.saving.register_keras_serializable(package="hfgd_tf")
class PPMEncoder(_ContextEncoderBase):
    """Pyramid pooling module (PSPNet) as the context encoder (`cae="ppm"`).

    Each branch average-pools to `bins x bins` with PyTorch's `AdaptiveAvgPool2d` bins (the PSPNet and
    mmsegmentation PPM), as two pooling matrices, so it needs no static input size and has a gradient
    (TF's area resize has none registered).

    Args:
        num_channels: int. D.
        bins: tuple of int. Pooled grid sizes. Defaults to (1, 2, 3, 6).
        norm: str or dict. Defaults to None (sync batch norm).

    Call arguments:
        inputs: `[B, h, w, C]`.

    Returns:
        `[B, h, w, D]`.
    """

    def __init__(self, num_channels, bins=(1, 2, 3, 6), norm=None, **kwargs):
        super().__init__(num_channels, norm=norm, **kwargs)
        self.bins = tuple(int(b) for b in bins)
        policy = self.dtype_policy
        self.branches = [
            ConvNormAct(num_channels, 1, norm=self.norm, dtype=policy, name=f"pool{b}_projection") for b in self.bins
        ]
        self.output_projection = ConvNormAct(num_channels, 3, norm=self.norm, dtype=policy, name="output_projection")

    def build(self, input_shape):
        for branch in self.branches:
            branch.build((input_shape[0], None, None, input_shape[-1]))
        concat_channels = input_shape[-1] + self.num_channels * len(self.bins)
        self.output_projection.build(tuple(input_shape[:-1]) + (concat_channels,))

    def call(self, inputs, training=None):
        size = tf.shape(inputs)[1:3]
        outputs = [inputs]
        for bins, branch in zip(self.bins, self.branches):
            pooled = adaptive_average_pool(inputs, bins)
            pooled = branch(pooled, training=training)
            outputs.append(resize_as_float32(pooled, size))
        return self.output_projection(tf.concat(outputs, axis=-1), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(bins=self.bins)
        return config
