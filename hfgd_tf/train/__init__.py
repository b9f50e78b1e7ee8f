"""Training: configs, losses, schedules, optimizers, the distributed loop and run directories."""

from hfgd_tf.train.config import OptimizerConfig, TrainConfig
from hfgd_tf.train.trainer import NonFiniteLossError, Trainer

__all__ = ["NonFiniteLossError", "OptimizerConfig", "TrainConfig", "Trainer"]
