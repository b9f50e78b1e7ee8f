"""Stochastic depth (drop path) whose randomness is a function of checkpointed state, not of a hidden RNG."""

import zlib

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="hfgd_tf")
class DropPath(keras.layers.Layer):
    """Drops a residual branch per example with probability `rate` during training (Huang et al., 2016).

    The keep mask is `tf.random.stateless_uniform` seeded by `(seed, replica id, call count)`, where the
    call count is a non-trainable weight (`<name>/drop_path_calls`) incremented on every training call.
    Because that count is a model weight it is saved in checkpoints, so a resumed run draws the same
    masks as an uninterrupted one; replicas draw different masks. At inference the layer is the identity.

    Args:
        rate: float in [0, 1). Drop probability. Defaults to 0.
        seed: int or None. None derives a fixed seed from the layer name (crc32), so that blocks differ
            and a rebuilt model draws the same masks [ours]. Defaults to None.

    Call arguments:
        inputs: `[B, ...]`, the residual branch.
        training: bool.

    Returns:
        `[B, ...]`: `inputs * keep / (1 - rate)` with one keep bit per example, or `inputs` unchanged.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"`rate` must be in [0, 1). Received: drop path rate={rate}")
        self.rate = float(rate)
        self.seed = int(seed) if seed is not None else zlib.crc32(self.name.encode()) & 0x7FFFFFFF

    def build(self, input_shape):
        self.calls = self.add_weight(
            name="drop_path_calls",
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            autocast=False,
            aggregation="none",  # as BatchNorm statistics: every replica adds 1 to its own copy
        )

    def call(self, inputs, training=None):
        # A frozen layer (`trainable=False`, e.g. a backbone frozen for fine-tuning a fresh head) runs in
        # inference mode, as Keras' BatchNormalization does: its head then trains on the features it sees
        # at evaluation.
        if not training or not self.rate or not self.trainable:
            return inputs
        replica = 0
        context = tf.distribute.get_replica_context()
        if context is not None:
            replica = context.replica_id_in_sync_group
        seed = tf.stack([tf.cast(self.seed, tf.int64) * 1009 + tf.cast(replica, tf.int64), tf.identity(self.calls)])
        self.calls.assign_add(1)
        keep = 1.0 - self.rate
        shape = tf.concat([tf.shape(inputs)[:1], tf.ones([tf.rank(inputs) - 1], tf.int32)], axis=0)
        mask = tf.floor(keep + tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float32))
        return inputs * tf.cast(mask / keep, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config
