"""SavedModel export, and the JSON records that every export keeps in `<export_dir>/assets/`.

The SavedModel needs only TensorFlow to load (`tf.saved_model.load`), with preprocessing (cast and the
model's input normalisation) inside the graph. `hfgd_tf.export.formats` writes it (and the other formats)
with Keras's `ExportArchive`; the readers here read the records of any format's export directory.
"""

import json
import os

import tensorflow as tf

SERVING_SIGNATURE = "serving_default"
LABELS_FILE = "labels.json"
SOURCE_FILE = "source.json"
# The inference protocol baked into the graph, so that a caller asking for another one can be told.
INFERENCE_FILE = "inference.json"
# The format, quantization, input size and model file of the export.
EXPORT_FILE = "export.json"


def export_saved_model(model, export_dir, class_names=None, colormap=None, eval_config=None, source=None):
    """Writes a float32 SavedModel with signature `serving_default` (uint8 `images` `[B, H, W, 3]` of any size
    -> `class_ids` int32 `[B, H, W]`, `probabilities` and `logits` float32 `[B, H, W, K]`) and its records.

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
    from hfgd_tf.export.formats import export_model

    return export_model(
        model, export_dir, class_names=class_names, colormap=colormap, eval_config=eval_config, source=source
    )


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
            f'{path!r} must hold {{"class_names": [strings], "colormap": [[r, g, b] in 0..255, ...]}} '
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
        with tf.io.gfile.GFile(path, "r") as handle:
            return path, json.loads(handle.read())
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
        raise ValueError(f'{path!r} must hold {{"checkpoint_dir": ..., "checkpoint": ...}}; export the run again')
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
            f'{path!r} must hold {{"eval_scales": [positive numbers], "flip": true|false}}; export the run again'
        )
    return {"eval_scales": [float(scale) for scale in inference["eval_scales"]], "flip": inference["flip"]}


def read_export_format(export_dir):
    """Returns what `assets/export.json` records: `{"format", "quantize", "input_size" ([h, w] or None),
    "batch_size" (int or None), "model_file"}`. A SavedModel written before the record reads as a float32
    SavedModel of any size.

    Raises:
        ValueError: naming the directory or the file, when `export_dir` holds no export, or the record does
            not hold that.
    """
    from hfgd_tf.export.formats import FORMATS, MODEL_FILES

    record = _read_record(export_dir, EXPORT_FILE)
    if record is None:
        if tf.io.gfile.exists(os.path.join(export_dir, "saved_model.pb")):
            return {
                "format": "saved_model",
                "quantize": "none",
                "input_size": None,
                "batch_size": None,
                "model_file": "saved_model.pb",
            }
        raise ValueError(
            f"{export_dir!r} is not an export directory (no assets/{EXPORT_FILE} and no saved_model.pb): give a "
            "directory written by scripts/export.py"
        )
    path, content = record
    size = content.get("input_size") if isinstance(content, dict) else None
    batch = content.get("batch_size") if isinstance(content, dict) else None
    if (
        not isinstance(content, dict)
        or content.get("format") not in FORMATS
        or content.get("model_file") != MODEL_FILES[content["format"]]
        or not isinstance(content.get("quantize"), str)
        or not (
            size is None
            or (
                isinstance(size, list)
                and len(size) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
            )
        )
        or not (batch is None or (isinstance(batch, int) and not isinstance(batch, bool) and batch > 0))
    ):
        raise ValueError(
            f'{path!r} must hold {{"format": one of {list(FORMATS)}, "quantize": str, "input_size": [h, w] or '
            'null, "batch_size": int or null, "model_file": the format\'s file}; export the run again'
        )
    return {key: content[key] for key in ("format", "quantize", "input_size", "batch_size", "model_file")}
