"""The Keras model every export format is written from: uint8 images in, class ids, probabilities and logits out.

Keras's own exporters (`model.export(format=...)`, `keras.export.ExportArchive`) write any Keras model's
`call`; what a segmentation deployment needs on top is in this one model, so that every format carries the
same function: the cast of uint8 pixels (the segmenter normalises its input itself), the inference protocol
(scales and flip, through `predict_logits`), and the argmax and softmax that a caller would otherwise have to
write for each runtime.
"""

import keras
import tensorflow as tf

from hfgd_tf.evaluation.inference import predict_logits

# The outputs of every export, in this order (formats that lose the names keep the order).
OUTPUT_NAMES = ("class_ids", "probabilities", "logits")


class SegmentationServingModel(keras.Model):
    """Wraps a segmenter for export.

    Args:
        segmenter: a Keras segmenter returning `{"logits": [B, H, W, K]}` for float images in [0, 255].
        eval_config: `EvalConfig` or None (single scale, no flip). Its scales and flip are part of `call`;
            a sliding window is not (it needs static sizes), and is refused.

    Call arguments:
        images: uint8 `[B, H, W, 3]`.

    Returns:
        dict: `class_ids` int32 `[B, H, W]`, `probabilities` float32 `[B, H, W, K]` and `logits` float32
        `[B, H, W, K]` (the averaged logits of the protocol, for callers that combine predictions).
    """

    def __init__(self, segmenter, eval_config=None, **kwargs):
        super().__init__(**kwargs)
        if eval_config is not None and eval_config.sliding_window_height:
            raise ValueError(
                "Sliding-window inference cannot be exported (its windows need static sizes); export without "
                "--sliding_window_height/--sliding_window_width and slide the window in the caller"
            )
        self.segmenter = segmenter
        self.eval_config = eval_config
        # No weights of its own: built when the segmenter is (Keras's exporters only track built layers).
        self.built = segmenter.built

    def call(self, images):
        logits = predict_logits(self.segmenter, tf.cast(images, tf.float32), self.eval_config)
        return {
            "class_ids": tf.argmax(logits, axis=-1, output_type=tf.int32),
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "logits": logits,
        }
