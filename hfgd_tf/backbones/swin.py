"""Swin Transformer backbone (Liu et al., "Swin Transformer: Hierarchical Vision Transformer using
Shifted Windows", ICCV 2021) as a feature dict.

Hand-written because neither Keras nor keras-cv 0.9 ships a Swin backbone, and because segmentation
needs what classification ports lack: any input size (each stage pads its map to a multiple of the
window, and patch merging pads odd sizes, as mmseg does), no fixed position table beyond the relative
bias, and a LayerNorm on every stage output (trainable on C5 only, see `convnext.stage_output_norm`).
Like ConvNeXt, Swin's 4x4/4 patch embedding has no stride-2 map, so the backbone returns no `S1` (the
OS2 upsampler makes its own from the image).
"""

import keras
import numpy as np
import tensorflow as tf

from hfgd_tf.backbones.base import FeatureBackbone
from hfgd_tf.backbones.convnext import stage_output_norm
from hfgd_tf.layers.drop_path import DropPath
from hfgd_tf.layers.normalization import normalize_norm_spec

SWIN_VARIANTS = {
    "tiny": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "small": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "base": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    "large": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}


def _relative_position_index(window_size):
    """`[ws*ws, ws*ws]` index into the `(2ws-1)^2` relative position bias table."""
    coords = np.stack(np.meshgrid(np.arange(window_size), np.arange(window_size), indexing="ij")).reshape(2, -1)
    relative = coords[:, :, None] - coords[:, None, :] + window_size - 1
    return relative[0] * (2 * window_size - 1) + relative[1]


@keras.saving.register_keras_serializable(package="hfgd_tf")
class SwinBlock(keras.layers.Layer):
    """One (shifted) window attention block: LN -> W-MSA/SW-MSA -> +, LN -> MLP -> +.

    Args:
        num_channels: int. C.
        num_heads: int.
        window_size: int. Defaults to 7.
        shift: bool. Shift windows by window_size // 2 (every second block). Defaults to False.
        mlp_ratio: float. Defaults to 4.
        drop_path_rate: float. Stochastic depth of both residual branches (seeded, resumable:
            `hfgd_tf.layers.drop_path.DropPath`). Defaults to 0.

    Call arguments:
        inputs: `[B, H, W, C]` of any H, W (padded to window multiples internally).

    Returns:
        `[B, H, W, C]`.
    """

    def __init__(
        self, num_channels, num_heads, window_size=7, shift=False, mlp_ratio=4.0, drop_path_rate=0.0, **kwargs
    ):
        super().__init__(**kwargs)
        if num_channels % num_heads:
            raise ValueError(f"`num_channels` must be divisible by `num_heads`. Received: {num_channels}, {num_heads}")
        self.num_channels, self.num_heads, self.window_size = num_channels, num_heads, window_size
        self.shift, self.mlp_ratio, self.drop_path_rate = shift, mlp_ratio, drop_path_rate
        policy = self.dtype_policy
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=policy, name="attention_norm")
        self.qkv = keras.layers.Dense(3 * num_channels, dtype=policy, name="qkv")
        self.projection = keras.layers.Dense(num_channels, dtype=policy, name="projection")
        self.mlp_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=policy, name="mlp_norm")
        self.fc1 = keras.layers.Dense(int(num_channels * mlp_ratio), activation="gelu", dtype=policy, name="fc1")
        self.fc2 = keras.layers.Dense(num_channels, dtype=policy, name="fc2")
        # Resumable stochastic depth: masks are a function of a checkpointed call count (see DropPath).
        self.attention_drop_path = DropPath(drop_path_rate, dtype=policy, name=f"{self.name}_attention_drop_path")
        self.mlp_drop_path = DropPath(drop_path_rate, dtype=policy, name=f"{self.name}_mlp_drop_path")
        self.relative_index = tf.constant(_relative_position_index(window_size).reshape(-1), tf.int32)

    def build(self, input_shape):
        self.bias_table = self.add_weight(
            name="relative_position_bias_table",
            shape=((2 * self.window_size - 1) ** 2, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )
        token_shape = (None, None, self.num_channels)
        for layer in (self.attention_norm, self.qkv, self.mlp_norm, self.fc1):
            layer.build(token_shape)
        self.projection.build(token_shape)
        self.fc2.build((None, None, int(self.num_channels * self.mlp_ratio)))
        self.attention_drop_path.build((None, None, None, self.num_channels))
        self.mlp_drop_path.build((None, None, None, self.num_channels))

    def _windows(self, x, padded_h, padded_w):
        """`[B, Hp, Wp, C]` -> `[B * nW, ws * ws, C]`."""
        ws = self.window_size
        x = tf.reshape(x, [-1, padded_h // ws, ws, padded_w // ws, ws, tf.shape(x)[-1]])
        x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
        return tf.reshape(x, [-1, ws * ws, tf.shape(x)[-1]])

    def _merge(self, windows, batch, padded_h, padded_w):
        ws = self.window_size
        x = tf.reshape(windows, [batch, padded_h // ws, padded_w // ws, ws, ws, self.num_channels])
        x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
        return tf.reshape(x, [batch, padded_h, padded_w, self.num_channels])

    def _shift_mask(self, padded_h, padded_w):
        """`[nW, ws*ws, ws*ws]` additive mask keeping attention inside the regions a shift brings together."""
        ws, shift = self.window_size, self.window_size // 2

        def region(size):
            index = tf.range(size)
            return tf.cast(index >= size - ws, tf.int32) + tf.cast(index >= size - shift, tf.int32)

        regions = region(padded_h)[:, None] * 3 + region(padded_w)[None, :]
        windows = self._windows(tf.cast(regions[None, :, :, None], tf.float32), padded_h, padded_w)[..., 0]
        different = tf.not_equal(windows[:, :, None], windows[:, None, :])
        return tf.where(different, -100.0, 0.0)

    def call(self, inputs, training=None):
        ws = self.window_size
        shape = tf.shape(inputs)
        batch, height, width = shape[0], shape[1], shape[2]
        padded_h = (height + ws - 1) // ws * ws
        padded_w = (width + ws - 1) // ws * ws
        x = self.attention_norm(inputs)
        x = tf.pad(x, [[0, 0], [0, padded_h - height], [0, padded_w - width], [0, 0]])
        if self.shift:
            x = tf.roll(x, shift=[-(ws // 2), -(ws // 2)], axis=[1, 2])
        windows = self._windows(x, padded_h, padded_w)
        head_dim = self.num_channels // self.num_heads
        qkv = tf.reshape(self.qkv(windows), [-1, ws * ws, 3, self.num_heads, head_dim])
        query, key, value = tf.unstack(tf.transpose(qkv, [2, 0, 3, 1, 4]))
        scores = tf.matmul(query * (head_dim**-0.5), key, transpose_b=True)
        bias = tf.gather(tf.cast(self.bias_table, scores.dtype), self.relative_index)
        scores += tf.transpose(tf.reshape(bias, [ws * ws, ws * ws, self.num_heads]), [2, 0, 1])[None]
        if self.shift:
            mask = tf.cast(self._shift_mask(padded_h, padded_w), scores.dtype)
            num_windows = tf.shape(mask)[0]
            scores = tf.reshape(scores, [-1, num_windows, self.num_heads, ws * ws, ws * ws]) + mask[None, :, None]
            scores = tf.reshape(scores, [-1, self.num_heads, ws * ws, ws * ws])
        attended = tf.matmul(tf.nn.softmax(scores, axis=-1), value)
        attended = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [-1, ws * ws, self.num_channels])
        x = self._merge(self.projection(attended), batch, padded_h, padded_w)
        if self.shift:
            x = tf.roll(x, shift=[ws // 2, ws // 2], axis=[1, 2])
        x = inputs + self.attention_drop_path(x[:, :height, :width], training=training)
        return x + self.mlp_drop_path(self.fc2(self.fc1(self.mlp_norm(x))), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            num_channels=self.num_channels,
            num_heads=self.num_heads,
            window_size=self.window_size,
            shift=self.shift,
            mlp_ratio=self.mlp_ratio,
            drop_path_rate=self.drop_path_rate,
        )
        return config


@keras.saving.register_keras_serializable(package="hfgd_tf")
class PatchMerging(keras.layers.Layer):
    """2x2 neighbourhood concat -> LayerNorm -> Linear(4C -> 2C); odd sizes are padded first.

    Call arguments:
        inputs: `[B, H, W, C]`.

    Returns:
        `[B, ceil(H/2), ceil(W/2), 2C]`.
    """

    def __init__(self, num_channels, **kwargs):
        super().__init__(**kwargs)
        self.num_channels = num_channels
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name="norm")
        self.reduction = keras.layers.Dense(2 * num_channels, use_bias=False, dtype=self.dtype_policy, name="reduction")

    def build(self, input_shape):
        self.norm.build((None, None, None, 4 * self.num_channels))
        self.reduction.build((None, None, None, 4 * self.num_channels))

    def call(self, inputs):
        shape = tf.shape(inputs)
        x = tf.pad(inputs, [[0, 0], [0, shape[1] % 2], [0, shape[2] % 2], [0, 0]])
        x = tf.concat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], axis=-1)
        return self.reduction(self.norm(x))

    def compute_output_shape(self, input_shape):
        half = lambda n: None if n is None else (n + 1) // 2  # noqa: E731
        return (input_shape[0], half(input_shape[1]), half(input_shape[2]), 2 * self.num_channels)

    def get_config(self):
        config = super().get_config()
        config.update(num_channels=self.num_channels)
        return config


@keras.saving.register_keras_serializable(package="hfgd_tf")
class SwinBackbone(FeatureBackbone):
    """Swin Transformer returning `{C2, C3, C4, C5}` at strides 4, 8, 16, 32 (no stride-2 level, no `S1`).

    Args:
        embed_dim: int. C of stage 1 (doubles per stage). Swin-T 96.
        depths: tuple of 4 int. Blocks per stage. Swin-T (2, 2, 6, 2).
        num_heads: tuple of 4 int. Heads per stage. Swin-T (3, 6, 12, 24).
        window_size: int. Defaults to 7 (12 for the 384 models).
        drop_path_rate: float. Linearly increasing stochastic depth. Defaults to 0.2.
        norm: str or dict. Unused (Swin has no batch norm); accepted so that every backbone takes the
            builder's `norm`. Defaults to None.
        image_shape: tuple. Defaults to (None, None, 3).

    Call arguments:
        images: `[B, H, W, 3]`, normalised; any size (multiples of 32 keep every map exact).

    Returns:
        dict of `[B, ceil(H/s), ceil(W/s), C_s]`, C2..C5 widths embed_dim * (1, 2, 4, 8).

    Example:
    >>> swin = SwinBackbone(embed_dim=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), window_size=2)
    >>> swin(np.zeros((1, 64, 64, 3)))["C5"].shape
    TensorShape([1, 2, 2, 64])
    """

    CONFIG_KEYS = (
        "embed_dim",
        "depths",
        "num_heads",
        "window_size",
        "drop_path_rate",
        "norm",
        "image_shape",
    )

    def __init__(
        self,
        embed_dim=96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        window_size=7,
        drop_path_rate=0.2,
        norm=None,
        image_shape=(None, None, 3),
        **kwargs,
    ):
        depths, num_heads = tuple(int(d) for d in depths), tuple(int(h) for h in num_heads)
        if len(depths) != 4 or len(num_heads) != 4 or min(depths) < 1:
            raise ValueError(f"`depths` and `num_heads` must be 4 positive ints each. Received: {depths}, {num_heads}")
        if window_size < 1:
            raise ValueError(f"`window_size` must be >= 1. Received: window_size={window_size}")
        norm = normalize_norm_spec(norm)
        name = kwargs.pop("name", "swin")
        images = keras.Input(shape=image_shape, name="images")
        x = keras.layers.Conv2D(embed_dim, 4, strides=4, padding="same", name=f"{name}_patch_embed")(images)
        x = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_patch_embed_norm")(x)
        features = {}
        rates = np.linspace(0.0, drop_path_rate, sum(depths)).tolist()
        block_index = 0
        for stage, (depth, heads) in enumerate(zip(depths, num_heads)):
            channels = embed_dim * 2**stage
            if stage > 0:
                x = PatchMerging(channels // 2, name=f"{name}_stage{stage}_merge")(x)
            for block in range(depth):
                x = SwinBlock(
                    channels,
                    heads,
                    window_size=window_size,
                    shift=block % 2 == 1,
                    drop_path_rate=rates[block_index],
                    name=f"{name}_stage{stage}_block{block}",
                )(x)
                block_index += 1
            level = f"C{stage + 2}"
            features[level] = stage_output_norm(level, 1e-5, name)(x)
        super().__init__(inputs=images, outputs=features, name=name, **kwargs)
        self.embed_dim, self.depths, self.num_heads = embed_dim, depths, num_heads
        self.window_size, self.drop_path_rate = window_size, drop_path_rate
        self.norm, self.image_shape = norm, tuple(image_shape)
        self.output_stride = 32
