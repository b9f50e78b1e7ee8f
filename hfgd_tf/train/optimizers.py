"""`build_optimizer`: an OptimizerConfig -> a Keras 3 optimizer with its schedule."""

import keras

from hfgd_tf.train.schedules import WarmupDecaySchedule


def build_optimizer(config, total_steps, mixed_precision="none"):
    """Builds the optimizer.

    SGD gets no decoupled weight decay (the L2 penalty is added to the loss by the trainer, as in the
    authors' code); AdamW decays kernels only unless `decay_norm_vars`.

    Args:
        config: `OptimizerConfig`.
        total_steps: int. Steps of the whole run (for the schedule).
        mixed_precision: str. "float16" wraps the optimizer in a `LossScaleOptimizer`.

    Returns:
        `keras.optimizers.Optimizer`.
    """
    schedule = WarmupDecaySchedule(
        config.initial_lr,
        total_steps,
        end_lr=config.end_lr,
        decay_strategy=config.decay_strategy,
        power=config.poly_power,
        warmup_steps=config.warmup_steps,
    )
    clip = {"global_clipnorm": config.gradient_clip_norm} if config.gradient_clip_norm else {}
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=config.sgd_momentum_rate, **clip)
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, **clip)
        if not config.decay_norm_vars:
            optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "norm"])
    if mixed_precision == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
