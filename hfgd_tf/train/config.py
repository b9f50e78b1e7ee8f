"""OptimizerConfig and TrainConfig: how to train (the model and data have their own configs)."""

import dataclasses

OPTIMIZERS = ("sgd", "adamw")
DECAY_STRATEGIES = ("poly", "cosine", "none")
MIXED_PRECISIONS = ("none", "bfloat16", "float16")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")  # hfgd_tf.train.distribute
CLASS_WEIGHTINGS = ("none", "inverse_log", "median")
LOSSES = ("cross_entropy", "ohem", "focal")  # hfgd_tf.train.losses.LOSSES


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer and learning-rate schedule (the authors' CAR defaults).

    Attributes:
        optimizer: str. "sgd" (momentum) or "adamw".
        initial_lr, end_lr: float. Schedule start and end.
        decay_strategy: str. "poly" (power `poly_power`), "cosine" or "none".
        poly_power: float.
        warmup_steps: int. Linear warmup from 0 to `initial_lr`.
        sgd_momentum_rate: float.
        weight_decay: float. SGD: L2 penalty added to the loss; AdamW: decoupled decay.
        decay_norm_vars: bool. Also decay norm scales/offsets and biases (default off).
        gradient_clip_norm: float. Clips the global norm of the gradient of the global batch (after the
            cross-replica sum and loss-scale unscaling, so N replicas clip as 1 does); 0 disables.
        backbone_lr_multiplier: float. The backbone's variables train with learning rate
            `multiplier * lr(step)` (same schedule, own optimizer slots; SGD and AdamW), the rest with
            `lr(step)`. Segmentation recipes from pretrained backbones often use 0.1. 1 disables.
    """

    optimizer: str = "sgd"
    initial_lr: float = 0.01
    end_lr: float = 0.0
    decay_strategy: str = "poly"
    poly_power: float = 0.9
    warmup_steps: int = 0
    sgd_momentum_rate: float = 0.9
    weight_decay: float = 1e-4
    decay_norm_vars: bool = False
    gradient_clip_norm: float = 0.0
    backbone_lr_multiplier: float = 1.0

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"OptimizerConfig.optimizer must be one of {OPTIMIZERS}. Received: {self.optimizer!r}")
        if self.decay_strategy not in DECAY_STRATEGIES:
            raise ValueError(
                f"OptimizerConfig.decay_strategy must be one of {DECAY_STRATEGIES}. Received: {self.decay_strategy!r}"
            )
        if self.initial_lr <= 0:
            raise ValueError(f"OptimizerConfig.initial_lr must be > 0. Received: {self.initial_lr}")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.gradient_clip_norm < 0:
            raise ValueError("OptimizerConfig.warmup_steps, weight_decay and gradient_clip_norm must be >= 0")
        if self.backbone_lr_multiplier <= 0:
            raise ValueError(
                f"OptimizerConfig.backbone_lr_multiplier must be > 0 (use --freeze_backbone_bn and a small value "
                f"to keep the backbone nearly fixed). Received: {self.backbone_lr_multiplier}"
            )


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The training run.

    Attributes:
        checkpoint_dir: str. Checkpoints, TensorBoard logs and the best-mIoU weights go here.
        batch_size: int. The global batch (the authors' `gpu_batch_size`), split across replicas.
            With `accumulation_steps` N, the batch of one micro-batch: an update sees N * batch_size.
        accumulation_steps: int. Gradient accumulation: each optimizer update sums the gradients of N
            micro-batches of `batch_size` (the loss normalised by the pixels of all N), so it equals one
            step with a batch of N * batch_size (BatchNorm statistics excepted: they stay per
            micro-batch). Steps, epochs, the LR schedule, logging and checkpoints count updates.
            Not with loss "ohem".
        train_epoch: int. Epochs; total steps = train_epoch * epoch_steps.
        epoch_steps: int. Steps per epoch (a checkpoint and an evaluation after each).
        high_loss_weight: float. Weight of the high-level loss (loss = loss_up + w * loss_high).
        loss: str. Per-pixel loss of both heads: "cross_entropy", "ohem" (online hard example mining:
            only pixels whose true-class probability is below `ohem_threshold` count, but at least
            the `ohem_min_kept` hardest of the global batch) or "focal" (`-(1 - p)^focal_gamma log p`).
        ohem_threshold: float. OHEM: probability below which a pixel is hard (mmseg: 0.7).
        ohem_min_kept: int. OHEM: minimum kept pixels in the global batch, over all replicas (mmseg's
            min_kept counts per image: its 100000 with a global batch of 8 images is 800000 here).
        focal_gamma: float. Focal loss focusing parameter (0 is cross entropy).
        class_weighting: str. "none", or per-class loss weights computed from the training split's pixel
            counts in the records' manifest.json: "inverse_log" (1 / ln(1.02 + freq), ENet) or "median"
            (median frequency balancing).
        mixed_precision: str. "none", "bfloat16" or "float16" (loss scaling on).
        strategy: str. "auto", "one_device", "mirrored", "multi_worker" (MultiWorkerMirroredStrategy over
            the cluster of the TF_CONFIG environment variable, or of --worker_hosts/--task_index; worker 0
            writes the run directory, which must be on a filesystem every worker reads) or "tpu".
        tpu: str. TPU name for strategy "tpu".
        max_checkpoints_to_keep: int.
        restore_checkpoint: bool. Resume from the latest checkpoint in `checkpoint_dir`: model, optimizer
            (slots, iterations, float16 loss scale), step and data position (same batches and
            augmentations as an uninterrupted run). The weights then match an uninterrupted run's up to
            the run-to-run nondeterminism of the kernels: on CPU none was measured; on GPU bitwise
            equality needs --op_determinism.
        evaluate_every_epoch: bool. Evaluate on the eval split after each epoch.
        log_every_steps: int. Progress line and TensorBoard scalars period. The loop reads the loss and
            the device-side NaN/Inf record back to the host only at these steps and at checkpoints (no
            host round trip per step); a non-finite step freezes the weights on the device until then.
        training_progress_bar: bool. Show a progress bar (steps/s, ETA, loss) on the terminal.
        seed: int. Seed for weights (Keras) and data.
        op_determinism: bool. `tf.config.experimental.enable_op_determinism()`: bitwise identical reruns
            and resumed runs on GPU too (cuDNN and atomic reductions are otherwise not deterministic);
            slower.
        init_weights_path: str. A whole-model `.weights.h5` (e.g. `best/model.weights.h5` of another run)
            to start from; weights that match by path and shape load, the others (a classifier for
            another class count) stay freshly initialised with a warning. A resumed checkpoint wins.
        jit_compile: bool. XLA-compile each replica's forward and backward pass (the input, the
            cross-replica sums and the optimizer update stay outside XLA). Refused with synchronised
            BatchNorm on more than one replica (its all-reduce would sit inside XLA): use
            --norm_method=batch_norm or group_norm with it.
        freeze_backbone_bn: bool. Backbone BatchNorm layers run in inference mode: moving statistics
            frozen (those of the pretrained weights) and scale/offset not trained. For fine-tuning a
            pretrained backbone with small per-replica batches.
        freeze_backbone: bool. The backbone does not train at all: its variables are left out of the
            optimizer and its BatchNorm layers run in inference mode. The frozen-feature reference of a
            pretrained backbone (a fresh head on fixed features); `backbone_lr_multiplier` is then unused.
    """

    checkpoint_dir: str
    batch_size: int = 16
    accumulation_steps: int = 1
    train_epoch: int = 30
    epoch_steps: int = 1000
    high_loss_weight: float = 1.0
    loss: str = "cross_entropy"
    ohem_threshold: float = 0.7
    ohem_min_kept: int = 100000
    focal_gamma: float = 2.0
    class_weighting: str = "none"
    mixed_precision: str = "none"
    strategy: str = "auto"
    tpu: str = ""
    max_checkpoints_to_keep: int = 3
    restore_checkpoint: bool = True
    evaluate_every_epoch: bool = True
    log_every_steps: int = 50
    training_progress_bar: bool = False
    seed: int = 0
    op_determinism: bool = False
    jit_compile: bool = False
    init_weights_path: str = ""
    freeze_backbone_bn: bool = False
    freeze_backbone: bool = False

    def __post_init__(self):
        if not self.checkpoint_dir:
            raise ValueError("TrainConfig.checkpoint_dir must be set (where checkpoints and logs go)")
        positive = ("batch_size", "accumulation_steps", "train_epoch", "epoch_steps", "max_checkpoints_to_keep")
        for name in positive + ("log_every_steps",):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1. Received: {name}={getattr(self, name)}")
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(
                f"TrainConfig.mixed_precision must be one of {MIXED_PRECISIONS}. Received: {self.mixed_precision!r}"
            )
        if self.strategy not in STRATEGIES:
            raise ValueError(f"TrainConfig.strategy must be one of {STRATEGIES}. Received: {self.strategy!r}")
        if self.strategy == "tpu" and not self.tpu:
            raise ValueError("TrainConfig.strategy='tpu' needs TrainConfig.tpu (the TPU name)")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ValueError(
                f"TrainConfig.class_weighting must be one of {CLASS_WEIGHTINGS}. Received: {self.class_weighting!r}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"TrainConfig.loss must be one of {LOSSES}. Received: loss={self.loss!r}")
        if not 0.0 < self.ohem_threshold <= 1.0:
            raise ValueError(f"TrainConfig.ohem_threshold must be in (0, 1]. Received: {self.ohem_threshold}")
        if self.ohem_min_kept < 0 or self.focal_gamma < 0:
            raise ValueError(
                "TrainConfig.ohem_min_kept and focal_gamma must be >= 0. "
                f"Received: ohem_min_kept={self.ohem_min_kept}, focal_gamma={self.focal_gamma}"
            )
        if self.high_loss_weight < 0:
            raise ValueError(f"TrainConfig.high_loss_weight must be >= 0. Received: {self.high_loss_weight}")

    @property
    def total_steps(self):
        return self.train_epoch * self.epoch_steps

    @property
    def dtype_policy(self):
        return {"none": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}[self.mixed_precision]
