"""What a training run says before its first step, and a progress bar that log lines do not break.

A run on real data spends its first minute building the model, reading the records and tracing the step;
the banner says what is being run (model and size, where the backbone weights come from, the data and how
many records, the step budget, the batch and its split over replicas and workers, the run directory) so a
wrong flag shows before the first checkpoint, not after it.
"""

import contextlib
import logging
import os
import sys

from hfgd_tf.data.pipeline import count_records
from hfgd_tf.train.distribute import num_workers


def _records(data_config, split):
    """'N records' for the banner (manifest or TFDS count), or why it is unknown; never fails the run."""
    try:
        return f"{count_records(data_config, split)} records"
    except Exception as error:  # noqa: BLE001  (a banner line must not stop training)
        return f"records not counted ({type(error).__name__})"


def run_banner(trainer, start_step):
    """Multi-line description of `trainer`'s run, starting at `start_step` (0, or the resumed step)."""
    model, data, train = trainer.model_config, trainer.data_config, trainer.train_config
    optimizer = trainer.optimizer_config
    strategy = trainer.strategy
    replicas, workers = strategy.num_replicas_in_sync, num_workers(strategy)
    parameters = trainer.model.count_params()
    trainable = sum(int(v.shape.num_elements()) for v in trainer.model.trainable_variables)
    if train.init_weights_path:
        weights = f"whole model from {train.init_weights_path} (--init_weights_path)"
    elif model.backbone_weights_path:
        weights = f"backbone from {model.backbone_weights_path} (--backbone_weights_path)"
    elif model.backbone_preset_dir:
        weights = f"backbone preset {model.backbone_preset_dir} (--backbone_preset_dir)"
    else:
        weights = "random initialisation (no --backbone_weights_path)"
    if start_step:
        weights += f"; resumed at step {start_step} from {train.checkpoint_dir}"
    source = (
        data.data_dir
        if data.data_source == "tfrecord"
        else f"TFDS {data.tfds_name or data.dataset} in {data.tfds_data_dir or '~/tensorflow_datasets'}"
    )
    splits = [f"train split {data.train_split!r}: {_records(data, data.train_split)}"]
    if train.evaluate_every_epoch:
        splits.append(f"eval split {data.eval_split!r}: {_records(data, data.eval_split)}")
    micro = train.batch_size // max(train.accumulation_steps, 1)
    batch = f"global batch {train.batch_size}"
    if train.accumulation_steps > 1:
        batch += f" ({train.accumulation_steps} micro-batches of {micro})"
    batch += f", {micro // replicas} per replica"
    lines = [
        f"Model: backbone {model.backbone}, {model.num_classes} classes, D={model.num_channels}, CAE {model.cae}, "
        f"upsampler {model.upsampler} to OS{model.output_stride}, {model.norm_method}, input normalisation "
        f"{model.input_normalization}; {parameters:,} parameters ({trainable:,} trainable)",
        f"Weights: {weights}",
        f"Data: {data.dataset} from {source}; " + "; ".join(splits) + f"; crop {data.crop_height}x{data.crop_width}",
        f"Steps: {train.total_steps} ({train.train_epoch} epochs of {train.epoch_steps}), from step {start_step}; "
        f"{batch}; {optimizer.optimizer} lr {optimizer.initial_lr} ({optimizer.decay_strategy}); "
        f"log every {train.log_every_steps} steps, checkpoint{' and evaluation' if train.evaluate_every_epoch else ''} "
        f"every {train.epoch_steps}",
        f"Strategy: {type(strategy).__name__}, {replicas} replica{'s' if replicas > 1 else ''}"
        + (f" on {workers} workers" if workers > 1 else "")
        + (f", mixed precision {train.mixed_precision}" if train.mixed_precision != "none" else "")
        + (", XLA" if train.jit_compile else ""),
        f"Run directory: {os.path.abspath(train.checkpoint_dir) if '://' not in train.checkpoint_dir else train.checkpoint_dir}",
    ]
    return "\n".join(lines)


class _AboveProgressBar(logging.Handler):
    """Wraps a handler so that each record is written above the progress bar, not through it."""

    def __init__(self, inner, bar_class):
        super().__init__(inner.level)
        self.inner, self.bar_class = inner, bar_class

    def emit(self, record):
        with self.bar_class.external_write_mode(file=sys.stderr, nolock=False):
            self.inner.emit(record)


@contextlib.contextmanager
def logs_above_progress_bar(bar_class):
    """While active, the root logger's handlers (absl's among them) write above `bar_class`'s bars."""
    root = logging.getLogger()
    original = list(root.handlers)
    root.handlers = [_AboveProgressBar(handler, bar_class) for handler in original]
    try:
        yield
    finally:
        root.handlers = original
