"""2-D sine position encoding for feature maps of any size."""

import math

import keras
import tensorflow as tf

# "index": p is the row/column index (0, 1, 2, ...). "normalized": p is the cell centre's place in the grid,
# (i + 0.5) / n * 2 pi, as DETR's `normalize=True`.
POSITION_ENCODINGS = ("index", "normalized")


@keras.saving.register_keras_serializable(package="hfgd_tf")
class SinePositionEncoding2D(keras.layers.Layer):
    """Fixed 2-D sine/cosine position encoding (DETR style), computed for the input's own size.

    Half of the channels encode the row, half the column; each half is [sin(p * w_0), cos(p * w_0),
    sin(p * w_1), ...] with w_i = 1 / max_wavelength^(2i / (D / 2)) and p the row or column position.
    Computing it from the runtime shape (instead of a learned table of fixed size) is what lets the
    context encoder run on any input size.

    What p is decides what "any input size" means. With `positions="index"` p is the row or column
    index: a model trained on 7x7 token grids (224x224 crops at OS32) meets indices 7..14 for the first
    time on a 12x15 grid (a 360x480 frame), codes it never learned to read. With `positions="normalized"`
    p = (i + 0.5) / n * 2 pi is the place of the cell in the grid, the same range at every size (DETR's
    `normalize=True`, with cell centres so that the grid is symmetric); a larger grid samples the same
    range more finely instead of extending it.

    Args:
        max_wavelength: float. Defaults to 10000.
        positions: str. "index" (the default, the encoding of this project's first releases) or
            "normalized".

    Call arguments:
        inputs: `[B, H, W, D]`, D divisible by 4.

    Returns:
        `[1, H, W, D]` encoding in the input dtype, to be added to (a view of) the input.
    """

    def __init__(self, max_wavelength=10000.0, positions="index", **kwargs):
        super().__init__(**kwargs)
        if positions not in POSITION_ENCODINGS:
            raise ValueError(f"`positions` must be one of {POSITION_ENCODINGS}. Received: positions={positions!r}")
        self.max_wavelength = float(max_wavelength)
        self.positions = positions

    def build(self, input_shape):
        if input_shape[-1] is None or input_shape[-1] % 4:
            raise ValueError(
                f"SinePositionEncoding2D needs channels divisible by 4. Received: input_shape={input_shape}"
            )

    def call(self, inputs):
        num_channels = inputs.shape[-1]
        half = num_channels // 2
        shape = tf.shape(inputs)
        rows = self._positions(shape[1])
        cols = self._positions(shape[2])
        exponents = tf.range(half // 2, dtype=tf.float32) * 2.0 / half
        frequencies = 1.0 / tf.pow(self.max_wavelength, exponents)

        def encode(positions):
            angles = positions[:, None] * frequencies[None, :]
            # Interleave sin and cos: [N, half/2, 2] -> [N, half].
            return tf.reshape(tf.stack([tf.sin(angles), tf.cos(angles)], axis=-1), [-1, half])

        row_code = encode(rows)[:, None, :]
        col_code = encode(cols)[None, :, :]
        row_code = tf.broadcast_to(row_code, [shape[1], shape[2], half])
        col_code = tf.broadcast_to(col_code, [shape[1], shape[2], half])
        encoding = tf.concat([row_code, col_code], axis=-1)[None]
        return tf.cast(encoding, inputs.dtype)

    def _positions(self, size):
        positions = tf.cast(tf.range(size), tf.float32)
        if self.positions == "normalized":
            positions = (positions + 0.5) / tf.cast(size, tf.float32) * (2.0 * math.pi)
        return positions

    def compute_output_shape(self, input_shape):
        return (1,) + tuple(input_shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update(max_wavelength=self.max_wavelength, positions=self.positions)
        return config
