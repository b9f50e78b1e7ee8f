"""The training loop: tf.distribute custom loop with checkpoint/resume, evaluation and TensorBoard."""

import contextlib
import dataclasses
import math
import os
import tempfile
import time
import uuid

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from hfgd_tf.backbones import preset_input_normalization
from hfgd_tf.backbones.weights import UnreadableWeightsError, load_weights_by_name, save_weights_by_name
from hfgd_tf.data.converter import class_weights_from_manifest
from hfgd_tf.data.pipeline import build_train_dataset
from hfgd_tf.data.tfrecord import list_shards, parse_example, read_manifest
from hfgd_tf.evaluation.evaluator import build_distributed_eval_dataset, evaluate, global_eval_batch_size
from hfgd_tf.evaluation.metrics import format_metrics_table
from hfgd_tf.files import read_json, write_json_atomic
from hfgd_tf.models import build_model
from hfgd_tf.train import checkpoints
from hfgd_tf.train.checkpoint_recovery import recorded_checkpoints
from hfgd_tf.train.distribute import create_strategy, is_chief, num_workers
from hfgd_tf.train.losses import SegmentationLoss, l2_weight_decay, supervised_pixel_count
from hfgd_tf.train.optimizers import build_optimizer
from hfgd_tf.train.preemption import PreemptionWatcher
from hfgd_tf.train.run_banner import logs_above_progress_bar, run_banner

# Entries of the train step's output that are not losses.
STEP_STATISTICS = ("gradient_norm", "update_applied")


class NonFiniteLossError(RuntimeError):
    """Raised when the loss, the gradient (without float16 loss scaling) or a weight becomes NaN/Inf;
    nothing is saved, so the last good checkpoint is left untouched."""


def _gradients_already_summed(grads_and_vars):
    return list(grads_and_vars)


def _grow_loss_scale(optimizer):
    """Doubles a `LossScaleOptimizer`'s dynamic scale after `dynamic_growth_steps` finite steps (as Keras)."""

    def upscale():
        optimizer.step_counter.assign(0)
        optimizer.dynamic_scale.assign(optimizer.dynamic_scale * 2.0)
        return tf.constant(0)

    def increment():
        optimizer.step_counter.assign_add(1)
        return tf.constant(0)

    tf.cond(tf.equal(optimizer.step_counter, optimizer.dynamic_growth_steps - 1), upscale, increment)


def raise_if_corrupt_record(data_config, split, error):
    """After a data error in training, finds the shard that holds the bad record and names it.

    tf.data reports a corrupt or truncated record (or an undecodable image) without the file it came
    from. This reads each shard of `split` again, raw records first (checksums), then decoded, and
    raises a ValueError naming the first bad shard. Returns (so that the caller re-raises `error`)
    when every shard reads cleanly, e.g. when the error did not come from the data.
    """
    logging.error("Data error in training (%s); looking for the bad shard of split %r", error.message, split)
    for path in list_shards(data_config.data_dir, split):
        records = tf.data.TFRecordDataset(path, compression_type=data_config.compression)
        try:
            records.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1).numpy()
            decoded = records.map(lambda r: tf.shape(parse_example(r)[0]), num_parallel_calls=tf.data.AUTOTUNE)
            decoded.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1).numpy()
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as shard_error:
            raise ValueError(
                f"Corrupt record in training shard {path!r} (split {split!r}): {shard_error.message.strip()}. "
                "Reconvert the split with scripts/convert_tfrecord.py or remove the shard."
            ) from error


def freeze_batch_norm(model):
    """Puts every BatchNormalization layer of `model` in inference mode, untrained (`trainable=False`).

    In Keras 3 a non-trainable BatchNormalization normalises with its moving statistics, does not
    update them, and its scale and offset are non-trainable. Returns the frozen layers' names.
    """
    frozen = []
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
            frozen.append(layer.name)
    return frozen


def _flag_value(value):
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


class Trainer:
    """Trains a segmenter from configs.

    Loss = loss_up + high_loss_weight * loss_high (+ L2 on kernels for SGD). Each loss is the mean
    per-pixel loss (`train_config.loss`: cross entropy, OHEM or focal; see `SegmentationLoss`) over
    the supervised (OHEM: kept) pixels of the *global* batch: every replica sums its pixels' losses and
    divides by the global pixel count (an all-reduce), and the gradient is summed across replicas
    before it is unscaled, checked and clipped, so one step gives the same update on 1 or N replicas.
    A non-finite gradient skips the update on every replica (float16: the loss scale halves and
    training goes on; otherwise training stops); the LR schedule follows the step counter either way.
    The data pipeline is seeded per example and resumes at the step's position in the record stream
    without decoding the consumed records, so killing and rerunning continues the same run.

    Construction seeds Python, NumPy and TensorFlow with `train_config.seed` (and turns on op
    determinism when asked): both are process-wide settings, as in the authors' scripts.

    Args:
        model_config, data_config, optimizer_config, train_config, eval_config: the configs.
        strategy: `tf.distribute.Strategy` or None (created from `train_config.strategy`).
    """

    def __init__(self, model_config, data_config, optimizer_config, train_config, eval_config, strategy=None):
        self.model_config, self.data_config = model_config, data_config
        self.optimizer_config, self.train_config, self.eval_config = optimizer_config, train_config, eval_config
        if model_config.num_classes != data_config.info.num_classes:
            raise ValueError(
                f"ModelConfig.num_classes={model_config.num_classes} but dataset {data_config.dataset!r} has "
                f"{data_config.info.num_classes} classes"
            )
        self._check_preset_input_normalization()
        if train_config.op_determinism:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(train_config.seed)
        self.strategy = strategy or create_strategy(train_config.strategy, train_config.tpu)
        if train_config.batch_size % self.strategy.num_replicas_in_sync:
            raise ValueError(
                f"TrainConfig.batch_size={train_config.batch_size} is not divisible by the "
                f"{self.strategy.num_replicas_in_sync} replicas"
            )
        global_eval_batch_size(eval_config.eval_batch_size, self.strategy.num_replicas_in_sync)
        # Only the chief writes the run directory. The other workers of a multi-worker cluster still save
        # every checkpoint (a save is collective), into a local temporary directory removed by `train`.
        self.is_chief = is_chief(self.strategy)
        # Named, not created: the first save creates it, so a failure before `train` leaves nothing behind.
        self._save_dir = (
            train_config.checkpoint_dir
            if self.is_chief
            else os.path.join(tempfile.gettempdir(), f"hfgd_worker_{os.getpid()}_{uuid.uuid4().hex[:8]}")
        )
        self.preempted = False  # set by `train` when a SIGTERM stopped it after saving a checkpoint
        with self.strategy.scope():
            self.model = build_model(model_config, dtype_policy=train_config.dtype_policy)
            if train_config.freeze_backbone_bn:
                frozen = freeze_batch_norm(self.model.backbone)
                logging.info("Froze %d backbone BatchNorm layers (inference mode, not trained)", len(frozen))
                if not frozen:
                    logging.warning("TrainConfig.freeze_backbone_bn: the backbone has no BatchNorm layer")
            if train_config.freeze_backbone:
                freeze_batch_norm(self.model.backbone)
                self.model.backbone.trainable = False
                logging.info("Froze the backbone: %d variables not trained", len(self.model.backbone.weights))
            self._check_jit_compile()
            self.optimizer = build_optimizer(optimizer_config, train_config.total_steps, train_config.mixed_precision)
            self.backbone_optimizer = None
            trainable = self.model.trainable_variables
            if optimizer_config.backbone_lr_multiplier != 1.0 and not train_config.freeze_backbone:
                backbone_ids = {id(v) for v in self.model.backbone.trainable_variables}
                head = [v for v in trainable if id(v) not in backbone_ids]
                backbone = [v for v in trainable if id(v) in backbone_ids]
                self.backbone_optimizer = build_optimizer(
                    optimizer_config, train_config.total_steps, lr_multiplier=optimizer_config.backbone_lr_multiplier
                )
                self.backbone_optimizer.build(backbone)
                self._groups = [(self._inner_optimizer, head), (self.backbone_optimizer, backbone)]
            else:
                head = trainable
                self._groups = [(self._inner_optimizer, trainable)]
            # Build slots inside the scope before the first distributed step (Keras 3 SGD with momentum otherwise fails inside strategy.run).
            self.optimizer.build(head)
            for optimizer, _ in self._groups:
                # The trainer sums the gradient across replicas itself (before clipping and the
                # finiteness check); Keras must not sum it a second time.
                optimizer._all_reduce_sum_gradients = _gradients_already_summed
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
            self.checkpoint = checkpoints.checkpoint_state(
                self.model, self.optimizer, self.step, backbone_optimizer=self.backbone_optimizer
            )
            if train_config.init_weights_path:
                # Fine-tuning: weights whose path and shape match load; the rest (e.g. a classifier for
                # another number of classes) keep their initial values, listed in a warning.
                if not tf.io.gfile.exists(train_config.init_weights_path):
                    raise ValueError(
                        f"--init_weights_path (TrainConfig.init_weights_path) not found: "
                        f"{train_config.init_weights_path!r}"
                    )
                try:
                    load_weights_by_name(self.model, train_config.init_weights_path, skip_mismatch=True)
                except UnreadableWeightsError as error:
                    raise ValueError(
                        f"--init_weights_path (TrainConfig.init_weights_path): {error}. Copy the file again or "
                        "point the flag at another run's best/model.weights.h5."
                    ) from None
        # Device-side training health, written by the train step and read by the host only at log and
        # checkpoint steps (no host round trip per step): the steps run, the first step whose loss was
        # NaN/Inf or whose update was skipped without float16 loss scaling (-1: none) with its loss, and
        # the updates skipped by float16 loss scaling. Plain (unmirrored) variables, updated in the
        # cross-replica part of the step.
        self._steps_run = tf.Variable(0, dtype=tf.int64, trainable=False, name="steps_run")
        self._first_bad_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="first_bad_step")
        self._first_bad_loss = tf.Variable(0.0, dtype=tf.float32, trainable=False, name="first_bad_loss")
        self._skipped_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_updates")
        self._skipped_reported = 0
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self._save_dir, max_to_keep=train_config.max_checkpoints_to_keep
        )
        self._restored_checkpoint = None  # set by `restore`, cleared by the next save
        self.best_miou = -1.0
        self.last_step_outputs = None  # the train step's dict of the last step run by `train`
        self.class_weights = self._class_weights()
        self.loss = SegmentationLoss(
            train_config.loss,
            data_config.info.ignore_label,
            self.class_weights,
            ohem_threshold=train_config.ohem_threshold,
            ohem_min_kept=train_config.ohem_min_kept,
            focal_gamma=train_config.focal_gamma,
        )
        if train_config.loss == "ohem" and train_config.accumulation_steps > 1:
            raise ValueError(
                "TrainConfig.loss='ohem' cannot be combined with accumulation_steps > 1 (the kept pixels are chosen "
                "per micro-batch, so the result would not be one step of the larger batch): use --loss=cross_entropy"
                "|focal, or --accumulation_steps=1"
            )
        if train_config.loss == "ohem" and train_config.jit_compile:
            # The global OHEM threshold gathers across replicas inside the loss, which cannot sit in
            # the XLA-compiled part of the step.
            raise ValueError(
                "TrainConfig.loss='ohem' cannot be combined with jit_compile (the global-batch OHEM threshold "
                "needs a cross-replica gather outside XLA): use --nojit_compile, or --loss=cross_entropy|focal"
            )
        self._gradient_fn = self._loss_and_gradients
        if train_config.jit_compile:
            self._gradient_fn = tf.function(self._loss_and_gradients, jit_compile=True)

    @property
    def _inner_optimizer(self):
        """The optimizer that updates the head (inside the `LossScaleOptimizer` under float16)."""
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            return self.optimizer.inner_optimizer
        return self.optimizer

    @property
    def _loss_scale_optimizer(self):
        return self.optimizer if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer) else None

    def _check_jit_compile(self):
        """Refuses XLA with a cross-replica BatchNorm all-reduce inside the compiled replica function."""
        if not self.train_config.jit_compile or self.strategy.num_replicas_in_sync == 1:
            return
        synced = [
            layer.name
            for layer in self.model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.synchronized and layer.trainable
        ]
        if synced:
            raise ValueError(
                f"TrainConfig.jit_compile (--jit_compile) cannot be used with synchronised BatchNorm on "
                f"{self.strategy.num_replicas_in_sync} replicas ({len(synced)} layers, e.g. {synced[0]!r}): the "
                "cross-replica statistics all-reduce cannot run inside an XLA-compiled replica function. Use "
                "--norm_method=batch_norm (per-replica statistics) or --norm_method=group_norm with --jit_compile, "
                "or keep --norm_method=sync_batch_norm and drop --jit_compile."
            )

    def _class_weights(self):
        method = self.train_config.class_weighting
        if method == "none":
            return None
        manifest = read_manifest(self.data_config.data_dir)
        if manifest is None or self.data_config.train_split not in manifest.get("splits", {}):
            raise ValueError(
                f"TrainConfig.class_weighting={method!r} needs the pixel counts of manifest.json in "
                f"{self.data_config.data_dir!r} (written by scripts/convert_tfrecord.py)"
            )
        weights = class_weights_from_manifest(manifest, self.data_config.train_split, method)
        logging.info("Class weights (%s): %s", method, np.round(weights, 3).tolist())
        return tf.constant(weights, tf.float32)

    # === Steps ===
    def _loss_and_gradients(self, images, labels, global_count):
        """Forward, losses and gradients of one replica's micro-batch; XLA-compiled with `jit_compile`.

        Every loss term is divided by `global_count`, the supervised pixels of the global batch (of all
        the accumulated micro-batches), so that the gradients summed over replicas and micro-batches
        are those of the global-batch mean.
        """
        num_replicas = self.strategy.num_replicas_in_sync
        with tf.GradientTape() as tape:
            outputs = self.model(images, training=True)
            losses = self.loss(labels, outputs, global_count)
            total = losses["loss_up"] + self.train_config.high_loss_weight * losses.get("loss_high", 0.0)
            if self.optimizer_config.optimizer == "sgd":
                decay = l2_weight_decay(
                    self.model.trainable_variables,
                    self.optimizer_config.weight_decay,
                    self.optimizer_config.decay_norm_vars,
                )
                # Added once per micro-batch of every replica: the shares sum to one decay per update.
                losses["weight_decay"] = decay / (num_replicas * self.train_config.accumulation_steps)
                total += losses["weight_decay"]
            losses["total"] = total
            scaled = self.optimizer.scale_loss(total)
        return losses, tape.gradient(scaled, self.model.trainable_variables)

    def _replica_step(self, images, labels, healthy=True):
        """One replica's part of a step: loss, gradient, cross-replica sum and the (shared) update.

        `images` and `labels` are one batch `[B, H, W, 3]`/`[B, H, W]` or, with gradient accumulation,
        tuples of `accumulation_steps` micro-batches: the supervised pixels of all of them make the
        loss normaliser, their gradients are summed on the replica, then handled as one batch's.

        The gradient is summed across replicas here, once, so that unscaling (float16), the finiteness
        check and clipping all see the gradient of the global batch: every replica takes the same
        decision, and a step on N replicas equals a step on 1. `healthy` (bool scalar, the same on
        every replica) False skips the update: set once a step went non-finite, so that the steps run
        until the host notices (at the next log or checkpoint step) leave the weights untouched.
        """
        context = tf.distribute.get_replica_context()
        if not isinstance(images, (list, tuple)):
            images, labels = (images,), (labels,)
        # The global count needs a cross-replica sum, which stays outside the XLA-compiled part.
        count = tf.add_n(
            [
                supervised_pixel_count(
                    micro, self.model_config.num_classes, self.data_config.info.ignore_label, self.class_weights
                )
                for micro in labels
            ]
        )
        global_count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
        losses, gradients = None, None
        for micro_images, micro_labels in zip(images, labels):
            micro_losses, micro_gradients = self._gradient_fn(micro_images, micro_labels, global_count)
            if gradients is None:
                losses, gradients = micro_losses, list(micro_gradients)
                continue
            losses = {k: losses[k] + v for k, v in micro_losses.items()}
            # Dense sums: an embedding-style lookup (Swin's relative position bias) gives IndexedSlices.
            gradients = [
                g if g is None else tf.convert_to_tensor(g) + tf.convert_to_tensor(m)
                for g, m in zip(gradients, micro_gradients)
            ]
        variables = self.model.trainable_variables
        present = [i for i, g in enumerate(gradients) if g is not None]
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [gradients[i] for i in present])
        loss_scale_optimizer = self._loss_scale_optimizer
        if loss_scale_optimizer is not None:
            scale = tf.cast(loss_scale_optimizer.dynamic_scale, tf.float32)
            summed = [tf.convert_to_tensor(g) / scale for g in summed]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in summed])
        finite = tf.logical_and(finite, healthy)
        norm = tf.linalg.global_norm(summed)
        if self.optimizer_config.gradient_clip_norm:
            summed, _ = tf.clip_by_global_norm(summed, self.optimizer_config.gradient_clip_norm, use_norm=norm)
        chosen = [variables[i] for i in present]

        def apply_in_replica(gradients):
            by_id = {id(v): g for v, g in zip(chosen, gradients)}
            for optimizer, group in self._groups:
                pairs = [(by_id[id(v)], v) for v in group if id(v) in by_id]
                optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])

        def apply_update(strategy, gradients, finite):
            # Cross-replica context. `finite` comes from the summed gradient, so it is the same on every
            # replica: an overflow on any replica skips the step on all of them.
            finite = strategy.experimental_local_results(finite)[0]

            def apply():
                strategy.extended.call_for_each_replica(apply_in_replica, args=(gradients,))
                if loss_scale_optimizer is not None:
                    _grow_loss_scale(loss_scale_optimizer)
                return tf.constant(True)

            def skip():
                # The schedule follows the step counter: a skipped step still advances `iterations`.
                for optimizer, _ in self._groups:
                    optimizer.iterations.assign_add(1)
                if loss_scale_optimizer is not None:
                    loss_scale_optimizer.step_counter.assign(0)
                    loss_scale_optimizer.dynamic_scale.assign(loss_scale_optimizer.dynamic_scale * 0.5)
                return tf.constant(False)

            return tf.cond(finite, apply, skip)

        context.merge_call(apply_update, args=(summed, finite))
        return losses, {"gradient_norm": norm, "update_applied": tf.cast(finite, tf.float32)}

    def distributed_iterator(self, start_step=0):
        """Iterator over the distributed training dataset, positioned at `start_step`."""
        dataset = self.strategy.distribute_datasets_from_function(
            lambda context: build_train_dataset(
                self.data_config,
                self.train_config.batch_size,
                context,
                # The stream is in micro-batches: `accumulation_steps` of them per optimizer step.
                initial_step=start_step * self.train_config.accumulation_steps,
            )
        )
        return iter(dataset)

    def make_train_step(self):
        """A `tf.function(iterator) -> dict` running one step on every replica.

        The dict holds the losses (summed over replicas: each replica's share of the global mean),
        `gradient_norm` (global norm of the global-batch gradient, before clipping) and `update_applied`
        (1.0, or 0.0 when the gradient was not finite and the update was skipped on every replica).
        With `accumulation_steps` N it takes N batches from the iterator and makes one update with the
        summed gradient: the result of one step with an N times larger batch.
        It also updates the device-side health counters (`_record_health`), so that the loop reads
        nothing back from the device per step.
        """

        def train_step(iterator):
            healthy = tf.less(self._first_bad_step, 0)
            batches = [next(iterator) for _ in range(self.train_config.accumulation_steps)]
            images, labels = tuple(b[0] for b in batches), tuple(b[1] for b in batches)
            losses, stats = self.strategy.run(self._replica_step, args=(images, labels, healthy))
            outputs = {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in losses.items()}
            for name, value in stats.items():
                # Equal on every replica (computed from the summed gradient).
                outputs[name] = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
            self._record_health(outputs)
            return outputs

        return tf.function(train_step)

    def _record_health(self, outputs):
        """Counts the step and records the first non-finite one, on the device (cross-replica context)."""
        step = self._steps_run.assign_add(1)
        total = tf.cast(outputs["total"], tf.float32)
        applied = outputs["update_applied"] > 0.5
        bad = tf.logical_not(tf.math.is_finite(total))
        if self._loss_scale_optimizer is None:
            # Without loss scaling a skipped update means a NaN/Inf gradient: an error, not an overflow.
            bad = tf.logical_or(bad, tf.logical_not(applied))
        first = tf.logical_and(bad, self._first_bad_step < 0)
        self._first_bad_loss.assign(tf.where(first, total, self._first_bad_loss))
        self._first_bad_step.assign(tf.where(first, step, self._first_bad_step))
        self._skipped_updates.assign_add(tf.cast(tf.logical_not(applied), tf.int64))

    def check_health(self):
        """Reads the device-side health counters (one host read); raises if a step went non-finite.

        Called at log and checkpoint steps and at the end. Float16 loss-scaling skips are logged.

        Raises:
            NonFiniteLossError: the loss, or (without float16) the gradient, was NaN/Inf at some step
                since the start; that step's update and all later ones were skipped on the device.
        """
        first_bad, loss, skipped, run = (
            int(self._first_bad_step.numpy()),
            float(self._first_bad_loss.numpy()),
            int(self._skipped_updates.numpy()),
            int(self._steps_run.numpy()),
        )
        last_good = self._last_good_checkpoint()
        hint = "Try a lower --initial_lr or --gradient_clip_norm."
        if first_bad >= 0 and not math.isfinite(loss):
            raise NonFiniteLossError(
                f"Loss is {loss} at step {first_bad} (noticed by step {run}); stopped without saving. The last good "
                f"checkpoint is {last_good!r}. {hint}"
            )
        if first_bad >= 0:
            raise NonFiniteLossError(
                f"The gradient is NaN/Inf at step {first_bad} (loss {loss}; noticed by step {run}); the update was "
                f"not applied and nothing was saved. The last good checkpoint is {last_good!r}. {hint}"
            )
        if skipped > self._skipped_reported:
            logging.warning(
                "%d float16 gradient overflows by step %d: those updates were skipped on every replica (loss scale "
                "now %g; %d skipped so far)",
                skipped - self._skipped_reported,
                run,
                float(self._loss_scale_optimizer.dynamic_scale.numpy()),
                skipped,
            )
            self._skipped_reported = skipped

    def save_checkpoint(self, step):
        """Saves `ckpt-<step>` after checking that every weight is finite.

        Raises:
            NonFiniteLossError: a weight is NaN/Inf; nothing is written, the last good checkpoint stays.
        """
        bad = [
            v.path
            for v in self.model.weights
            # Integer state (drop path call counters) cannot be NaN, and is_finite has no integer kernel.
            if tf.as_dtype(v.dtype).is_floating and not bool(tf.reduce_all(tf.math.is_finite(v)))
        ]
        if bad:
            raise NonFiniteLossError(
                f"{len(bad)} weights are NaN/Inf at step {step} (e.g. {bad[0]!r}); stopped without saving. The last "
                f"good checkpoint is {self._last_good_checkpoint()!r}. Try a lower --initial_lr or "
                "--gradient_clip_norm."
            )
        self.step.assign(step)
        # CheckpointManager writes the files under a temporary name and only then records them in the
        # `checkpoint` state file (an atomic rename), then deletes old ones: a kill at any point leaves
        # the previous checkpoint as the latest one.
        previous = self._last_good_checkpoint()
        try:
            path = self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as error:  # a full disk, a lost mount, a revoked bucket permission
            raise checkpoints.CheckpointSaveError(self._save_dir, step, previous, error) from error
        self._restored_checkpoint = None
        logging.info("Saved checkpoint %s", path)
        return path

    def _last_good_checkpoint(self):
        """The checkpoint a rerun would resume from: the one restored, until this run saves one of its own.

        After a fall-back past unreadable checkpoints, the manager's latest is still the unreadable one
        (it is overwritten when training reaches its step again).
        """
        return self._restored_checkpoint or self.manager.latest_checkpoint

    # === Loop ===
    def restore(self):
        """Restores the newest readable checkpoint if asked and present; returns the step to start at.

        Newer checkpoints that cannot be read are named in a warning with the steps lost (they are
        trained again and overwritten); when none reads, an `UnreadableCheckpointError` says what to do.
        """
        # Every worker resumes from the chief's checkpoints.
        if self.train_config.restore_checkpoint:
            self._restored_checkpoint = checkpoints.restore_training_state(
                self.checkpoint, self.train_config.checkpoint_dir
            )
        best_path = os.path.join(self.train_config.checkpoint_dir, checkpoints.BEST_DIR, "metrics.json")
        if tf.io.gfile.exists(best_path):
            self.best_miou = read_json(best_path)["miou"]
        return int(self.step.numpy())

    def train(self, evaluate_fn=None):
        """Runs to `train_config.total_steps`; returns the last evaluation metrics (or None).

        A SIGTERM (preemption) makes it save `ckpt-<step>` at the next step boundary, set
        `self.preempted` and return None early (on every worker at the same step); rerunning resumes
        there. A non-chief worker's temporary checkpoint directory is removed on the way out.

        Args:
            evaluate_fn: callable(model) -> metrics dict, or None for `self.evaluate`.
        """
        watcher = PreemptionWatcher(self.strategy)
        try:
            with watcher:
                return self._train(evaluate_fn, watcher)
        finally:
            if not self.is_chief and tf.io.gfile.exists(self._save_dir):
                tf.io.gfile.rmtree(self._save_dir)

    def _resumes(self):
        """Whether training continues from a `ckpt-N` in the run directory rather than starting afresh."""
        config = self.train_config
        return config.restore_checkpoint and bool(recorded_checkpoints(config.checkpoint_dir))

    def _check_preset_input_normalization(self):
        """Refuses to start from a preset's weights with inputs scaled otherwise than they were trained on.

        Only when the preset's weights are the starting point: a resumed run restores weights already trained
        with the run's normalisation, `init_weights_path` is taken to replace the preset's weights (weights of
        another backbone load nothing into it: then the check is not made), and evaluation or export of a run
        never gets here.
        """
        config, train = self.model_config, self.train_config
        expected = preset_input_normalization(config.backbone, config.backbone_preset_dir)
        if expected is None or expected == config.input_normalization or train.init_weights_path:
            return
        if self._resumes():
            return
        if config.backbone.startswith("keras_cv:"):
            why = (
                "is a keras-cv preset saved with include_rescaling=True: its weights were trained on images divided "
                "by 255 inside the backbone. hfgd_tf builds keras-cv backbones without that layer and normalises "
                "inputs in the segmenter"
            )
        else:
            why = f"is a keras-hub preset whose image converter gives its backbone {expected!r} inputs"
        raise ValueError(
            f"--backbone_preset_dir={config.backbone_preset_dir!r} {why}, so give --input_normalization={expected} "
            f"(ModelConfig.input_normalization; now {config.input_normalization!r})"
        )

    def _check_resumed_model(self):
        """Refuses to resume a run directory whose checkpoints belong to another model configuration.

        Otherwise the restore fails on a tensor shape deep inside TensorFlow, or the run config is
        overwritten with one that no longer describes the checkpoints (e.g. a default that changed
        between versions, such as `upsampler_num_channels`).
        """
        config = self.train_config
        if not self._resumes():
            return
        if not tf.io.gfile.exists(os.path.join(config.checkpoint_dir, checkpoints.RUN_CONFIG)):
            return
        stored = checkpoints.read_run_config(config.checkpoint_dir)[0]
        # Initial weights do not matter on resume: the checkpoint replaces them.
        ignored = {"backbone_weights_path"}
        differences = [
            f"{field.name}: the run has {getattr(stored, field.name)!r}, now {getattr(self.model_config, field.name)!r}"
            for field in dataclasses.fields(stored)
            if field.name not in ignored and getattr(stored, field.name) != getattr(self.model_config, field.name)
        ]
        # The data position of a resumed run is counted in global batches of micro-batches.
        stored_train = read_json(os.path.join(config.checkpoint_dir, checkpoints.RUN_CONFIG)).get("train", {})
        differences += [
            f"{name}: the run has {stored_train[name]!r}, now {getattr(config, name)!r}"
            for name in ("batch_size", "accumulation_steps")
            if name in stored_train and stored_train[name] != getattr(config, name)
        ]
        if differences:
            names = [d.split(":")[0] for d in differences]
            stored_values = {**stored_train, **dataclasses.asdict(stored)}
            flags = " ".join(f"--{n}={_flag_value(stored_values[n])}" for n in names)
            raise ValueError(
                f"{config.checkpoint_dir!r} holds checkpoints of another model or batch ({'; '.join(differences)}). Resume with "
                f"the run's settings ({flags}) or train into a new --checkpoint_dir"
            )

    def _train(self, evaluate_fn, watcher):
        config = self.train_config
        self._check_resumed_model()
        if self.is_chief:
            checkpoints.write_run_config(
                config.checkpoint_dir,
                model=self.model_config,
                data=self.data_config,
                optimizer=self.optimizer_config,
                train=self.train_config,
                eval=self.eval_config,
            )
        start_step = self.restore()
        if start_step >= config.total_steps:
            logging.info("Nothing to do: step %d >= total steps %d", start_step, config.total_steps)
            return None
        iterator = self.distributed_iterator(start_step)
        train_step = self.make_train_step()
        if self.is_chief:
            writer = tf.summary.create_file_writer(os.path.join(config.checkpoint_dir, "logs", "train"))
        else:
            writer = tf.summary.create_noop_writer()
        evaluate_fn = evaluate_fn or self.evaluate
        if self.is_chief:
            logging.info("Training run\n%s", run_banner(self, start_step))
        else:
            resolver = getattr(self.strategy, "cluster_resolver", None)
            task_id = getattr(resolver, "task_id", None)
            logging.info(
                "Worker %s of a %d-worker run; the chief logs the run",
                "?" if task_id is None else task_id,
                num_workers(self.strategy),
            )
        with contextlib.ExitStack() as stack:
            bar = None
            if config.training_progress_bar:
                import tqdm

                stack.enter_context(logs_above_progress_bar(tqdm.tqdm))
                bar = tqdm.tqdm(total=config.total_steps, initial=start_step, unit="step", dynamic_ncols=True)
            return self._train_loop(start_step, iterator, train_step, writer, evaluate_fn, watcher, bar)

    def _train_loop(self, start_step, iterator, train_step, writer, evaluate_fn, watcher, bar):
        config = self.train_config
        metrics, window_start, window_steps = None, time.time(), 0
        step = start_step
        self._steps_run.assign(start_step)
        while step < config.total_steps:
            try:
                # No host read of the outputs here: the step is dispatched and the loop goes on.
                outputs = train_step(iterator)
            except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
                raise_if_corrupt_record(self.data_config, self.data_config.train_split, error)
                raise
            step += 1
            window_steps += 1
            self.last_step_outputs = outputs
            if bar is not None:
                bar.update(1)
            boundary = step % config.epoch_steps == 0 or step == config.total_steps
            if step % config.log_every_steps == 0 or boundary:
                try:
                    self.check_health()
                except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
                    raise_if_corrupt_record(self.data_config, self.data_config.train_split, error)
                    raise
            # The first step is logged too (with its time: tracing included), so a run shows life at once.
            first = step == start_step + 1
            if first or step % config.log_every_steps == 0 or step == config.total_steps:
                losses = {k: float(v) for k, v in outputs.items() if k not in STEP_STATISTICS}
                if bar is not None:
                    bar.set_postfix(loss=f"{losses['total']:.4f}")
                elapsed = time.time() - window_start
                rate = window_steps / max(elapsed, 1e-9)
                eta = (config.total_steps - step) / max(rate, 1e-9)
                lr = float(self.optimizer.learning_rate)
                logging.info(
                    "step %d/%d  %s  grad norm %.4g  lr %.5f  %.2f steps/s  ETA %s",
                    step,
                    config.total_steps,
                    "  ".join(f"{k} {v:.4f}" for k, v in losses.items()),
                    float(outputs["gradient_norm"]),
                    lr,
                    rate,
                    time.strftime("%H:%M:%S", time.gmtime(eta)),
                )
                if first:
                    logging.info("First step took %.1f s (tracing the step function included)", elapsed)
                with writer.as_default(step=step):
                    for name, value in losses.items():
                        tf.summary.scalar(f"loss/{name}", value)
                    tf.summary.scalar("gradient_norm", outputs["gradient_norm"])
                    tf.summary.scalar("learning_rate", lr)
                    tf.summary.scalar("steps_per_second", rate)
                    if self._loss_scale_optimizer is not None:
                        tf.summary.scalar("loss_scale", self._loss_scale_optimizer.dynamic_scale)
                window_start, window_steps = time.time(), 0
            if boundary:
                self.save_checkpoint(step)
                if config.evaluate_every_epoch:
                    metrics = evaluate_fn(self.model)
                    self._record_evaluation(metrics, step, writer)
            # (The same condition on every worker: with several, stop_requested is a collective.)
            if step < config.total_steps and watcher.stop_requested():
                if step % config.epoch_steps:
                    self.check_health()  # a step that went non-finite since the last check is never saved
                    self.save_checkpoint(step)
                self.preempted, metrics = True, None
                logging.warning("Preempted: stopped at step %d after saving its checkpoint; rerun to resume", step)
                break
        if bar is not None:
            bar.close()
        return metrics

    def evaluate(self, model=None, max_batches=None):
        """Evaluates on the eval split with `eval_config`; returns the metrics dict."""
        info = self.data_config.info
        dataset = build_distributed_eval_dataset(self.strategy, self.data_config, self.eval_config.eval_batch_size)
        return evaluate(
            model or self.model,
            dataset,
            info.num_classes,
            info.ignore_label,
            self.eval_config,
            strategy=self.strategy,
            class_names=info.class_names,
            max_batches=max_batches,
            jit_compile=self.train_config.jit_compile,
        )

    def _record_evaluation(self, metrics, step, writer):
        logging.info(
            "Evaluation at step %d (%d images):\n%s", step, metrics["num_images"], format_metrics_table(metrics)
        )
        with writer.as_default(step=step):
            tf.summary.scalar("eval/miou", metrics["miou"])
            tf.summary.scalar("eval/pixel_accuracy", metrics["pixel_accuracy"])
        if metrics["miou"] > self.best_miou:
            self.best_miou = metrics["miou"]
            if not self.is_chief:
                return
            best_dir = os.path.join(self.train_config.checkpoint_dir, checkpoints.BEST_DIR)
            tf.io.gfile.makedirs(best_dir)
            weights = os.path.join(best_dir, checkpoints.BEST_WEIGHTS)
            # Keras requires the .weights.h5 suffix, so the temporary name keeps it.
            temporary = os.path.join(best_dir, "incomplete." + checkpoints.BEST_WEIGHTS)
            save_weights_by_name(self.model, temporary)
            tf.io.gfile.rename(temporary, weights, overwrite=True)
            summary = {k: v for k, v in metrics.items() if k != "confusion_matrix"}
            write_json_atomic(os.path.join(best_dir, "metrics.json"), {**summary, "step": step})
            logging.info("New best mIoU %.2f%%: weights in %s", 100 * metrics["miou"], weights)
