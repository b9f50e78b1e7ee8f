"""Learning-rate schedules: poly (the authors' default) or cosine decay, with linear warmup."""

import math

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="hfgd_tf")
class WarmupDecaySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = linear warmup to `initial_lr` over `warmup_steps`, then decay to `end_lr` at `total_steps`.

    poly: end + (initial - end) * (1 - t)^power; cosine: end + (initial - end) * (1 + cos(pi t)) / 2;
    none: initial; t = (step - warmup) / (total - warmup), clipped to [0, 1].
    """

    def __init__(self, initial_lr, total_steps, end_lr=0.0, decay_strategy="poly", power=0.9, warmup_steps=0):
        self.initial_lr = float(initial_lr)
        self.total_steps = int(total_steps)
        self.end_lr = float(end_lr)
        self.decay_strategy = decay_strategy
        self.power = float(power)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        progress = tf.clip_by_value((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        span = self.initial_lr - self.end_lr
        if self.decay_strategy == "poly":
            lr = self.end_lr + span * tf.pow(1.0 - progress, self.power)
        elif self.decay_strategy == "cosine":
            lr = self.end_lr + span * 0.5 * (1.0 + tf.cos(math.pi * progress))
        else:
            lr = tf.constant(self.initial_lr)
        if self.warmup_steps:
            warmup = self.initial_lr * (step + 1.0) / self.warmup_steps
            lr = tf.where(step < self.warmup_steps, warmup, lr)
        return lr

    def get_config(self):
        return {
            "initial_lr": self.initial_lr,
            "total_steps": self.total_steps,
            "end_lr": self.end_lr,
            "decay_strategy": self.decay_strategy,
            "power": self.power,
            "warmup_steps": self.warmup_steps,
        }
