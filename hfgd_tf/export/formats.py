"""Exports a segmenter as a SavedModel, LiteRT, ONNX or OpenVINO artifact, with its labels and protocol beside it.

Every export is a directory. The model file is written by Keras's own exporters (`keras.export.ExportArchive`
for the SavedModel; `model.export(format="litert" | "onnx" | "openvino")`, which convert through TFLite's
converter, tf2onnx and OpenVINO's `convert_model`) from one `SegmentationServingModel`, so that every format
carries the same function: uint8 `[B, H, W, 3]` images in, `class_ids`, `probabilities` and `logits` out.
What a model file cannot carry (class names and colours, the inference protocol, the source run, the format
and quantization) is written as JSON records in `<export_dir>/assets/`, where a SavedModel keeps its assets;
`hfgd_tf.export.saved_model`'s readers read them for every format.

    export_dir/saved_model.pb, variables/      (format saved_model)
    export_dir/model.tflite                    (format litert)
    export_dir/model.onnx                      (format onnx)
    export_dir/model.xml, model.bin            (format openvino)
    export_dir/assets/{export,labels,inference,source}.json
"""

import dataclasses
import os
import tempfile

import tensorflow as tf

from hfgd_tf.evaluation.config import EvalConfig
from hfgd_tf.export.saved_model import (
    EXPORT_FILE,
    INFERENCE_FILE,
    LABELS_FILE,
    SERVING_SIGNATURE,
    SOURCE_FILE,
)
from hfgd_tf.export.serving_model import OUTPUT_NAMES, SegmentationServingModel
from hfgd_tf.files import rename_directory, write_json_atomic

FORMATS = ("saved_model", "litert", "onnx", "openvino")
# The model file of each format (OpenVINO writes its weights beside the .xml, as model.bin).
MODEL_FILES = {"saved_model": "saved_model.pb", "litert": "model.tflite", "onnx": "model.onnx", "openvino": "model.xml"}
QUANTIZATIONS = {
    "saved_model": ("none", "bfloat16"),
    "litert": ("none", "float16", "int8"),
    "onnx": ("none", "int8"),
    "openvino": ("none",),
}
# The runtime package each format's export and predictions need (the `deploy` extra installs them all).
REQUIRED_PACKAGES = {
    "saved_model": (),
    "litert": ("ai_edge_litert",),
    "onnx": ("tf2onnx", "onnx", "onnxruntime"),
    "openvino": ("openvino",),
}


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What artifact to write.

    Attributes:
        format: str. "saved_model" (TensorFlow Serving, TF anywhere; any image size and batch, multi-scale
            and flip protocols), "litert" (phones and embedded CPUs: fixed size, batch 1), "onnx" (ONNX Runtime)
            or "openvino" (OpenVINO runtime). The last three run a single forward pass per image.
        quantize: str. "none" (float32); "float16" (LiteRT: float16 weights); "int8" (LiteRT, ONNX: post-training
            integer quantization of weights and activations, calibrated on `calibration_steps` training images);
            "bfloat16" (SavedModel: the segmenter's mixed_bfloat16 policy, bfloat16 matmuls and convolutions).
        export_height, export_width: int. A fixed input size (both > 0), or 0 for any size. LiteRT needs one:
            serve other sizes by resizing the image (and the logits back), or by windows in the caller.
        calibration_steps: int. Training images read for int8 calibration.
    """

    format: str = "saved_model"
    quantize: str = "none"
    export_height: int = 0
    export_width: int = 0
    calibration_steps: int = 100

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"ExportConfig.format (--format) must be one of {FORMATS}. Received: {self.format!r}")
        allowed = QUANTIZATIONS[self.format]
        if self.quantize not in allowed:
            raise ValueError(
                f"--quantize={self.quantize} is not available for --format={self.format} (it takes {', '.join(allowed)})"
            )
        if (self.export_height > 0) != (self.export_width > 0) or min(self.export_height, self.export_width) < 0:
            raise ValueError(
                "--export_height and --export_width must both be > 0 (a fixed input size) or both 0 (any size). "
                f"Received: {self.export_height}, {self.export_width}"
            )
        if self.format == "litert" and not self.export_height:
            raise ValueError(
                "--format=litert needs a fixed input size: give --export_height and --export_width (e.g. the "
                "eval images' size); serve other sizes by resizing the image, or by windows in the caller"
            )
        if self.quantize == "int8" and self.calibration_steps < 1:
            raise ValueError(
                f"--calibration_steps must be >= 1 for --quantize=int8. Received: {self.calibration_steps}"
            )

    @property
    def input_size(self):
        """`(height, width)` or None (any size)."""
        return (self.export_height, self.export_width) if self.export_height else None


def check_protocol(export_config, eval_config):
    """Raises ValueError, naming the format and the flags, when `eval_config` asks for what the format's
    artifact does not run: a sliding window (no format: its windows need static sizes), several scales or
    flip (only the SavedModel runs them inside; the other artifacts run one forward pass, and their `logits`
    output lets a caller average scales and flips itself), or another output than the prediction (every
    format serves the prediction's logits: `--scored_output=logits`)."""
    if eval_config is None:
        return
    if eval_config.scored_output != "logits":
        raise ValueError(
            f"--format={export_config.format} serves the prediction (--scored_output=logits), but "
            f"--scored_output={eval_config.scored_output} was asked: export with --scored_output=logits"
        )
    if eval_config.sliding_window_height:
        raise ValueError(
            f"--format={export_config.format} cannot export sliding-window inference (--sliding_window_height/"
            "--sliding_window_width: its windows need static sizes); export without them and slide the window "
            "in the caller"
        )
    if export_config.format != "saved_model" and (tuple(eval_config.eval_scales) != (1.0,) or eval_config.flip):
        raise ValueError(
            f"--format={export_config.format} exports single-scale inference without flip, but --eval_scales="
            f"{','.join(str(s) for s in eval_config.eval_scales)} --flip={str(eval_config.flip).lower()} was asked: "
            "export with --eval_scales=1.0 --flip=false and average the `logits` output of each scale/flip in the "
            "caller, or use --format=saved_model (which runs them inside)"
        )


def _missing_packages(format_name):
    import importlib.util

    return [name for name in REQUIRED_PACKAGES[format_name] if importlib.util.find_spec(name) is None]


def _input_signature(export_config):
    height, width = export_config.input_size or (None, None)
    # LiteRT tensors are static: batch 1 (a caller loops over a batch).
    batch = 1 if export_config.format == "litert" else None
    return [tf.TensorSpec([batch, height, width, 3], tf.uint8, name="images")]


def _litert_converter_options(export_config, calibration_images):
    """TFLiteConverter attributes for Keras's LiteRT exporter. Only builtin ops: the LiteRT runtime
    (ai-edge-litert) has no TensorFlow (Flex) kernels, so an op without a builtin must fail the export."""
    options = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if export_config.quantize == "float16":
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
        options["target_spec"]["supported_types"] = [tf.float16]
    elif export_config.quantize == "int8":
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
        options["representative_dataset"] = lambda: ([images] for images in calibration_images())
    return options


def _quantize_onnx_int8(model_path, output_path, calibration_images):
    """ONNX Runtime's static post-training quantization (QDQ, per-channel weights), calibrated on the
    images. It quantizes the ops ONNX Runtime has int8 kernels for (convolutions, matmuls, ...)."""
    import onnx
    from onnxruntime import quantization

    input_name = onnx.load(model_path, load_external_data=False).graph.input[0].name

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.images = iter(calibration_images())

        def get_next(self):
            images = next(self.images, None)
            return None if images is None else {input_name: images}

    prepared = model_path + ".prepared.onnx"
    quantization.quant_pre_process(model_path, prepared, skip_symbolic_shape=True)
    quantization.quantize_static(
        prepared,
        output_path,
        Reader(),
        quant_format=quantization.QuantFormat.QDQ,
        per_channel=True,
        activation_type=quantization.QuantType.QUInt8,
        weight_type=quantization.QuantType.QInt8,
    )


def _register_tf2onnx_erfc():
    """Teaches tf2onnx TensorFlow's `Erfc`, which exact GELU (the context encoder's MLP) lowers to and which
    tf2onnx 1.17 does not convert (ONNX has `Erf` but no `Erfc`): erfc(x) = 1 - erf(x). Registered once, at
    the first ONNX export (registering a handler is tf2onnx's documented way to add an op)."""
    import numpy as np
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    if "Erfc" in _register_tf2onnx_erfc.__dict__.setdefault("done", set()):
        return

    @tf_op("Erfc")
    class Erfc:  # noqa: F841 (registered by the decorator)
        @classmethod
        def version_9(cls, ctx, node, **kwargs):
            erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=node.name)
            one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1.0, np.float32))
            node.type = "Sub"
            ctx.replace_inputs(node, [one.output[0], erf.output[0]])

    _register_tf2onnx_erfc.done.add("Erfc")


def _write_model_file(serving, export_config, local_dir, calibration_images):
    """Writes the format's model file(s) into the local directory `local_dir` with Keras's exporters."""
    signature = _input_signature(export_config)
    path = os.path.join(local_dir, MODEL_FILES[export_config.format])
    if export_config.format == "litert":
        serving.export(
            path,
            format="litert",
            input_signature=signature,
            verbose=False,
            **_litert_converter_options(export_config, calibration_images),
        )
    elif export_config.format == "onnx":
        _register_tf2onnx_erfc()
        if export_config.quantize == "int8":
            float_path = os.path.join(local_dir, "float.onnx.tmp")
            serving.export(float_path, format="onnx", input_signature=signature, verbose=False)
            _quantize_onnx_int8(float_path, path, calibration_images)
            for name in os.listdir(local_dir):
                if name != os.path.basename(path):
                    os.remove(os.path.join(local_dir, name))
        else:
            serving.export(path, format="onnx", input_signature=signature, verbose=False)
    elif export_config.format == "openvino":
        serving.export(path, format="openvino", input_signature=signature, verbose=False)


def export_model(
    model,
    export_dir,
    export_config=None,
    class_names=None,
    colormap=None,
    eval_config=None,
    source=None,
    calibration_images=None,
):
    """Writes `export_dir` (see the module docstring); an existing export is replaced only once the new one is whole.

    Args:
        model: a segmenter returning `{"logits": ...}`. For `quantize="bfloat16"`, built with the
            "mixed_bfloat16" dtype policy (`restore_model(..., dtype_policy="mixed_bfloat16")`).
        export_dir: str (local, gs://, ram://).
        export_config: `ExportConfig` or None (a float32 SavedModel of any size).
        class_names, colormap: sequences, written to `assets/labels.json`.
        eval_config: `EvalConfig` or None (single scale, no flip): the protocol run inside the artifact
            (`check_protocol` says which formats take which), recorded in `assets/inference.json`.
        source: dict or None. Where the weights came from (`{"checkpoint_dir": ..., "checkpoint": ...}`),
            written to `assets/source.json`.
        calibration_images: for `quantize="int8"`: a callable returning an iterable of uint8 `[1, H, W, 3]`
            numpy arrays at the export size (`hfgd_tf.export.calibration.calibration_images`).

    Returns:
        str: `export_dir`.

    Raises:
        ValueError: the protocol is not available for the format, a runtime package is missing, int8 without
            calibration images, bfloat16 of a float32 model, or `export_dir` is a directory that holds
            something other than an export (it would be replaced whole: a training run, say).
    """
    export_config = export_config or ExportConfig()
    check_protocol(export_config, eval_config)
    missing = _missing_packages(export_config.format)
    if missing:
        raise ValueError(
            f"--format={export_config.format} needs the Python packages {missing}: pip install 'hfgd_tf[deploy]'"
        )
    if export_config.quantize == "int8" and calibration_images is None:
        raise ValueError("--quantize=int8 needs calibration images (the run's training records)")
    if export_config.quantize == "bfloat16" and model.dtype_policy.name != "mixed_bfloat16":
        raise ValueError(
            f"--quantize=bfloat16 exports a segmenter built with the mixed_bfloat16 policy; this one is "
            f"{model.dtype_policy.name!r} (restore it with dtype_policy='mixed_bfloat16')"
        )
    check_export_dir(export_dir)
    serving = SegmentationServingModel(model, eval_config)
    # Hidden siblings whose names do not start with the export's name (TF's ram:// filesystem lists a
    # directory by name prefix).
    parent, name = os.path.split(export_dir.rstrip("/"))
    temporary, old = os.path.join(parent, f".{name}.incomplete"), os.path.join(parent, f".{name}.old")
    for leftover in (temporary, old):  # of an export that was interrupted
        if tf.io.gfile.exists(leftover):
            tf.io.gfile.rmtree(leftover)
    if export_config.format == "saved_model":
        archive = _saved_model_archive(serving, export_config)
        archive.write_out(temporary, verbose=False)
    else:
        # Keras's exporters write with Python's open(): write locally, then copy (export_dir may be gs://).
        with tempfile.TemporaryDirectory() as local_dir:
            _write_model_file(serving, export_config, local_dir, calibration_images)
            tf.io.gfile.makedirs(temporary)
            for file_name in sorted(os.listdir(local_dir)):
                tf.io.gfile.copy(os.path.join(local_dir, file_name), os.path.join(temporary, file_name))
    assets = os.path.join(temporary, "assets")
    write_json_atomic(
        os.path.join(assets, EXPORT_FILE),
        {
            "format": export_config.format,
            "quantize": export_config.quantize,
            "input_size": list(export_config.input_size) if export_config.input_size else None,
            "batch_size": 1 if export_config.format == "litert" else None,
            "model_file": MODEL_FILES[export_config.format],
            "outputs": list(OUTPUT_NAMES),
        },
    )
    labels = {"class_names": list(class_names or []), "colormap": [list(c) for c in (colormap or [])]}
    write_json_atomic(os.path.join(assets, LABELS_FILE), labels)
    protocol = eval_config or EvalConfig()
    write_json_atomic(
        os.path.join(assets, INFERENCE_FILE), {"eval_scales": list(protocol.eval_scales), "flip": protocol.flip}
    )
    if source is not None:
        write_json_atomic(os.path.join(assets, SOURCE_FILE), dict(source))
    if tf.io.gfile.isdir(export_dir):
        rename_directory(export_dir, old)
        rename_directory(temporary, export_dir)
        tf.io.gfile.rmtree(old)
    else:
        rename_directory(temporary, export_dir)
    return export_dir


def check_export_dir(export_dir):
    """Refuses an `export_dir` that exists and is not an export: exporting replaces the directory whole.

    An empty directory and an earlier export (of any format, or a SavedModel) are fine.
    """
    path = export_dir.rstrip("/")
    if not path or os.path.basename(path) in (".", ".."):
        raise ValueError(f"--export_dir={export_dir!r}: name a directory for the export (it is replaced whole)")
    if not tf.io.gfile.exists(path):
        return
    if not tf.io.gfile.isdir(path):
        raise ValueError(f"--export_dir={export_dir!r} is a file, not a directory")
    entries = tf.io.gfile.listdir(path)
    is_export = tf.io.gfile.exists(os.path.join(path, "assets", EXPORT_FILE)) or tf.io.gfile.exists(
        os.path.join(path, "saved_model.pb")
    )
    if entries and not is_export:
        shown = ", ".join(sorted(e.rstrip("/") for e in entries)[:5])
        raise ValueError(
            f"--export_dir={export_dir!r} exists and is not an export (it holds {shown}{', ...' if len(entries) > 5 else ''}); "
            "an export replaces its directory whole: choose another --export_dir, or remove that directory first"
        )


def _saved_model_archive(serving, export_config):
    """Keras's `ExportArchive` with one endpoint, `serving_default(images)`, returning the three outputs."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(serving)
    archive.add_endpoint(SERVING_SIGNATURE, serving.call, input_signature=_input_signature(export_config))
    return archive
