"""Evaluation over a whole split under a `tf.distribute` strategy."""

import math
import time

import numpy as np
import tensorflow as tf
from absl import logging

from hfgd_tf.data.pipeline import build_eval_dataset, count_records
from hfgd_tf.evaluation.inference import predict_logits
from hfgd_tf.evaluation.metrics import confusion_matrix, segmentation_metrics
from hfgd_tf.files import write_json_atomic


def global_eval_batch_size(eval_batch_size, num_replicas):
    """The global evaluation batch: `eval_batch_size`, or one image per replica when it is 0.

    Raises:
        ValueError: `eval_batch_size` is not a multiple of the number of replicas.
    """
    if eval_batch_size == 0:
        return num_replicas
    if eval_batch_size % num_replicas:
        raise ValueError(
            f"EvalConfig.eval_batch_size (--eval_batch_size) = {eval_batch_size} is the global evaluation batch and "
            f"must be a multiple of the {num_replicas} replicas; use a multiple of {num_replicas}, or 0 for one "
            "image per replica"
        )
    return eval_batch_size


def build_distributed_eval_dataset(strategy, data_config, eval_batch_size):
    """The eval split for `strategy`, the last batch padded so that every replica gets a full batch.

    Every replica gets `[per_replica_batch, H, W, ...]` at every step (static shapes, as TPUs need, and
    no empty batch on a replica when the split does not fill the last global batch). Padding repeats
    the pipeline's first image with an all-ignore label and `valid` 0, so it adds nothing to the
    confusion matrix or the image count.

    Args:
        strategy: `tf.distribute.Strategy`.
        data_config: `DataConfig`.
        eval_batch_size: int. Global batch (`EvalConfig.eval_batch_size`; 0: one image per replica).

    Returns:
        A distributed dataset of `(images [b, H, W, 3], labels [b, H, W], valid [b])` per replica.
    """
    batch_size = global_eval_batch_size(eval_batch_size, strategy.num_replicas_in_sync)
    num_records = count_records(data_config, data_config.eval_split)
    ignore_label = data_config.info.ignore_label

    def dataset_fn(context):
        per_replica = context.get_per_replica_batch_size(batch_size)
        pipelines, pipeline_id = context.num_input_pipelines, context.input_pipeline_id
        if num_records < pipelines:
            raise ValueError(f"The eval split has {num_records} records, fewer than the {pipelines} input pipelines")
        # Elements one step takes from this pipeline, and the steps every pipeline must run (the same
        # number on all hosts, set by the pipeline with the most records).
        step_elements = per_replica * (strategy.num_replicas_in_sync // pipelines)
        steps = math.ceil(math.ceil(num_records / pipelines) / step_elements)
        local_records = (num_records - pipeline_id + pipelines - 1) // pipelines
        # Batches of one image (per replica) from the shared pipeline, unbatched to single examples.
        images_labels = build_eval_dataset(data_config, context.num_replicas_in_sync, context).unbatch()
        real = images_labels.map(lambda image, label: (image, label, tf.constant(1, tf.int32)))
        padding = images_labels.take(1).map(
            lambda image, label: (
                image,
                tf.fill(tf.shape(label), tf.constant(ignore_label, label.dtype)),
                tf.constant(0, tf.int32),
            )
        )
        padded = real.concatenate(padding.repeat(steps * step_elements - local_records))
        return padded.batch(per_replica, drop_remainder=True)

    return strategy.distribute_datasets_from_function(dataset_fn)


def evaluate(
    model,
    dataset,
    num_classes,
    ignore_label,
    eval_config,
    strategy=None,
    class_names=None,
    max_batches=None,
    jit_compile=False,
):
    """Accumulates one confusion matrix over `dataset` and returns the metrics with the protocol.

    Args:
        model: a segmenter returning `{"logits": [B, H, W, K]}`.
        dataset: `tf.data.Dataset` of `(images, labels)` or `(images, labels, valid)`, or a distributed
            dataset of `strategy` (see `build_distributed_eval_dataset`). Examples with `valid` 0 are
            padding: they do not count (their labels must be the ignore label).
        num_classes: int. K.
        ignore_label: int.
        eval_config: `EvalConfig`.
        strategy: `tf.distribute.Strategy` or None (the default strategy).
        class_names: sequence of str or None.
        max_batches: int or None. Stop early (smoke tests).
        jit_compile: bool. XLA-compile each replica's prediction (`predict_logits` under the protocol);
            the batches have static shapes (the last one is padded), so it compiles once per image size.

    Returns:
        dict: `segmentation_metrics` plus `protocol`, `num_images`, `seconds`.
    """
    strategy = strategy or tf.distribute.get_strategy()

    def predict(images):
        return predict_logits(model, images, eval_config)

    if jit_compile:
        predict = tf.function(predict, jit_compile=True)

    def replica_step(images, labels, valid):
        logits = predict(images)
        predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
        # Padded examples: ignore label everywhere, and masked here as well.
        mask = tf.reshape(tf.cast(valid, tf.bool), [-1, 1, 1])
        labels = tf.where(mask, labels, tf.constant(ignore_label, labels.dtype))
        return confusion_matrix(labels, predictions, num_classes, ignore_label), tf.reduce_sum(valid)

    # No input signature: sliding windows need static sizes, so each new image size traces once.
    @tf.function
    def distributed_step(images, labels, valid):
        matrix, count = strategy.run(replica_step, args=(images, labels, valid))
        return (
            strategy.reduce(tf.distribute.ReduceOp.SUM, matrix, axis=None),
            strategy.reduce(tf.distribute.ReduceOp.SUM, count, axis=None),
        )

    total = np.zeros((num_classes, num_classes), np.int64)
    num_images, start = 0, time.time()
    for index, element in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        images, labels = element[:2]
        valid = element[2] if len(element) > 2 else tf.ones(tf.shape(images)[:1], tf.int32)
        matrix, count = distributed_step(images, labels, valid)
        total += matrix.numpy()
        num_images += int(count)
    metrics = segmentation_metrics(total, class_names)
    metrics.update(
        protocol=eval_config.protocol(),
        num_images=num_images,
        seconds=round(time.time() - start, 3),
        confusion_matrix=total.tolist(),
    )
    return metrics


def write_results(metrics, path, extra=None):
    """Writes the metrics (and `extra` facts such as the checkpoint) as JSON."""
    write_json_atomic(path, {**metrics, **(extra or {})})
    logging.info("Wrote evaluation results to %s", path)
    return path
