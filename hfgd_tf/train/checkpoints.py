"""Run directories: the run config written at the start, and restoring a trained model from them.

A run directory (`TrainConfig.checkpoint_dir`) holds `run_config.json`, `ckpt-N` checkpoints (model,
optimizer, step), `best/model.weights.h5` with `best/metrics.json`, and TensorBoard `logs/`.
"""

import dataclasses
import os

import tensorflow as tf
from absl import logging

from hfgd_tf.backbones.weights import UnreadableWeightsError, load_weights_by_name
from hfgd_tf.data.config import DataConfig
from hfgd_tf.files import read_json, write_json_atomic
from hfgd_tf.models import ModelConfig, build_model
from hfgd_tf.train.checkpoint_recovery import (
    UnreadableCheckpointError,
    checkpoint_problem,
    fallback_message,
    newest_readable_checkpoint,
)

# What a user can do when no checkpoint of a run to be resumed reads.
START_AFRESH = (
    "To start the run afresh, delete its ckpt-* files and its 'checkpoint' file, or pass --norestore_checkpoint "
    "(new checkpoints then overwrite them), or train into a new --checkpoint_dir; to resume, copy the checkpoint "
    "files again from where they came"
)

RUN_CONFIG = "run_config.json"
BEST_DIR = "best"
BEST_WEIGHTS = "model.weights.h5"


class CheckpointSaveError(RuntimeError):
    """Writing a checkpoint failed (e.g. no space left on device); the message names the directory, the
    reason, and the previous checkpoint, which stays the latest one (a rerun resumes from it)."""

    def __init__(self, checkpoint_dir, step, previous, error):
        reason = (getattr(error, "message", None) or str(error)).strip().splitlines()[0]
        kept = (
            f"the previous checkpoint {previous!r} stays the latest one and a rerun of the same command resumes from it"
            if previous
            else "no earlier checkpoint exists, so a rerun starts afresh"
        )
        super().__init__(
            f"Saving checkpoint ckpt-{step} in {checkpoint_dir!r} failed ({type(error).__name__}: {reason}). Training "
            f"stopped; {kept}. Free space (or fix the directory), then rerun"
        )


def checkpoint_state(model, optimizer=None, step=None, backbone_optimizer=None):
    """A `tf.train.Checkpoint` of the model (and optimizer and step) keyed by variable path.

    Keras 3 layers do not expose variables held in Python lists or dicts to `tf.train.Checkpoint`'s
    object graph, so checkpointing `model=model` silently skips some of them. Keying every variable
    by its stable path (layers have explicit names) saves and restores all of them, and restores into
    a model built in another process. `backbone_optimizer` is the backbone's own optimizer when
    `backbone_lr_multiplier` != 1.
    """
    model_variables = {}
    for variable in model.weights:
        key = variable.path.replace("/", ".")
        if key in model_variables:
            raise ValueError(f"Two model variables share the path {variable.path!r}; give their layers unique names")
        model_variables[key] = variable
    items = {"model": model_variables}
    if optimizer is not None:
        # Optimizer variables follow the order of model.trainable_variables, which is fixed by the config.
        # The optimizer's own name (sgd, sgd_1, ...) is left out of the key: it depends on build order.
        items["optimizer"] = {f"{i:05d}.{v.name}": v for i, v in enumerate(optimizer.variables)}
    if backbone_optimizer is not None:
        items["backbone_optimizer"] = {f"{i:05d}.{v.name}": v for i, v in enumerate(backbone_optimizer.variables)}
    if step is not None:
        items["step"] = step
    return tf.train.Checkpoint(**items)


def write_run_config(checkpoint_dir, **configs):
    """Writes every config dataclass as JSON, so that evaluation and export need only the directory."""
    content = {name: dataclasses.asdict(config) for name, config in configs.items()}
    return write_json_atomic(os.path.join(checkpoint_dir, RUN_CONFIG), content)


def read_run_config(checkpoint_dir):
    """Returns `(ModelConfig, DataConfig, raw dict)` of a run directory."""
    path = os.path.join(checkpoint_dir, RUN_CONFIG)
    if not tf.io.gfile.exists(path):
        raise ValueError(
            f"{path!r} not found: --checkpoint_dir must be a training run directory (written by scripts/train.py)"
        )
    content = read_json(path)
    # Runs written before the head width was a field had a D-wide head.
    content["model"].setdefault("upsampler_num_channels", content["model"].get("num_channels", 0))
    # Runs written before the CAE's position encoding was a field used row/column indices.
    content["model"].setdefault("cae_position_encoding", "index")
    return ModelConfig(**content["model"]), DataConfig(**content["data"]), content


def restore_training_state(checkpoint, checkpoint_dir):
    """Restores `checkpoint` (a `checkpoint_state` with optimizer and step) from the newest readable
    `ckpt-N` of `checkpoint_dir`, warning about the newer unreadable ones and the steps they held.

    Returns:
        str or None: the checkpoint restored (None: the directory has none, nothing was restored).

    Raises:
        UnreadableCheckpointError: checkpoints are recorded but none reads (the message says how to
            start afresh).
    """
    path, unreadable = newest_readable_checkpoint(checkpoint_dir, START_AFRESH)
    if path is None:
        return None
    if unreadable:
        logging.warning(fallback_message(path, unreadable, action="Resuming from"))
    checkpoint.restore(path).assert_existing_objects_matched()
    logging.info("Resumed from %s at step %d", path, int(checkpoint.step.numpy()))
    return path


def resolve_checkpoint(checkpoint_dir, which="latest"):
    """The file `restore_model(checkpoint_dir, which)` loads: a `ckpt-N` prefix, or the best weights' path.

    "latest" is the newest checkpoint that reads (`checkpoint_recovery`): newer unreadable ones are
    named in a warning with the steps they hold beyond it. A checkpoint asked for by name is never
    swapped for another: an unreadable one is an error.

    Raises:
        ValueError: naming what was looked for, when there is no such checkpoint.
        UnreadableCheckpointError: (a ValueError) the checkpoint asked for, or every one of "latest",
            cannot be read; names the file and the reason.
    """
    if which == "best":
        path = os.path.join(checkpoint_dir, BEST_DIR, BEST_WEIGHTS)
        if not tf.io.gfile.exists(path):
            raise ValueError(
                f"No best-mIoU weights at {path!r} (the run has not evaluated yet); use --checkpoint=latest (which='latest' from Python)"
            )
        return path
    if which == "latest":
        path, unreadable = newest_readable_checkpoint(
            checkpoint_dir,
            "Copy the checkpoint files again from where they came, or use --checkpoint=best (the best-mIoU weights)",
        )
        if not path:
            raise ValueError(f"No checkpoint in {checkpoint_dir!r} (expected ckpt-N files written by training)")
        if unreadable:
            logging.warning(fallback_message(path, unreadable, action="Using"))
        return path
    path = which
    if not tf.io.gfile.exists(path + ".index"):
        # A name as listed in the run directory (`ckpt-4`) is taken relative to it.
        path = os.path.join(checkpoint_dir, which)
        if not tf.io.gfile.exists(path + ".index"):
            raise ValueError(
                f"--checkpoint={which!r}: no such checkpoint (neither {which!r} nor {path!r} has an .index file); "
                f"use 'best', 'latest', a checkpoint name of {checkpoint_dir!r} such as 'ckpt-N', or a checkpoint path"
            )
    problem = checkpoint_problem(path)
    if problem:
        raise UnreadableCheckpointError(
            f"--checkpoint={which!r}: {path!r} cannot be read: {problem}. Copy its files again, or use "
            "--checkpoint=latest (the newest readable checkpoint) or --checkpoint=best"
        )
    return path


def restore_model(checkpoint_dir, which="latest", dtype_policy="float32"):
    """Builds the run's model and loads its trained weights.

    Args:
        checkpoint_dir: str. A run directory.
        which: str. "latest" (the newest readable `ckpt-N`), "best" (best mIoU weights), a checkpoint
            name in `checkpoint_dir` (`ckpt-N`) or a checkpoint path (`resolve_checkpoint` finds the file;
            a caller that records which file was loaded resolves it first and passes the path).
        dtype_policy: str.

    Returns:
        `(model, model_config, data_config)`.

    Raises:
        ValueError: no such checkpoint; `UnreadableCheckpointError` when it cannot be read.
    """
    model_config, data_config, _ = read_run_config(checkpoint_dir)
    model = build_model(model_config, dtype_policy=dtype_policy)
    path = resolve_checkpoint(checkpoint_dir, which)
    if which == "best":
        try:
            load_weights_by_name(model, path)
        except UnreadableWeightsError as error:
            raise UnreadableCheckpointError(
                f"--checkpoint=best: {error}. Copy {BEST_DIR}/{BEST_WEIGHTS} again from the run, or use "
                "--checkpoint=latest (the newest readable ckpt-N)"
            ) from None
        return model, model_config, data_config
    checkpoint_state(model).restore(path).expect_partial().assert_existing_objects_matched()
    return model, model_config, data_config
