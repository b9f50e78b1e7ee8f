"""Confusion matrix and mIoU over a whole split (not averaged per image).

IoU_k = TP_k / (TP_k + FP_k + FN_k) = C[k, k] / (row_k + col_k - C[k, k]) with C[true, predicted].
Classes absent from both labels and predictions have no IoU; they are left out of the mean and
reported as NaN (`miou` averages the classes that occur, as the authors' code does).
"""

import numpy as np
import tensorflow as tf


def confusion_matrix(labels, predictions, num_classes, ignore_label):
    """Confusion matrix of one batch, ignored pixels weighted 0.

    Args:
        labels: int `[...]`. Ground truth train ids.
        predictions: int `[...]`, same shape.
        num_classes: int. K.
        ignore_label: int. Pixels with this label (or outside [0, K)) do not count.

    Returns:
        int64 `[K, K]`, rows = ground truth, columns = prediction.
    """
    labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
    predictions = tf.reshape(tf.cast(predictions, tf.int64), [-1])
    valid = (labels != ignore_label) & (labels >= 0) & (labels < num_classes)
    labels = tf.boolean_mask(labels, valid)
    predictions = tf.clip_by_value(tf.boolean_mask(predictions, valid), 0, num_classes - 1)
    indices = labels * num_classes + predictions
    counts = tf.math.bincount(
        indices, minlength=num_classes * num_classes, maxlength=num_classes * num_classes, dtype=tf.int64
    )
    return tf.reshape(counts, [num_classes, num_classes])


def segmentation_metrics(matrix, class_names=None):
    """mIoU, per-class IoU and pixel accuracy from an accumulated confusion matrix.

    Args:
        matrix: int `[K, K]` array, rows = ground truth.
        class_names: sequence of K str or None.

    Returns:
        dict with `miou`, `pixel_accuracy`, `mean_class_accuracy`, `per_class_iou` (name -> IoU or
        NaN for classes with no pixels in labels or predictions), `num_pixels`.
    """
    matrix = np.asarray(matrix, np.float64)
    num_classes = matrix.shape[0]
    true_positive = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - true_positive
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, true_positive / union, np.nan)
        class_accuracy = np.where(matrix.sum(1) > 0, true_positive / matrix.sum(1), np.nan)
    names = list(class_names) if class_names is not None else [str(k) for k in range(num_classes)]
    total = matrix.sum()
    present = ~np.isnan(iou)
    return {
        "miou": float(np.mean(iou[present])) if present.any() else 0.0,
        "pixel_accuracy": float(true_positive.sum() / total) if total else 0.0,
        "mean_class_accuracy": float(np.nanmean(class_accuracy)) if (~np.isnan(class_accuracy)).any() else 0.0,
        "per_class_iou": {name: float(value) for name, value in zip(names, iou, strict=True)},
        "num_pixels": int(total),
    }


def format_metrics_table(metrics):
    """A plain-text table of per-class IoU followed by the summary numbers."""
    lines = [f"{'class':<20} {'IoU':>8}"]
    for name, value in metrics["per_class_iou"].items():
        lines.append(f"{name:<20} {'n/a' if np.isnan(value) else f'{100 * value:7.2f}':>8}")
    lines.append(f"{'mIoU':<20} {100 * metrics['miou']:8.2f}")
    lines.append(f"{'pixel accuracy':<20} {100 * metrics['pixel_accuracy']:8.2f}")
    return "\n".join(lines)
