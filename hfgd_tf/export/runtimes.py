"""Runs any export directory with its own runtime behind one interface: uint8 images in, numpy outputs out.

    exported = load_exported("exports/x_litert_int8")
    outputs = exported.predict(images)   # uint8 [B, H, W, 3] -> {"class_ids", "probabilities", "logits"}

SavedModel: TensorFlow (`tf.saved_model.load`). LiteRT: `ai_edge_litert`'s interpreter (XNNPACK on CPU).
ONNX: ONNX Runtime (CPU). OpenVINO: the OpenVINO runtime (CPU). Nothing here imports hfgd_tf's models, so an
export is scored as it would be served.
"""

import os
import tempfile

import numpy as np
import tensorflow as tf

from hfgd_tf.export.saved_model import SERVING_SIGNATURE, read_export_format
from hfgd_tf.export.serving_model import OUTPUT_NAMES

RUNTIME_PACKAGES = {"litert": "ai_edge_litert", "onnx": "onnxruntime", "openvino": "openvino"}


class ExportedModel:
    """An export directory loaded in its runtime.

    Attributes:
        export_dir: str.
        format: str. "saved_model", "litert", "onnx" or "openvino".
        quantize: str. What the export was quantized to ("none", "float16", "int8", "bfloat16").
        input_size: `(height, width)` or None (any size).
    """

    def __init__(self, export_dir, record, run_batch):
        self.export_dir = export_dir
        self.format = record["format"]
        self.quantize = record["quantize"]
        self.input_size = tuple(record["input_size"]) if record["input_size"] else None
        self._batch_size = record["batch_size"]
        self._run_batch = run_batch

    def predict(self, images, resize=False):
        """Predicts uint8 images `[B, H, W, 3]`.

        Args:
            images: uint8 numpy `[B, H, W, 3]`.
            resize: bool. For a fixed-size export: resize images of another size to it (bilinear) and the
                logits back (bilinear), as a caller serving other sizes would; False refuses them.

        Returns:
            dict of numpy: `class_ids` int32 `[B, H, W]`, `probabilities` and `logits` float32 `[B, H, W, K]`.

        Raises:
            ValueError: not uint8 `[B, H, W, 3]`, or a size the export does not take (without `resize`).
        """
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"Exported models take uint8 images [B, H, W, 3]. Received: {images.dtype} {images.shape}")
        size = images.shape[1:3]
        resized = self.input_size is not None and tuple(size) != self.input_size
        if resized:
            if not resize:
                raise ValueError(
                    f"{self.export_dir!r} ({self.format}) takes {self.input_size[0]}x{self.input_size[1]} images; "
                    f"received {size[0]}x{size[1]}: resize them (predict(..., resize=True), --resize_to_export), or "
                    "export at this size (--export_height/--export_width)"
                )
            images = tf.cast(tf.round(tf.image.resize(images, self.input_size, method="bilinear")), tf.uint8).numpy()
        step = self._batch_size or len(images)
        parts = [self._run_batch(images[start : start + step]) for start in range(0, len(images), step)]
        logits = np.concatenate([part["logits"] for part in parts]).astype(np.float32)
        if not resized:
            outputs = {name: np.concatenate([part[name] for part in parts]) for name in OUTPUT_NAMES}
            outputs["class_ids"] = outputs["class_ids"].astype(np.int32)
            return outputs
        logits = tf.image.resize(logits, size, method="bilinear")
        return {
            "class_ids": tf.argmax(logits, axis=-1, output_type=tf.int32).numpy(),
            "probabilities": tf.nn.softmax(logits, axis=-1).numpy(),
            "logits": logits.numpy(),
        }


def _local_copy(export_dir, names, directory):
    """Copies the export's model files to a local directory (runtimes other than TF read local files only)."""
    for name in names:
        tf.io.gfile.copy(os.path.join(export_dir, name), os.path.join(directory, name), overwrite=True)
    return os.path.join(directory, names[0])


def _saved_model_runner(export_dir, _):
    serving = tf.saved_model.load(export_dir).signatures[SERVING_SIGNATURE]

    def run(images):
        return {name: value.numpy() for name, value in serving(images=tf.constant(images)).items()}

    return run


def _litert_runner(path, num_threads):
    from ai_edge_litert.interpreter import Interpreter

    # None: the interpreter's default thread count.
    interpreter = Interpreter(model_path=path, num_threads=num_threads or None)
    runner = interpreter.get_signature_runner(SERVING_SIGNATURE)
    return lambda images: runner(images=images)


def _onnx_runner(path, num_threads):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    names = [output.name for output in session.get_outputs()]
    _check_names(path, names)

    def run(images):
        return dict(zip(names, session.run(names, {input_name: images})))

    return run


def _openvino_runner(path, num_threads):
    import openvino

    config = {"INFERENCE_NUM_THREADS": num_threads} if num_threads else {}
    compiled = openvino.Core().compile_model(path, "CPU", config)
    outputs = {output.get_any_name(): output for output in compiled.outputs}
    _check_names(path, list(outputs))
    request = compiled.create_infer_request()

    def run(images):
        results = request.infer({0: images})
        return {name: np.asarray(results[output]) for name, output in outputs.items()}

    return run


def _check_names(path, names):
    if sorted(names) != sorted(OUTPUT_NAMES):
        raise ValueError(f"{path!r} has outputs {names}, not {list(OUTPUT_NAMES)}: export the run again")


RUNNERS = {
    "saved_model": _saved_model_runner,
    "litert": _litert_runner,
    "onnx": _onnx_runner,
    "openvino": _openvino_runner,
}


def load_exported(export_dir, num_threads=0):
    """Loads an export directory written by `hfgd_tf.export.formats.export_model` in its format's runtime.

    Args:
        export_dir: str (local; SavedModels also gs://...).
        num_threads: int. CPU threads of the LiteRT, ONNX Runtime and OpenVINO runtimes (0: their default).

    Returns:
        `ExportedModel`.

    Raises:
        ValueError: naming the directory, when it holds no export, or when the format's runtime package is
            not installed (naming the extra that installs it).
    """
    if not tf.io.gfile.isdir(export_dir):
        raise ValueError(f"{export_dir!r} is not a directory (an export written by scripts/export.py)")
    record = read_export_format(export_dir)
    format_name = record["format"]
    package = RUNTIME_PACKAGES.get(format_name)
    if package:
        import importlib.util

        if importlib.util.find_spec(package) is None:
            raise ValueError(
                f"{export_dir!r} is a {format_name} export, which runs in the {package} package: "
                "pip install 'hfgd_tf[deploy]'"
            )
    if format_name == "saved_model":
        run = _saved_model_runner(export_dir, num_threads)
    else:
        names = [record["model_file"]] + (["model.bin"] if format_name == "openvino" else [])
        if "://" in export_dir:
            local = tempfile.mkdtemp(prefix="hfgd_export_")
            path = _local_copy(export_dir, names, local)
        else:
            path = os.path.join(export_dir, record["model_file"])
        run = RUNNERS[format_name](path, num_threads)
    return ExportedModel(export_dir, record, run)
