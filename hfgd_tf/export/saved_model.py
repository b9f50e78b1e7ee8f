"""SavedModel export: uint8 images of any size in, class ids and probabilities out.

The serving module needs only TensorFlow to load (`tf.saved_model.load`), with preprocessing (cast
and the model's input normalisation) inside the graph.
"""

import json
import os

import tensorflow as tf

from hfgd_tf.evaluation.config import EvalConfig
from hfgd_tf.evaluation.inference import predict_logits
from hfgd_tf.files import read_json, rename_directory, write_json_atomic

SERVING_SIGNATURE = "serving_default"
LABELS_FILE = "labels.json"
SOURCE_FILE = "source.json"
# The inference protocol baked into the graph, so that a caller asking for another one can be told.
INFERENCE_FILE = "inference.json"


class SegmentationServingModule(tf.Module):
    """Wraps a segmenter for serving.

    Call arguments (signature `serving_default`):
        images: uint8 `[B, H, W, 3]`, any B, H, W.

    Returns:
        dict: `class_ids` int32 `[B, H, W]`, `probabilities` float32 `[B, H, W, K]`.
    """

    def __init__(self, model, eval_config=None, name="hfgd_serving"):
        super().__init__(name=name)
        self.model = model
        self.eval_config = eval_config

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def serve(self, images):
        logits = predict_logits(self.model, tf.cast(images, tf.float32), self.eval_config)
        return {
            "class_ids": tf.argmax(logits, axis=-1, output_type=tf.int32),
            "probabilities": tf.nn.softmax(logits, axis=-1),
        }


def export_saved_model(model, export_dir, class_names=None, colormap=None, eval_config=None, source=None):
    """Writes a SavedModel with signature `serving_default` and a `labels.json` beside it.

    Sliding-window inference is not exported (it needs static sizes); scales and flip are.

    Args:
        model: a segmenter returning `{"logits": ...}`.
        export_dir: str. Created; an existing export is replaced only after the new one is complete.
        class_names, colormap: sequences written to `export_dir/assets/labels.json`.
        eval_config: `EvalConfig` or None (single scale, no flip). Its scales and flip are baked into the
            graph and recorded in `export_dir/assets/inference.json` (`{"eval_scales": [...], "flip": ...}`).
        source: dict or None. Where the weights came from (`{"checkpoint_dir": ..., "checkpoint": ...}` from
            scripts/export.py), written to `export_dir/assets/source.json` so that a served model names its run
            and so that predict.py can accept an experiment flagfile's --checkpoint_dir beside --saved_model.

    Returns:
        str: `export_dir`.
    """
    if eval_config is not None and eval_config.sliding_window_height:
        raise ValueError("Sliding-window inference cannot be exported (dynamic sizes); export without it")
    module = SegmentationServingModule(model, eval_config)
    # Hidden siblings whose names do not start with the export's name (TF's ram:// filesystem lists a
    # directory by name prefix).
    parent, name = os.path.split(export_dir.rstrip("/"))
    temporary, old = os.path.join(parent, f".{name}.incomplete"), os.path.join(parent, f".{name}.old")
    tf.saved_model.save(module, temporary, signatures={SERVING_SIGNATURE: module.serve})
    # tf.io.gfile throughout: `export_dir` may be gs://... (or ram:// in tests).
    assets = os.path.join(temporary, "assets")
    labels = {"class_names": list(class_names or []), "colormap": [list(c) for c in (colormap or [])]}
    write_json_atomic(os.path.join(assets, LABELS_FILE), labels)
    protocol = eval_config or EvalConfig()
    inference = {"eval_scales": list(protocol.eval_scales), "flip": protocol.flip}
    write_json_atomic(os.path.join(assets, INFERENCE_FILE), inference)
    if source is not None:
        write_json_atomic(os.path.join(assets, SOURCE_FILE), dict(source))
    if tf.io.gfile.isdir(export_dir):
        rename_directory(export_dir, old)
        rename_directory(temporary, export_dir)
        tf.io.gfile.rmtree(old)
    else:
        rename_directory(temporary, export_dir)
    return export_dir


def read_export_labels(export_dir):
    """Returns `(class_names, colormap)` stored with an export (empty lists when missing).

    Raises:
        ValueError: naming the file, when it is not a JSON object with a list of names and a list of
            `[r, g, b]` colours (integers in 0..255).
    """
    record = _read_record(export_dir, LABELS_FILE)
    if record is None:
        return [], []
    path, labels = record
    names = labels.get("class_names") if isinstance(labels, dict) else None
    colours = labels.get("colormap") if isinstance(labels, dict) else None
    if (
        not isinstance(names, list)
        or not all(isinstance(name, str) for name in names)
        or not isinstance(colours, list)
        or not all(_is_colour(colour) for colour in colours)
        or len(colours) > 256
    ):
        raise ValueError(
            f"{path!r} must hold {{\"class_names\": [strings], \"colormap\": [[r, g, b] in 0..255, ...]}} "
            "(at most 256 colours); export the run again"
        )
    return names, [tuple(colour) for colour in colours]


def _is_colour(colour):
    # bool is an int in Python; a channel must be an integer in 0..255.
    return (
        isinstance(colour, list)
        and len(colour) == 3
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in colour)
    )


def _read_record(export_dir, name):
    """`(path, content)` of the JSON record `assets/<name>` of an export, or None when there is no such file.

    Raises:
        ValueError: naming the file, when it is not JSON.
    """
    path = os.path.join(export_dir, "assets", name)
    if not tf.io.gfile.exists(path):
        return None
    try:
        return path, read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path!r} is not JSON ({error}); export the run again") from None


def read_export_source(export_dir):
    """Returns the `source` dict stored with an export, or None (exports written before it was recorded).

    Raises:
        ValueError: naming the file, when it is not a JSON object with `checkpoint_dir` and `checkpoint`.
    """
    record = _read_record(export_dir, SOURCE_FILE)
    if record is None:
        return None
    path, source = record
    if not isinstance(source, dict) or not {"checkpoint_dir", "checkpoint"} <= set(source):
        raise ValueError(f"{path!r} must hold {{\"checkpoint_dir\": ..., \"checkpoint\": ...}}; export the run again")
    return source


def read_export_inference(export_dir):
    """Returns the protocol baked into an export, `{"eval_scales": [float, ...], "flip": bool}`, or None
    (exports written before it was recorded).

    Raises:
        ValueError: naming the file, when it does not hold that.
    """
    record = _read_record(export_dir, INFERENCE_FILE)
    if record is None:
        return None
    path, inference = record
    scales = inference.get("eval_scales") if isinstance(inference, dict) else None
    if (
        not isinstance(scales, list)
        or not scales
        # bool is an int in Python; a scale must be a positive number.
        or not all(isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0 for scale in scales)
        or not isinstance(inference.get("flip"), bool)
    ):
        raise ValueError(
            f"{path!r} must hold {{\"eval_scales\": [positive numbers], \"flip\": true|false}}; export the run again"
        )
    return {"eval_scales": [float(scale) for scale in inference["eval_scales"]], "flip": inference["flip"]}
