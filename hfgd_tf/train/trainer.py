"""The training loop: tf.distribute custom loop with checkpoint/resume, evaluation and TensorBoard."""

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from hfgd_tf.backbones.weights import load_weights_by_name, save_weights_by_name
from hfgd_tf.data.converter import class_weights_from_manifest
from hfgd_tf.data.pipeline import build_eval_dataset, build_train_dataset
from hfgd_tf.data.tfrecord import read_manifest
from hfgd_tf.evaluation.evaluator import evaluate
from hfgd_tf.evaluation.metrics import format_metrics_table
from hfgd_tf.files import write_json_atomic
from hfgd_tf.models import build_model
from hfgd_tf.train import checkpoints
from hfgd_tf.train.distribute import create_strategy
from hfgd_tf.train.losses import SegmentationLoss, l2_weight_decay, supervised_pixel_count
from hfgd_tf.train.optimizers import build_optimizer


class NonFiniteLossError(RuntimeError):
    """Raised when the loss becomes NaN/Inf; the last good checkpoint is left untouched."""


class Trainer:
    """Trains a segmenter from configs.

    Loss = loss_up + high_loss_weight * loss_high (+ L2 on kernels for SGD). Each loss is the mean
    per-pixel loss (`train_config.loss`: cross entropy, OHEM or focal; see `SegmentationLoss`) over
    the supervised (OHEM: kept) pixels of the *global* batch: every replica sums its pixels' losses and
    divides by the global pixel count (an all-reduce), so one step gives the same update on 1 or N
    replicas. The data pipeline is seeded per example and resumes by skipping the
    batches already consumed, so killing and rerunning continues the same run.

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
        if train_config.op_determinism:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(train_config.seed)
        self.strategy = strategy or create_strategy(train_config.strategy, train_config.tpu)
        if train_config.batch_size % self.strategy.num_replicas_in_sync:
            raise ValueError(
                f"TrainConfig.batch_size={train_config.batch_size} is not divisible by the "
                f"{self.strategy.num_replicas_in_sync} replicas"
            )
        with self.strategy.scope():
            self.model = build_model(model_config, dtype_policy=train_config.dtype_policy)
            self.optimizer = build_optimizer(optimizer_config, train_config.total_steps, train_config.mixed_precision)
            # Build slots inside the scope before the first distributed step (SPEC §4).
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
            self.checkpoint = checkpoints.checkpoint_state(self.model, self.optimizer, self.step)
            if train_config.init_weights_path:
                # Fine-tuning: weights whose path and shape match load; the rest (e.g. a classifier for
                # another number of classes) keep their initial values, listed in a warning.
                if not os.path.isfile(train_config.init_weights_path):
                    raise ValueError(f"TrainConfig.init_weights_path not found: {train_config.init_weights_path!r}")
                load_weights_by_name(self.model, train_config.init_weights_path, skip_mismatch=True)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, train_config.checkpoint_dir, max_to_keep=train_config.max_checkpoints_to_keep
        )
        self.best_miou = -1.0
        self.class_weights = self._class_weights()
        self.loss = SegmentationLoss(
            train_config.loss,
            data_config.info.ignore_label,
            self.class_weights,
            ohem_threshold=train_config.ohem_threshold,
            ohem_min_kept=train_config.ohem_min_kept,
            focal_gamma=train_config.focal_gamma,
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
        """Forward, losses and gradients of one replica; XLA-compiled with `jit_compile`.

        Every loss term is divided by `global_count`, the supervised pixels of the global batch, so
        that the gradients summed over replicas are those of the global-batch mean.
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
                losses["weight_decay"] = decay / num_replicas
                total += losses["weight_decay"]
            losses["total"] = total
            scaled = self.optimizer.scale_loss(total)
        return losses, tape.gradient(scaled, self.model.trainable_variables)

    def _replica_step(self, images, labels):
        # The global count needs a cross-replica sum, which stays outside the XLA-compiled part.
        count = supervised_pixel_count(
            labels, self.model_config.num_classes, self.data_config.info.ignore_label, self.class_weights
        )
        global_count = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, count)
        losses, gradients = self._gradient_fn(images, labels, global_count)
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))
        return losses

    def distributed_iterator(self, start_step=0):
        """Iterator over the distributed training dataset, positioned at `start_step`."""
        dataset = self.strategy.distribute_datasets_from_function(
            lambda context: build_train_dataset(
                self.data_config, self.train_config.batch_size, context, initial_step=start_step
            )
        )
        return iter(dataset)

    def make_train_step(self):
        """A `tf.function(iterator) -> losses` running one step on every replica (losses summed)."""

        def train_step(iterator):
            images, labels = next(iterator)
            per_replica = self.strategy.run(self._replica_step, args=(images, labels))
            return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

        return tf.function(train_step)

    # === Loop ===
    def restore(self):
        """Restores the latest checkpoint if asked and present; returns the step to start at."""
        if self.train_config.restore_checkpoint and self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            logging.info("Resumed from %s at step %d", self.manager.latest_checkpoint, int(self.step.numpy()))
        best_path = os.path.join(self.train_config.checkpoint_dir, checkpoints.BEST_DIR, "metrics.json")
        if os.path.isfile(best_path):
            with open(best_path) as handle:
                self.best_miou = json.load(handle)["miou"]
        return int(self.step.numpy())

    def train(self, evaluate_fn=None):
        """Runs to `train_config.total_steps`; returns the last evaluation metrics (or None).

        Args:
            evaluate_fn: callable(model) -> metrics dict, or None for `self.evaluate`.
        """
        config = self.train_config
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
        writer = tf.summary.create_file_writer(os.path.join(config.checkpoint_dir, "logs", "train"))
        evaluate_fn = evaluate_fn or self.evaluate
        metrics, window_start, window_steps = None, time.time(), 0
        step = start_step
        bar = None
        if config.training_progress_bar:
            import tqdm

            bar = tqdm.tqdm(total=config.total_steps, initial=start_step, unit="step", dynamic_ncols=True)
        while step < config.total_steps:
            losses = train_step(iterator)
            step += 1
            window_steps += 1
            total = float(losses["total"])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total:.4f}")
            if not math.isfinite(total):
                raise NonFiniteLossError(
                    f"Loss is {total} at step {step}; stopped without saving. The last good checkpoint is "
                    f"{self.manager.latest_checkpoint!r}. Try a lower --initial_lr or --gradient_clip_norm."
                )
            if step % config.log_every_steps == 0 or step == config.total_steps:
                elapsed = time.time() - window_start
                rate = window_steps / max(elapsed, 1e-9)
                eta = (config.total_steps - step) / max(rate, 1e-9)
                lr = float(self.optimizer.learning_rate)
                logging.info(
                    "step %d/%d  %s  lr %.5f  %.2f steps/s  ETA %s",
                    step,
                    config.total_steps,
                    "  ".join(f"{k} {float(v):.4f}" for k, v in losses.items()),
                    lr,
                    rate,
                    time.strftime("%H:%M:%S", time.gmtime(eta)),
                )
                with writer.as_default(step=step):
                    for name, value in losses.items():
                        tf.summary.scalar(f"loss/{name}", value)
                    tf.summary.scalar("learning_rate", lr)
                    tf.summary.scalar("steps_per_second", rate)
                window_start, window_steps = time.time(), 0
            if step % config.epoch_steps == 0 or step == config.total_steps:
                self.step.assign(step)
                path = self.manager.save(checkpoint_number=step)
                logging.info("Saved checkpoint %s", path)
                if config.evaluate_every_epoch:
                    metrics = evaluate_fn(self.model)
                    self._record_evaluation(metrics, step, writer)
        if bar is not None:
            bar.close()
        return metrics

    def evaluate(self, model=None, max_batches=None):
        """Evaluates on the eval split with `eval_config`; returns the metrics dict."""
        info = self.data_config.info
        dataset = self.strategy.distribute_datasets_from_function(
            lambda context: build_eval_dataset(self.data_config, self.eval_config.eval_batch_size, context)
        )
        return evaluate(
            model or self.model,
            dataset,
            info.num_classes,
            info.ignore_label,
            self.eval_config,
            strategy=self.strategy,
            class_names=info.class_names,
            max_batches=max_batches,
        )

    def _record_evaluation(self, metrics, step, writer):
        logging.info("Evaluation at step %d (%d images):\n%s", step, metrics["num_images"], format_metrics_table(metrics))
        with writer.as_default(step=step):
            tf.summary.scalar("eval/miou", metrics["miou"])
            tf.summary.scalar("eval/pixel_accuracy", metrics["pixel_accuracy"])
        if metrics["miou"] > self.best_miou:
            self.best_miou = metrics["miou"]
            best_dir = os.path.join(self.train_config.checkpoint_dir, checkpoints.BEST_DIR)
            os.makedirs(best_dir, exist_ok=True)
            weights = os.path.join(best_dir, checkpoints.BEST_WEIGHTS)
            # Keras requires the .weights.h5 suffix, so the temporary name keeps it.
            temporary = os.path.join(best_dir, "incomplete." + checkpoints.BEST_WEIGHTS)
            save_weights_by_name(self.model, temporary)
            os.replace(temporary, weights)
            summary = {k: v for k, v in metrics.items() if k != "confusion_matrix"}
            write_json_atomic(os.path.join(best_dir, "metrics.json"), {**summary, "step": step})
            logging.info("New best mIoU %.4f: weights in %s", metrics["miou"], weights)
