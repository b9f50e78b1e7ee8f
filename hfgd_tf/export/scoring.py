"""Scores an exported model on a split with the same confusion-matrix mIoU as `hfgd_tf.evaluation.evaluate`."""

import time

import numpy as np

from hfgd_tf.evaluation.metrics import confusion_matrix, segmentation_metrics
from hfgd_tf.export.saved_model import read_export_inference, read_export_labels


def check_export_classes(exported, num_classes, class_names=None, num_predicted=None):
    """Raises ValueError, naming the export, when it predicts other classes than the dataset scored has:
    another class count (its `assets/labels.json`, or `num_predicted`, the channels of its logits), or, with
    the same count, other class names. Its class ids would otherwise be scored against the wrong labels (a
    wrong mIoU in silence) or overflow the confusion matrix.

    Args:
        exported: `hfgd_tf.export.runtimes.ExportedModel`.
        num_classes: int. The dataset's class count.
        class_names: sequence of str or None. The dataset's class names (not compared when None or empty).
        num_predicted: int or None. The channels of the export's logits, once it has predicted.
    """
    names, _ = read_export_labels(exported.export_dir)
    advice = "score it on the dataset it was trained on (its run's --checkpoint_dir), or export this run"
    for count, where in (
        (len(names) if names else None, "its assets/labels.json names"),
        (num_predicted, "its logits have"),
    ):
        if count is not None and count != num_classes:
            raise ValueError(
                f"{exported.export_dir!r} predicts {count} classes ({where} {count}), but the dataset evaluated "
                f"has {num_classes}: {advice}"
            )
    if names and class_names and list(names) != list(class_names):
        differing = next(i for i, (a, b) in enumerate(zip(names, class_names)) if a != b)
        raise ValueError(
            f"{exported.export_dir!r} predicts other classes than the dataset evaluated (class {differing} is "
            f"{names[differing]!r} in the export, {class_names[differing]!r} in the dataset): {advice}"
        )


def evaluate_exported(exported, dataset, num_classes, ignore_label, class_names=None, max_batches=None):
    """Accumulates one confusion matrix of an export's `class_ids` over `dataset`.

    A fixed-size export (LiteRT) gets each image resized to its size and its logits resized back
    (`ExportedModel.predict(..., resize=True)`): the protocol records it.

    Args:
        exported: `hfgd_tf.export.runtimes.ExportedModel`.
        dataset: iterable of `(images float32 [B, H, W, 3] in [0, 255], labels int32 [B, H, W])`
            (`hfgd_tf.data.pipeline.build_eval_dataset`).
        num_classes, ignore_label: int.
        class_names: sequence of str or None.
        max_batches: int or None. Stop early (smoke tests).

    Returns:
        dict: `segmentation_metrics` plus `protocol` (the export's scales and flip, format, quantization and
        input size), `num_images`, `seconds`, `confusion_matrix`.

    Raises:
        ValueError: the export predicts other classes than `num_classes` / `class_names` (`check_export_classes`).
    """
    check_export_classes(exported, num_classes, class_names)
    total = np.zeros((num_classes, num_classes), np.int64)
    num_images, start = 0, time.time()
    for index, (images, labels) in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        # Decoded pixels are integers in [0, 255]: the cast is exact.
        pixels = np.clip(np.round(np.asarray(images)), 0, 255).astype(np.uint8)
        outputs = exported.predict(pixels, resize=True)
        if index == 0:
            check_export_classes(exported, num_classes, num_predicted=outputs["logits"].shape[-1])
        class_ids = outputs["class_ids"]
        total += confusion_matrix(labels, class_ids, num_classes, ignore_label).numpy()
        num_images += len(pixels)
    baked = read_export_inference(exported.export_dir) or {"eval_scales": [1.0], "flip": False}
    metrics = segmentation_metrics(total, class_names)
    metrics.update(
        protocol={
            "scales": baked["eval_scales"],
            "flip": baked["flip"],
            "sliding_window": None,
            "scored_at": "original label resolution",
            "exported": {
                "format": exported.format,
                "quantize": exported.quantize,
                "input_size": list(exported.input_size) if exported.input_size else None,
            },
        },
        num_images=num_images,
        seconds=round(time.time() - start, 3),
        confusion_matrix=total.tolist(),
    )
    return metrics
