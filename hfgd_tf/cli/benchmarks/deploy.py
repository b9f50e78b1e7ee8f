"""`scripts/benchmark.py --suite=deploy`: every exported form of a model beside Keras float32, measured in one
process; rewrites the deployment section of --output (docs/performance.md), the rest of the page stays.

For each model (HFGD-R50-OS4 at 512x512 with random weights, for latency and size; the demo model from a
trained run, at its records' size, for latency, size and mIoU on its val records) every form runs the same
uint8 -> class ids, probabilities, logits function:

    Keras fp32        SegmentationServingModel.call as a tf.function, in process
    Keras bfloat16    the same model built with the mixed_bfloat16 policy (the float32 weights)
    SavedModel        the float32 export reloaded with tf.saved_model.load
    LiteRT fp32/fp16/int8   ai-edge-litert's interpreter (XNNPACK), 2 threads
    ONNX Runtime fp32/int8  CPU execution provider
    OpenVINO fp32     CPU plugin

Latency: median of `runs` batch-1 calls timed round-robin over the forms (the noise of a shared machine hits
every form alike), after 2 warm-up calls each. Size: the bytes of the model file(s) (Keras: its
`.weights.h5`).
"""

import datetime
import os
import shlex
import statistics
import sys
import tempfile
import time

from absl import flags

from hfgd_tf.cli import flags as cli_flags
from hfgd_tf.cli.benchmarks.models import REFERENCE, define_row_flags, machine_description, our_config

FLAGS = flags.FLAGS


def define_flags():
    define_row_flags("Markdown page whose deployment section is rewritten (appended when it has none; '' prints only).")
    flags.DEFINE_string(
        "deploy_checkpoint_dir",
        "",
        "A trained demo run (scripts/demo.py's run/), scored on its val records; '' skips it.",
    )
    flags.DEFINE_integer("deploy_val_images", 100, "Val images of --deploy_checkpoint_dir's records scored per form.")
    flags.DEFINE_integer("deploy_calibration_steps", 100, "Training images that calibrate the int8 forms.")


FORMS = (
    ("keras_fp32", "Keras fp32 (tf.function)"),
    ("keras_bf16", "Keras mixed bfloat16"),
    ("saved_model", "SavedModel fp32"),
    ("litert_fp32", "LiteRT fp32 (XNNPACK)"),
    ("litert_fp16", "LiteRT float16 weights (XNNPACK)"),
    ("litert_int8", "LiteRT int8 (XNNPACK)"),
    ("onnx_fp32", "ONNX Runtime fp32"),
    ("onnx_int8", "ONNX Runtime int8 (QDQ)"),
    ("openvino_fp32", "OpenVINO fp32"),
)
EXPORTS = {
    "saved_model": ("saved_model", "none"),
    "litert_fp32": ("litert", "none"),
    "litert_fp16": ("litert", "float16"),
    "litert_int8": ("litert", "int8"),
    "onnx_fp32": ("onnx", "none"),
    "onnx_int8": ("onnx", "int8"),
    "openvino_fp32": ("openvino", "none"),
}
QUANTIZED = ("keras_bf16", "litert_fp16", "litert_int8", "onnx_int8")


def _directory_bytes(path):
    total = 0
    for directory, _, files in os.walk(path):
        if os.path.basename(directory) == "assets":
            continue
        total += sum(os.path.getsize(os.path.join(directory, name)) for name in files)
    return total


class _KerasForm:
    """A Keras model behind the same `predict(uint8 images) -> numpy dict` as an `ExportedModel`."""

    def __init__(self, segmenter):
        import tensorflow as tf

        from hfgd_tf.export import SegmentationServingModel

        self.serving = SegmentationServingModel(segmenter)
        self.function = tf.function(self.serving.call, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])

    def predict(self, images, resize=False):
        return {name: value.numpy() for name, value in self.function(images).items()}


def build_forms(segmenter, config, directory, size, calibration, log=print):
    """{form key: (predictor, file bytes) or an error string} for one model.

    Args:
        segmenter: float32 Keras segmenter.
        config: its `ModelConfig` (to build the bfloat16 twin).
        directory: str. Where the exports go.
        size: `(height, width)` of the fixed-size (LiteRT) exports.
        calibration: callable of int8 calibration images (`hfgd_tf.export.calibration.calibration_images`).
    """
    from hfgd_tf.export import ExportConfig, export_model, load_exported
    from hfgd_tf.models import build_model

    forms = {}
    forms["keras_fp32"] = (_KerasForm(segmenter), _keras_bytes(segmenter, directory, "fp32"))
    twin = build_model(config, dtype_policy="mixed_bfloat16")
    twin.set_weights(segmenter.get_weights())
    forms["keras_bf16"] = (_KerasForm(twin), forms["keras_fp32"][1])
    for key, (format_name, quantize) in EXPORTS.items():
        fixed = size if format_name == "litert" else (0, 0)
        export_dir = os.path.join(directory, key)
        start = time.time()
        try:
            export_model(
                segmenter,
                export_dir,
                ExportConfig(format_name, quantize, fixed[0], fixed[1]),
                calibration_images=calibration,
            )
            forms[key] = (load_exported(export_dir, num_threads=os.cpu_count()), _directory_bytes(export_dir))
            log(f"  exported {key} in {time.time() - start:.0f} s")
        except Exception as error:  # a form that fails is reported in the table, not fatal to the others
            forms[key] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            log(f"  {key} failed: {forms[key]}")
    return forms


def _keras_bytes(segmenter, directory, name):
    path = os.path.join(directory, f"keras_{name}.weights.h5")
    segmenter.save_weights(path)
    return os.path.getsize(path)


def median_latencies(forms, images, runs, warmup=2):
    """{key: median seconds} of `predict(images)` for the forms that built, timed round-robin."""
    ready = {key: form[0] for key, form in forms.items() if not isinstance(form, str)}
    for predictor in ready.values():
        for _ in range(warmup):
            predictor.predict(images)
    times = {key: [] for key in ready}
    for _ in range(runs):
        for key, predictor in ready.items():
            start = time.perf_counter()
            predictor.predict(images)
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


def miou_of_forms(forms, data_config, max_images):
    """{key: mIoU} of every form that built on the eval split (batch 1, the same confusion matrix as
    `hfgd_tf.evaluation`), and the number of images scored."""
    import numpy as np

    from hfgd_tf.data.pipeline import build_eval_dataset
    from hfgd_tf.evaluation.metrics import confusion_matrix, segmentation_metrics

    info = data_config.info
    ready = {key: form[0] for key, form in forms.items() if not isinstance(form, str)}
    totals = {key: np.zeros((info.num_classes, info.num_classes), np.int64) for key in ready}
    count = 0
    for images, labels in build_eval_dataset(data_config, 1).take(max_images):
        pixels = np.clip(np.round(images.numpy()), 0, 255).astype(np.uint8)
        for key, predictor in ready.items():
            class_ids = predictor.predict(pixels, resize=True)["class_ids"]
            totals[key] += confusion_matrix(labels, class_ids, info.num_classes, info.ignore_label).numpy()
        count += 1
    return {key: segmentation_metrics(total)["miou"] for key, total in totals.items()}, count


def _cell(value, digits=4):
    return "n/a" if value is None else f"{value:.{digits}g}"


def deployment_table(title, forms, latencies, mious=None):
    """Markdown lines of one model's table: latency, ratio to Keras fp32, size, mIoU and its delta."""
    header = ["form", "b1 latency (ms)", "speed-up vs Keras fp32", "model file (MB)"]
    if mious is not None:
        header += ["mIoU", "mIoU delta (points)"]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    reference = latencies.get("keras_fp32")
    for key, name in FORMS:
        form = forms.get(key)
        if form is None:
            continue
        if isinstance(form, str):
            lines.append(f"| {name} | failed: {form.replace('|', '/')} |" + " |" * (len(header) - 2))
            continue
        seconds = latencies.get(key)
        row = [
            name,
            _cell(seconds * 1000 if seconds else None),
            _cell(reference / seconds if seconds and reference else None, 3),
            _cell(form[1] / 1e6, 3),
        ]
        if mious is not None:
            miou = mious.get(key)
            delta = 100 * (miou - mious["keras_fp32"]) if miou is not None and "keras_fp32" in mious else None
            row += [_cell(100 * miou if miou is not None else None), f"{delta:+.2f}" if delta is not None else "n/a"]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def target_line(latencies, mious):
    """The deployment target on the demo model: the fastest deployed form (not Keras) at least 2x faster than
    Keras fp32 with at most 0.5 mIoU points lost. Returns markdown lines saying whether it is met."""
    deployed = [k for k in latencies if k not in ("keras_fp32", "keras_bf16")]
    if not deployed or "keras_fp32" not in latencies:
        return ["Target not checked: no deployed form was measured."]
    fastest = min(deployed, key=latencies.get)
    speed_up = latencies["keras_fp32"] / latencies[fastest]
    lost = 100 * (mious["keras_fp32"] - mious[fastest]) if mious and fastest in mious else None
    met = speed_up >= 2 and lost is not None and lost <= 0.5
    name = dict(FORMS)[fastest]
    lines = [
        f"Target (demo model): fastest deployed form >= 2x Keras fp32 with <= 0.5 mIoU points lost. Fastest: {name}, "
        f"{speed_up:.2f}x, {'n/a' if lost is None else f'{lost:.2f}'} points lost: **{'met' if met else 'not met'}**."
    ]
    qualifying = [
        k
        for k in deployed
        if latencies["keras_fp32"] / latencies[k] >= 2
        and mious
        and k in mious
        and 100 * (mious["keras_fp32"] - mious[k]) <= 0.5
    ]
    if not met and qualifying:
        lines.append(f"Forms that meet both bounds: {', '.join(dict(FORMS)[k] for k in qualifying)}.")
    return lines


def measure_model(title, segmenter, config, size, calibration, runs, data_config=None, max_images=0, log=print):
    """Exports, times (and scores) one model; returns its markdown lines and the raw numbers."""
    import numpy as np

    with tempfile.TemporaryDirectory() as directory:
        forms = build_forms(segmenter, config, directory, size, calibration, log)
        images = np.random.default_rng(1).integers(0, 256, (1, size[0], size[1], 3)).astype(np.uint8)
        latencies = median_latencies(forms, images, runs)
        mious = None
        if data_config is not None:
            mious, count = miou_of_forms(forms, data_config, max_images)
            log(f"  scored {count} val images")
        lines = deployment_table(title, forms, latencies, mious)
        return lines, forms, latencies, mious


DEPLOY_HEADING = "## Deployment: exported forms beside Keras fp32"


def cpu_features():
    """The CPU flags that decide reduced-precision speed (from /proc/cpuinfo): which of them this CPU has."""
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    flags_line = ""
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as handle:
            flags_line = next((line for line in handle if line.startswith("flags")), "")
    present = set(flags_line.split(":", 1)[-1].split())
    return {name: name in present for name in wanted}


def deployment_section():
    """Measures the deployment tables (HFGD-R50-OS4 at --image_size, and the demo run) in this process."""
    import keras

    from hfgd_tf.data.config import DataConfig
    from hfgd_tf.data.synthetic import write_synthetic_tfrecords
    from hfgd_tf.export.calibration import calibration_images
    from hfgd_tf.models import build_model
    from hfgd_tf.train.checkpoints import restore_model

    size = FLAGS.image_size
    lines = [DEPLOY_HEADING, ""]
    features = cpu_features()
    has = [name for name, present in features.items() if present]
    lacks = [name for name, present in features.items() if not present]
    lines += [
        f"Measured by `scripts/benchmark.py --suite=deploy` in one process on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC:",
        "",
        "```",
        "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "```",
        "",
        f"Machine: {machine_description()}. CPU flags present: {', '.join(has) or 'none'}; absent: "
        f"{', '.join(lacks)}. Other processes shared these cores during the run: absolute times are noisy, "
        "the ratios (forms timed round-robin) less so.",
        "",
        "Every form runs the same function: uint8 images -> cast, normalisation, logits, argmax, softmax "
        "(`SegmentationServingModel`), batch 1, single scale. Latency: median of "
        f"{FLAGS.runs} calls per form, round-robin. Model file: the bytes of the artifact (Keras: `.weights.h5`). "
        "int8 forms are calibrated on training records (HFGD-R50-OS4: synthetic scenes at its size).",
        "",
    ]
    if FLAGS.deploy_checkpoint_dir:
        model, config, data_config = restore_model(FLAGS.deploy_checkpoint_dir, "best")
        from hfgd_tf.data.pipeline import build_eval_dataset

        image, _ = next(iter(build_eval_dataset(data_config, 1)))
        height, width = int(image.shape[1]), int(image.shape[2])
        calibration = calibration_images(data_config, FLAGS.deploy_calibration_steps, height, width)
        print(f"Deployment: demo model at {height}x{width}", flush=True)
        demo_lines, _, latencies, mious = measure_model(
            f"Demo model (`{config.backbone}`, D={config.num_channels}, trained run "
            f"`{os.path.basename(os.path.abspath(FLAGS.deploy_checkpoint_dir))}`), {height}x{width}, batch 1; "
            f"mIoU on {FLAGS.deploy_val_images} synthetic val images",
            model,
            config,
            (height, width),
            calibration,
            FLAGS.runs,
            data_config,
            FLAGS.deploy_val_images,
        )
        print("\n".join(demo_lines), flush=True)  # kept in the log should a later part fail
        lines += demo_lines + [""] + target_line(latencies, mious) + [""]
        del model
    with tempfile.TemporaryDirectory() as directory:
        keras.utils.set_random_seed(0)
        config = our_config(REFERENCE)
        model = build_model(config)
        data_dir = write_synthetic_tfrecords(os.path.join(directory, "r50_calibration"), 8, 0, size, size)
        calibration = calibration_images(DataConfig("synthetic_streets", data_dir), 8, size, size)
        print(f"Deployment: {REFERENCE} at {size}x{size}", flush=True)
        r50_lines, *_ = measure_model(
            f"HFGD-R50-OS4 (`{REFERENCE}`, random weights, {FLAGS.num_classes} classes), {size}x{size}, batch 1",
            model,
            config,
            (size, size),
            calibration,
            FLAGS.runs,
        )
        print("\n".join(r50_lines), flush=True)  # kept in the log should a later part fail
        lines += r50_lines + [""]
        del model
    return lines


def rewrite_deploy_section(path, section):
    """Replaces (or appends) the deployment section of `path`; the rest of the page stays as measured."""
    lines = []
    if os.path.exists(path):
        with open(path) as handle:
            lines = handle.read().splitlines()
    if DEPLOY_HEADING in lines:
        start = lines.index(DEPLOY_HEADING)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines = lines[:start] + section + ([""] + lines[end:] if end < len(lines) else [])
    else:
        lines += [""] + section
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def main(argv):
    cli_flags.check_output_paths(output=(FLAGS.output, "file"))
    section = deployment_section()
    print("\n".join(section))
    if FLAGS.output:
        rewrite_deploy_section(FLAGS.output, section)
        print(f"Rewrote the deployment section of {FLAGS.output}")
