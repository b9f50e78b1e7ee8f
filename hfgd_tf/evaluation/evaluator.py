"""Evaluation over a whole split under a `tf.distribute` strategy."""

import time

import numpy as np
import tensorflow as tf
from absl import logging

from hfgd_tf.evaluation.inference import predict_logits
from hfgd_tf.files import write_json_atomic
from hfgd_tf.evaluation.metrics import confusion_matrix, segmentation_metrics


def evaluate(model, dataset, num_classes, ignore_label, eval_config, strategy=None, class_names=None, max_batches=None):
    """Accumulates one confusion matrix over `dataset` and returns the metrics with the protocol.

    Args:
        model: a segmenter returning `{"logits": [B, H, W, K]}`.
        dataset: `tf.data.Dataset` of `(images, labels)`, or a distributed dataset of `strategy`.
        num_classes: int. K.
        ignore_label: int.
        eval_config: `EvalConfig`.
        strategy: `tf.distribute.Strategy` or None (the default strategy).
        class_names: sequence of str or None.
        max_batches: int or None. Stop early (smoke tests).

    Returns:
        dict: `segmentation_metrics` plus `protocol`, `num_images`, `seconds`.
    """
    strategy = strategy or tf.distribute.get_strategy()

    def replica_step(images, labels):
        logits = predict_logits(model, images, eval_config)
        predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return confusion_matrix(labels, predictions, num_classes, ignore_label), tf.shape(images)[0]

    # No input signature: sliding windows need static sizes, so each new image size traces once.
    @tf.function
    def distributed_step(images, labels):
        matrix, count = strategy.run(replica_step, args=(images, labels))
        return (
            strategy.reduce(tf.distribute.ReduceOp.SUM, matrix, axis=None),
            strategy.reduce(tf.distribute.ReduceOp.SUM, count, axis=None),
        )

    total = np.zeros((num_classes, num_classes), np.int64)
    num_images, start = 0, time.time()
    for index, (images, labels) in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        matrix, count = distributed_step(images, labels)
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
