"""Scores an exported model on a split with the same confusion-matrix mIoU as `hfgd_tf.evaluation.evaluate`."""

import time

import numpy as np

from hfgd_tf.evaluation.metrics import confusion_matrix, segmentation_metrics
from hfgd_tf.export.saved_model import read_export_inference


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
    """
    total = np.zeros((num_classes, num_classes), np.int64)
    num_images, start = 0, time.time()
    for index, (images, labels) in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        # Decoded pixels are integers in [0, 255]: the cast is exact.
        pixels = np.clip(np.round(np.asarray(images)), 0, 255).astype(np.uint8)
        class_ids = exported.predict(pixels, resize=True)["class_ids"]
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
