"""`build_optimizer`: an OptimizerConfig -> a Keras 3 optimizer with its schedule."""

import keras

from hfgd_tf.train.schedules import WarmupDecaySchedule


def build_optimizer(config, total_steps, mixed_precision="none", lr_multiplier=1.0):
    """Builds the optimizer.

    SGD gets no decoupled weight decay (the L2 penalty is added to the loss by the trainer, as in the
    authors' code); AdamW decays kernels only unless `decay_norm_vars`. Gradient clipping is not set on
    the Keras optimizer (Keras would clip each replica's gradient before the cross-replica sum): the
    trainer clips the summed gradient.

    Args:
        config: `OptimizerConfig`.
        total_steps: int. Steps of the whole run (for the schedule).
        mixed_precision: str. "float16" wraps the optimizer in a `LossScaleOptimizer` (the trainer uses
            its dynamic scale and applies the inner optimizer itself).
        lr_multiplier: float. Multiplies the whole schedule (start, end and warmup), e.g.
            `config.backbone_lr_multiplier` for the backbone's optimizer.

    Returns:
        `keras.optimizers.Optimizer`.
    """
    schedule = WarmupDecaySchedule(
        config.initial_lr * lr_multiplier,
        total_steps,
        end_lr=config.end_lr * lr_multiplier,
        decay_strategy=config.decay_strategy,
        power=config.poly_power,
        warmup_steps=config.warmup_steps,
    )
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=config.sgd_momentum_rate)
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
        if not config.decay_norm_vars:
            optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "norm"])
    if mixed_precision == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
