"""`scripts/benchmark.py --suite=models` (the default): HFGD's cost beside its peers, measured in one process:
parameters, GFLOPs, inference latency, training step time, SavedModel serving latency and input-pipeline
headroom, written as markdown tables.

Rows: our HFGD-R50 (OS4, OS2, OS4 with the D-wide head used before), our SemanticFPN-R50 and dilated
DeepLabV3+-R50 baselines, the bare ResNet-50 backbone (`build_backbone`, features only), and keras-cv's
DeepLabV3Plus (ResNet50V2) and SegFormer (MiT-B0, MiT-B2), built from explicit constructor arguments
(no preset, nothing downloaded). Every time is the median of --runs calls timed round-robin over the
rows (interleaved), so the noise of a shared machine hits every row alike; ratios are to rows of the
same run. Absolute times depend on the machine; compare ratios.
"""

import dataclasses
import datetime
import os
import platform
import re
import shlex
import sys
import tempfile

from absl import flags

from hfgd_tf.cli import flags as cli_flags
from hfgd_tf.cli.benchmarking import (
    MODELS,
    cpu_model,
    graph_flops,
    median_seconds,
    pipeline_images_per_second,
    training_images_per_second,
)
from hfgd_tf.cli.benchmarks import define_zoo_size_flags

# key -> (description, kind, constructor details). Kinds: "ours" (build_model with MODELS[key]'s
# overrides, --backbone replacing ResNet-50), "backbone" (build_backbone), "keras_cv".
ROWS = {
    "hfgd_r50_os4": ("HFGD-R50 OS4 (head D/2 wide)", "ours", None),
    "hfgd_r50_os2": ("HFGD-R50 OS2 (head D/2 wide)", "ours", None),
    "hfgd_r50_os4_wide_head": ("HFGD-R50 OS4, D-wide head (before)", "ours", None),
    "sfpn_r50": ("SemanticFPN-R50 (ours)", "ours", None),
    "deeplabv3plus_r50_d8": ("DeepLabV3+-R50, dilated OS8 (ours)", "ours", None),
    "backbone_r50": ("ResNet-50 backbone alone (features C2..C5)", "backbone", None),
    # keras-cv 0.9 architectures from their presets' published configs (checked by parameter count:
    # ResNet50V2 23,564,800 weights, SegFormer-B2 24,727,507 at 19 classes, as the preset metadata).
    "kcv_deeplabv3plus_r50v2": (
        "keras-cv DeepLabV3Plus, ResNet50V2",
        "keras_cv",
        dict(
            backbone="ResNetV2Backbone",
            backbone_kwargs=dict(
                stackwise_filters=[64, 128, 256, 512], stackwise_blocks=[3, 4, 6, 3], stackwise_strides=[1, 2, 2, 2]
            ),
            model="DeepLabV3Plus",
            fixed_size=False,
        ),
    ),
    "kcv_segformer_b0": (
        "keras-cv SegFormer, MiT-B0",
        "keras_cv",
        dict(
            backbone="MiTBackbone",
            backbone_kwargs=dict(depths=[2, 2, 2, 2], embedding_dims=[32, 64, 160, 256]),
            model="SegFormer",
            fixed_size=True,
        ),
    ),
    "kcv_segformer_b2": (
        "keras-cv SegFormer, MiT-B2",
        "keras_cv",
        dict(
            backbone="MiTBackbone",
            backbone_kwargs=dict(depths=[3, 4, 6, 3], embedding_dims=[64, 128, 320, 512]),
            model="SegFormer",
            fixed_size=True,
        ),
    ),
}
REFERENCE, BACKBONE = "hfgd_r50_os4", "backbone_r50"
POLICIES = {"none": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}

FLAGS = flags.FLAGS


def define_row_flags(output_help):
    """The flags this suite shares with the deploy suite: how our rows are built, --runs and --output."""
    define_zoo_size_flags()
    flags.DEFINE_integer(
        "runs",
        3,
        "Timed repetitions per measurement (medians; after warm-up calls). 3 kept a full run at 21 min on 2 CPU cores.",
    )
    flags.DEFINE_string(
        "backbone", "resnet50", "Backbone of our rows and of the bare-backbone row (resnet_tiny for a quick check)."
    )
    flags.DEFINE_integer("num_channels", 256, "D of our rows (the D-wide-head row's head is D wide).")
    flags.DEFINE_string("output", os.path.join("docs", "performance.md"), output_help)


def define_flags():
    define_row_flags("Markdown file to write ('' prints only).")
    flags.DEFINE_list("rows", [], f"Rows to measure (default: all): {list(ROWS)}.")
    flags.DEFINE_list(
        "large_size", ["1024", "2048"], "height,width of the batch-1 large-image column (Cityscapes); empty skips it."
    )
    flags.DEFINE_integer("batch_size", 8, "Batch of the second latency column.")
    flags.DEFINE_integer(
        "train_batch_size", 2, "Batch of the training-step columns (kept small for CPU memory and time)."
    )
    flags.DEFINE_list(
        "light_rows",
        ["deeplabv3plus_r50_d8"],
        "Rows measured only for params, GFLOPs and batch-1 latency at --image_size (their batch-N, large-input and "
        "training cells say 'skipped'): the dilated DeepLabV3+ alone would take most of a full run's time on 2 CPU "
        "cores (its atrous convolutions, and their backward above all, are slow on CPU). Empty measures every row fully.",
    )
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the inference functions and training steps.")
    flags.DEFINE_enum(
        "mixed_precision", "none", list(POLICIES), "Keras dtype policy of every row (bfloat16: mixed_bfloat16)."
    )
    flags.DEFINE_bool(
        "compare_xla", False, "Also time batch-1 latency and the training step under XLA in the same run."
    )
    flags.DEFINE_bool(
        "saved_model", True, "Time HFGD-R50-OS4's exported SavedModel against the in-process serving function."
    )
    flags.DEFINE_list(
        "pipeline_settings",
        ["352x480@360x480", "512x1024@1024x2048"],
        "Input pipeline vs training step at these crops, each CROPHxCROPW@IMAGEHxIMAGEW (synthetic records of that "
        "image size, written to a temp dir); empty skips it.",
    )
    flags.DEFINE_integer("pipeline_batches", 10, "Batches timed per pipeline setting (after 3 warm-up batches).")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The parsed, checked flags."""

    rows: tuple
    image_size: int
    large_size: tuple  # () when skipped
    pipeline_settings: tuple  # ((crop_h, crop_w), (image_h, image_w)) pairs


def _parse_pipeline_setting(entry):
    """ "352x480@360x480" -> ((352, 480), (360, 480))."""
    match = re.fullmatch(r"(\d+)x(\d+)@(\d+)x(\d+)", entry.strip())
    if not match or not all(int(v) > 0 for v in match.groups()):
        raise ValueError(
            f"--pipeline_settings entries must look like CROPHxCROPW@IMAGEHxIMAGEW (e.g. 352x480@360x480). Received: {entry!r}"
        )
    values = [int(v) for v in match.groups()]
    return tuple(values[:2]), tuple(values[2:])


def parse_settings():
    """Checks the flags; raises ValueError naming the flag."""
    rows = tuple(FLAGS.rows) or tuple(ROWS)
    for flag in ("rows", "light_rows"):
        unknown = [r for r in (rows if flag == "rows" else FLAGS.light_rows) if r not in ROWS]
        if unknown:
            raise ValueError(f"--{flag} has unknown rows {unknown}; known: {list(ROWS)}")
    if FLAGS.image_size < 32 or FLAGS.image_size % 32:
        raise ValueError(f"--image_size must be a positive multiple of 32. Received: {FLAGS.image_size}")
    large = tuple(int(v) for v in FLAGS.large_size) if FLAGS.large_size else ()
    if large and (len(large) != 2 or any(v < 32 or v % 32 for v in large)):
        raise ValueError(
            f"--large_size must be 'height,width', multiples of 32, or empty. Received: {FLAGS.large_size}"
        )
    if FLAGS.runs < 1:
        raise ValueError(f"--runs must be >= 1. Received: {FLAGS.runs}")
    if FLAGS.compare_xla and FLAGS.jit_compile:
        raise ValueError("--compare_xla times every row without and with XLA; leave --jit_compile off with it")
    pipeline = tuple(_parse_pipeline_setting(entry) for entry in FLAGS.pipeline_settings)
    return Settings(rows, FLAGS.image_size, large, pipeline)


# --- Building the rows -------------------------------------------------------------------------------


def our_config(key, num_classes=None):
    from hfgd_tf.models import ModelConfig

    overrides = dict(MODELS[key][1], backbone=FLAGS.backbone)
    if "upsampler_num_channels" in overrides:  # the D-wide head: as wide as D
        overrides["upsampler_num_channels"] = FLAGS.num_channels
    return ModelConfig(
        num_classes=num_classes or FLAGS.num_classes,
        num_channels=FLAGS.num_channels,
        norm_method="batch_norm",
        **overrides,
    )


def _build_keras_cv(details, image_size):
    import keras_cv

    size = (image_size, image_size, 3) if details["fixed_size"] else (None, None, 3)
    backbone = getattr(keras_cv.models, details["backbone"])(
        **details["backbone_kwargs"], include_rescaling=False, input_shape=size
    )
    return getattr(keras_cv.models, details["model"])(backbone=backbone, num_classes=FLAGS.num_classes)


@dataclasses.dataclass
class Row:
    key: str
    description: str
    model: object
    output: object  # model outputs -> what an inference returns (logits, or the backbone's features)
    trainable: bool  # has logits to train with a cross entropy
    any_size: bool  # takes inputs of any size (keras-cv SegFormer: built for one square size)


def build_row(key, image_size, policy):
    import keras

    from hfgd_tf.backbones import build_backbone
    from hfgd_tf.layers.policy import dtype_policy_scope
    from hfgd_tf.models import build_model

    description, kind, details = ROWS[key]
    keras.utils.set_random_seed(0)
    if kind == "ours":
        model = build_model(our_config(key), dtype_policy=policy)
        return Row(key, description, model, lambda outputs: outputs["logits"], True, True)
    with dtype_policy_scope(policy):
        if kind == "backbone":
            model = build_backbone(FLAGS.backbone, norm=our_config(REFERENCE).norm)
            return Row(key, description, model, lambda outputs: outputs, False, True)
        model = _build_keras_cv(details, image_size)
    return Row(key, description, model, lambda outputs: outputs, True, not details["fixed_size"])


# --- Measurements ------------------------------------------------------------------------------------


def inference_function(row, jit_compile):
    import tensorflow as tf

    return tf.function(lambda images: row.output(row.model(images, training=False)), jit_compile=jit_compile)


def train_step_function(row, jit_compile):
    """One SGD step (momentum 0.9: forward, backward, apply) of a cross entropy summed over the row's
    logits outputs; the same function for every row. HFGD's outputs include `logits_high` (its backbone
    learns only from that loss: the upsampler stops its gradient), so its step trains the whole model as
    in training; smaller logits are resized to the labels (`SegmentationLoss`). keras-cv's models end in
    a softmax: the loss then reads probabilities as logits, which costs the same."""
    import keras
    import tensorflow as tf

    from hfgd_tf.train.losses import SegmentationLoss

    loss_function = SegmentationLoss("cross_entropy", ignore_label=255)
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(row.model.trainable_variables)

    @tf.function(jit_compile=jit_compile)
    def step(images, labels):
        with tf.GradientTape() as tape:
            outputs = row.model(images, training=True)
            logits = (
                [v for k, v in outputs.items() if k.startswith("logits")] if isinstance(outputs, dict) else [outputs]
            )
            loss = 0.0
            for value in logits:
                total, count = loss_function.sums(labels, tf.cast(value, tf.float32))
                loss += total / count
        gradients = tape.gradient(loss, row.model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, row.model.trainable_variables))
        return loss

    return step


# (column, row key) -> first line of the error of a function that failed to run (e.g. an XLA compile
# error); the table says "failed" there and the report lists the errors.
FAILURES = {}
SKIPPED = set()  # (column, row key) of --light_rows' cells left out


def _full(functions, column):
    """`functions` without the --light_rows (recorded in SKIPPED for `column`)."""
    SKIPPED.update((column, key) for key in functions if key in FLAGS.light_rows)
    return {key: f for key, f in functions.items() if key not in FLAGS.light_rows}


def _timed(name, functions, arguments, runs, warmup):
    """Median milliseconds of the rows' functions on the same arguments, interleaved; prints them.

    Each function is called once alone first: one that raises is left out (recorded in FAILURES) rather
    than ending the run.
    """
    import tensorflow as tf

    working = {}
    for key, function in functions.items():
        try:
            tf.nest.map_structure(lambda t: t.numpy(), function(*arguments))
            working[key] = function
        except (tf.errors.OpError, ValueError, TypeError) as error:
            FAILURES[(name, key)] = str(error).strip().splitlines()[0][:300]
            print(f"{name:28s} {key:26s} FAILED: {FAILURES[(name, key)]}", flush=True)
    calls = {key: (lambda f=f: f(*arguments)) for key, f in working.items()}
    seconds = median_seconds(calls, runs, max(warmup - 1, 0))
    for key, value in seconds.items():
        print(f"{name:28s} {key:26s} {value * 1e3:10.1f} ms", flush=True)
    return {key: value * 1e3 for key, value in seconds.items()}


def measure_rows(rows, settings):
    """dict column -> {row key: value}; columns absent for a row are missing from its dict."""
    import numpy as np
    import tensorflow as tf

    size, runs, jit = settings.image_size, FLAGS.runs, FLAGS.jit_compile
    columns = {"params (M)": {}, "GFLOPs": {}}
    for row in rows.values():
        columns["params (M)"][row.key] = sum(int(np.prod(v.shape)) for v in row.model.trainable_variables) / 1e6
        columns["GFLOPs"][row.key] = graph_flops(row.model, size) / 1e9
        print(
            f"{row.key:26s} {columns['params (M)'][row.key]:8.2f} M params {columns['GFLOPs'][row.key]:8.2f} GFLOPs",
            flush=True,
        )
    generator = tf.random.Generator.from_seed(0)
    images = {batch: generator.uniform([batch, size, size, 3], 0, 255) for batch in (1, FLAGS.batch_size)}
    variants = [("", jit)] + ([(" XLA", True)] if FLAGS.compare_xla else [])
    for suffix, xla in variants:
        functions = {key: inference_function(row, xla) for key, row in rows.items()}
        name = f"b1 {size}x{size}{suffix} (ms)"
        columns[name] = _timed(name, functions, (images[1],), runs, warmup=2)
        if not suffix:
            name = f"b{FLAGS.batch_size} {size}x{size} (ms)"
            columns[name] = _timed(name, _full(functions, name), (images[FLAGS.batch_size],), runs, warmup=1)
            if settings.large_size:
                height, width = settings.large_size
                name = f"b1 {height}x{width} (ms)"
                large = _full({key: functions[key] for key, row in rows.items() if row.any_size}, name)
                columns[name] = _timed(name, large, (generator.uniform([1, height, width, 3], 0, 255),), runs, warmup=1)
        batch = FLAGS.train_batch_size
        name = f"train b{batch} {size}x{size}{suffix} (ms)"
        trainable = _full({key: row for key, row in rows.items() if row.trainable}, name)
        # The timed SGD steps move the weights: put them back so later cells time the same model.
        saved = {key: [v.numpy() for v in rows[key].model.weights] for key in trainable}
        trainable = {key: train_step_function(row, xla) for key, row in trainable.items()}
        labels = generator.uniform([batch, size, size], 0, FLAGS.num_classes, tf.int32)
        columns[name] = _timed(
            name, trainable, (generator.uniform([batch, size, size, 3], 0, 255), labels), runs, warmup=1
        )
        for key, values in saved.items():
            for variable, value in zip(rows[key].model.weights, values):
                variable.assign(value)
    if FLAGS.compare_xla:
        for base in (f"b1 {size}x{size}", f"train b{FLAGS.train_batch_size} {size}x{size}"):
            with_xla = columns[f"{base} XLA (ms)"]
            columns[f"{base} XLA speed-up"] = {
                key: value / with_xla[key] for key, value in columns[f"{base} (ms)"].items() if key in with_xla
            }
    return columns


def measure_saved_model(row, settings):
    """(in-process serving ms, reloaded SavedModel ms) of the same uint8 -> class ids and
    probabilities function, batch 1 at --image_size, interleaved."""
    import tensorflow as tf

    from hfgd_tf.export import SegmentationServingModel, export_saved_model
    from hfgd_tf.export.saved_model import SERVING_SIGNATURE

    size = settings.image_size
    with tempfile.TemporaryDirectory() as directory:
        export_dir = export_saved_model(row.model, os.path.join(directory, "saved_model"))
        serving = tf.saved_model.load(export_dir).signatures[SERVING_SIGNATURE]
        module = SegmentationServingModel(row.model)  # kept referenced: its tf.function holds it weakly
        in_process = tf.function(module.call, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
        images = tf.cast(tf.random.Generator.from_seed(1).uniform([1, size, size, 3], 0, 255), tf.uint8)
        seconds = _timed(
            "serving b1",
            {"keras tf.function": in_process, "SavedModel": lambda x: serving(images=x)},
            (images,),
            FLAGS.runs,
            2,
        )
        del module
    return seconds["keras tf.function"], seconds["SavedModel"]


def measure_pipeline(settings, policy):
    """[(crop, image size, pipeline images/s, training images/s)] for HFGD OS4 on synthetic records."""
    from hfgd_tf.data.config import DataConfig
    from hfgd_tf.data.synthetic import NUM_CLASSES, write_synthetic_tfrecords
    from hfgd_tf.models import build_model

    results = []
    with tempfile.TemporaryDirectory() as directory:
        for crop, image in settings.pipeline_settings:
            data_dir = write_synthetic_tfrecords(
                os.path.join(directory, f"{image[0]}x{image[1]}"),
                num_train=4,
                num_val=0,
                height=image[0],
                width=image[1],
            )
            config = DataConfig(dataset="synthetic_streets", data_dir=data_dir, crop_height=crop[0], crop_width=crop[1])
            batch = FLAGS.train_batch_size
            pipeline = pipeline_images_per_second(config, batch, FLAGS.pipeline_batches)
            model = build_model(our_config(REFERENCE, num_classes=NUM_CLASSES), dtype_policy=policy)
            training = training_images_per_second(
                model, config, batch, FLAGS.runs, warmup=1, jit_compile=FLAGS.jit_compile
            )
            print(
                f"pipeline {crop[0]}x{crop[1]}: input {pipeline:.2f} images/s, training {training:.2f} images/s",
                flush=True,
            )
            results.append((crop, image, pipeline, training))
    return results


# --- Report ------------------------------------------------------------------------------------------


def _format(value, failed=False, skipped=False):
    if failed or skipped:
        return "failed" if failed else "skipped"
    return "n/a" if value is None else f"{value:.4g}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def machine_description():
    import keras
    import keras_cv
    import tensorflow as tf

    cpu = cpu_model()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    return (
        f"{cpu}, {cores} cores available to the process ({os.cpu_count()} in the machine), "
        f"GPUs: {', '.join(gpus) or 'none'}; Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, keras-cv {keras_cv.__version__}"
    )


def report(rows, columns, saved_model, pipeline, settings):
    names = list(columns)
    values = [
        [r.key, r.description]
        + [_format(columns[c].get(r.key), (c, r.key) in FAILURES, (c, r.key) in SKIPPED) for c in names]
        for r in rows.values()
    ]
    lines = [
        "# Performance: HFGD beside its peers",
        "",
        f"Measured by `scripts/benchmark.py` in one process on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC:",
        "",
        "```",
        "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "```",
        "",
        f"Machine: {machine_description()}.",
        "",
        f"{FLAGS.num_classes} classes; dtype policy {POLICIES[FLAGS.mixed_precision]}; XLA "
        f"{'on' if FLAGS.jit_compile else 'off'}{' (XLA columns: on)' if FLAGS.compare_xla else ''}; our rows on "
        f"`{FLAGS.backbone}`, D={FLAGS.num_channels}. Times are medians of {FLAGS.runs} calls timed round-robin over "
        "the rows (after warm-up), batch-1 and batch-N forward passes returning logits (the backbone row: its "
        f"features); training = one SGD step (forward, backward, apply) at batch {FLAGS.train_batch_size} of a plain "
        "cross entropy summed over the row's logits outputs (the same function for every row; HFGD's include "
        "`logits_high`, whose loss is what trains its backbone; keras-cv's outputs are softmax probabilities, "
        "read as logits: same cost). GFLOPs: `tf.profiler` on the batch-1 graph (multiply-add = 2). "
        "n/a: not applicable (the backbone has no logits to train; keras-cv SegFormer needs the square input it "
        "was built for). skipped: a `--light_rows` row's cell, not measured to keep the run short "
        f"(--light_rows={','.join(FLAGS.light_rows)}).",
        "",
        "Runs of this suite are pages of their own, each with its command on top: `docs/performance.md` (float32, "
        "with and without XLA) and `docs/performance_bfloat16.md` (mixed bfloat16).",
        "",
    ]
    lines += table(["key", "model"] + names, values)
    for peer, title in ((REFERENCE, "HFGD-R50-OS4"), (BACKBONE, "the bare backbone")):
        if peer not in rows:
            continue
        ratio_names = [c for c in names if "speed-up" not in c and columns[c].get(peer)]
        ratio_rows = []
        for row in rows.values():
            ratio_rows.append(
                [row.key, row.description] + [_ratio_cell(columns, c, row.key, peer) for c in ratio_names]
            )
        headers = [re.sub(r" \((ms|M)\)$", "", c) for c in ratio_names]
        lines += ["", f"## Ratio to {title} (`{peer}`), same run", ""] + table(["key", "model"] + headers, ratio_rows)
    if FAILURES:
        lines += ["", "## Failed cells", ""] + [
            f"- `{key}`, {column}: {message}" for (column, key), message in FAILURES.items()
        ]
    lines += targets(rows, columns, saved_model, pipeline, settings)
    if saved_model:
        keras_ms, saved_ms = saved_model
        lines += [
            "",
            "## SavedModel serving latency",
            "",
            f"`{REFERENCE}` exported by `hfgd_tf.export.export_saved_model` and reloaded with `tf.saved_model.load`, "
            f"its `serving_default` (uint8 images -> cast, normalisation, logits, argmax and softmax) against the "
            "same `SegmentationServingModel.call` as a tf.function called in process (the same work), batch 1 at "
            f"{settings.image_size}x{settings.image_size}, interleaved, without XLA (the export has none).",
            "",
            "| function | ms | ratio |",
            "| --- | ---: | ---: |",
            f"| Keras model, in-process tf.function | {_format(keras_ms)} | 1 |",
            f"| reloaded SavedModel | {_format(saved_ms)} | {_format(saved_ms / keras_ms)} |",
        ]
    if pipeline:
        lines += [
            "",
            "## Input pipeline vs training step",
            "",
            f"Training pipeline (`build_train_dataset`, default augmentation, AUTOTUNE calls) on synthetic records "
            f"written for this run, batch {FLAGS.train_batch_size}, {FLAGS.pipeline_batches} batches; training: "
            f"`{REFERENCE}` steps with the project's loss terms at the same crop and batch, random data. Both use "
            "the same cores, one after the other.",
            "",
            "| crop | record image | pipeline images/s | training images/s | pipeline / training |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {c[0]}x{c[1]} | {i[0]}x{i[1]} | {_format(p)} | {_format(t)} | {_format(p / t)} |"
            for c, i, p, t in pipeline
        ]
    return lines


def _ratio_cell(columns, column, key, peer):
    if key in columns[column]:
        return _format(columns[column][key] / columns[column][peer])
    # A failed measurement must not read like "not applicable".
    return "failed" if (column, key) in FAILURES else "n/a"


def targets(rows, columns, saved_model, pipeline, settings):
    """Issue 11's targets that this run can check: (what, measured, limit, met).

    The targets are set for float32 without XLA; other runs say so instead of marking them.
    """
    if FLAGS.mixed_precision != "none" or FLAGS.jit_compile:
        return [
            "",
            "## Targets",
            "",
            "Set for float32 without XLA: checked on that run (`docs/performance.md`), not on this one.",
        ]
    size = settings.image_size
    b1, flops = columns.get(f"b1 {size}x{size} (ms)", {}), columns["GFLOPs"]
    checks = []

    def ratio(column, key, peer):
        if key not in rows or peer not in rows:
            return "not selected"
        return column[key] / column[peer] if key in column and peer in column else None

    checks.append(("HFGD-R50-OS4 GFLOPs / backbone GFLOPs", ratio(flops, REFERENCE, BACKBONE), "<= 1.35"))
    checks.append(("HFGD-R50-OS4 b1 latency / backbone b1 latency", ratio(b1, REFERENCE, BACKBONE), "<= 1.4"))
    checks.append(("OS2 GFLOPs / OS4 GFLOPs", ratio(flops, "hfgd_r50_os2", REFERENCE), "<= 1.1"))
    checks.append(("OS2 b1 latency / OS4 b1 latency", ratio(b1, "hfgd_r50_os2", REFERENCE), "<= 1.1"))
    checks.append(
        ("keras-cv DeepLabV3Plus b1 latency / HFGD-R50-OS4's", ratio(b1, "kcv_deeplabv3plus_r50v2", REFERENCE), ">= 2")
    )
    if saved_model:
        checks.append(("SavedModel / in-process serving latency", saved_model[1] / saved_model[0], "<= 1.1"))
    for crop, _, pipe, train in pipeline:
        checks.append((f"pipeline / training images/s at {crop[0]}x{crop[1]}", pipe / train, ">= 3"))
    lines = ["", "## Targets", "", "| target | measured | limit | met |", "| --- | ---: | ---: | --- |"]
    for what, value, limit in checks:
        if value == "not selected":
            continue
        if value is None:
            # A target whose rows were selected but not measured (a failed cell) is listed, not dropped.
            lines.append(f"| {what} | not measured | {limit} | NO |")
            continue
        operator, bound = limit.split()
        met = value <= float(bound) if operator == "<=" else value >= float(bound)
        lines.append(f"| {what} | {value:.3f} | {limit} | {'yes' if met else 'NO'} |")
    return lines


def main(argv):
    cli_flags.check_output_paths(output=(FLAGS.output, "file"))
    try:
        settings = parse_settings()
    except ValueError as error:
        cli_flags.config_error(error)
    policy = POLICIES[FLAGS.mixed_precision]
    rows = {key: build_row(key, settings.image_size, policy) for key in settings.rows}
    columns = measure_rows(rows, settings)
    saved_model = None
    if FLAGS.saved_model:
        reference = rows.get(REFERENCE) or build_row(REFERENCE, settings.image_size, policy)
        saved_model = measure_saved_model(reference, settings)
    pipeline = measure_pipeline(settings, policy) if settings.pipeline_settings else []
    lines = report(rows, columns, saved_model, pipeline, settings)
    print("\n".join(lines))
    if FLAGS.output:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
        with open(FLAGS.output, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        print(f"Wrote {FLAGS.output}")
