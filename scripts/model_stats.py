"""Parameters and FLOPs (counted on the TF graph by the TensorFlow profiler) of the model zoo, written as
a markdown table; optional forward timings reported as ratios to a peer measured in the same process.

    python scripts/model_stats.py                         # rewrite docs/model_zoo.md (512x512, 59 classes)
    python scripts/model_stats.py --time --time_runs=5    # also time HFGD-R50-OS4 vs SemanticFPN-R50
"""

import os
import statistics
import time

from absl import app, flags

import common_flags  # noqa: F401  (puts the repository on sys.path for source checkouts)

flags.DEFINE_integer("image_size", 512, "Square input size for FLOPs and timing.")
flags.DEFINE_integer("num_classes", 59, "Classes (Pascal Context 59 by default).")
flags.DEFINE_string("output", os.path.join("docs", "model_zoo.md"), "Markdown file to write ('' prints only).")
flags.DEFINE_list("models", [], "Subset of model keys (default: all).")
flags.DEFINE_bool("time", False, "Also time the forward pass of --time_models (fp32, batch 1, this device).")
flags.DEFINE_list("time_models", ["hfgd_r50_os4", "sfpn_r50"], "Models to time; ratios are to the last one.")
flags.DEFINE_integer("time_runs", 5, "Timed forward passes per model (after 2 warm-up passes); the median is used.")
FLAGS = flags.FLAGS

# key -> (description, ModelConfig overrides)
MODELS = {
    "hfgd_r50_os4": ("HFGD, ResNet-50, U-SFPN OS4", dict(backbone="resnet50", output_stride=4)),
    "hfgd_r50_os2": ("HFGD, ResNet-50, U-SFPN OS2", dict(backbone="resnet50", output_stride=2)),
    "hfgd_r101_os4": ("HFGD, ResNet-101, U-SFPN OS4", dict(backbone="resnet101", output_stride=4)),
    "hfgd_r101_os2": ("HFGD, ResNet-101, U-SFPN OS2", dict(backbone="resnet101", output_stride=2)),
    "hfgd_convnext_t_os4": ("HFGD, ConvNeXt-T, U-SFPN OS4", dict(backbone="convnext_tiny", output_stride=4)),
    "hfgd_convnext_t_os2": ("HFGD, ConvNeXt-T, U-SFPN OS2", dict(backbone="convnext_tiny", output_stride=2)),
    "hfgd_swin_t_os4": ("HFGD, Swin-T, U-SFPN OS4", dict(backbone="swin_tiny", output_stride=4)),
    "hfgd_swin_t_os2": ("HFGD, Swin-T, U-SFPN OS2", dict(backbone="swin_tiny", output_stride=2)),
    "sfpn_r50": ("SemanticFPN baseline, ResNet-50, OS4", dict(backbone="resnet50", upsampler="sfpn", output_stride=4)),
    "high_level_r50": ("High-level branch only (CAE head, OS32), ResNet-50", dict(backbone="resnet50", upsampler="none")),
    "deeplabv3plus_r50_d8": (
        "DeepLabV3+ baseline, dilated ResNet-50 (OS8)",
        dict(backbone="resnet50", upsampler="deeplabv3plus", backbone_output_stride=8),
    ),
}


def graph_flops(model, size):
    """FLOPs of one forward pass at batch 1 of a `size` (int: square) or `(height, width)` input (the
    profiler counts a multiply-add as 2 FLOPs)."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    height, width = (size, size) if isinstance(size, int) else size
    function = tf.function(lambda images: model(images, training=False))
    graph = function.get_concrete_function(tf.TensorSpec([1, height, width, 3], tf.float32)).graph
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return model_analyzer.profile(graph, options=options).total_float_ops


def forward_seconds(model, size, runs):
    import tensorflow as tf

    images = tf.random.uniform([1, size, size, 3], 0, 255)
    function = tf.function(lambda x: model(x, training=False)["logits"])
    for _ in range(2):
        function(images).numpy()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function(images).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    import keras
    import numpy as np

    from hfgd_tf.models import ModelConfig, build_model

    keys = FLAGS.models or list(MODELS)
    unknown = [k for k in keys + (FLAGS.time_models if FLAGS.time else []) if k not in MODELS]
    if unknown:
        raise app.UsageError(f"Unknown models {unknown}; known: {list(MODELS)}")
    size = FLAGS.image_size
    rows = []
    for key in keys:
        description, overrides = MODELS[key]
        keras.utils.set_random_seed(0)
        model = build_model(ModelConfig(num_classes=FLAGS.num_classes, norm_method="batch_norm", **overrides))
        params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
        flops = graph_flops(model, size)
        rows.append((key, description, params / 1e6, flops / 1e9))
        print(f"{key:24s} {params / 1e6:8.2f} M params  {flops / 1e9:8.1f} GFLOPs")
        keras.backend.clear_session()
    lines = [
        "# Model zoo: parameters and FLOPs",
        "",
        f"Input {size}x{size}x3, batch 1, {FLAGS.num_classes} classes, inference graph (the high-level branch's",
        "auxiliary logits included, as they are computed). FLOPs are counted on the TensorFlow graph by",
        "`tf.profiler` (a multiply-add counts as 2 FLOPs); parameters are trainable weights. Regenerate with",
        "`python scripts/model_stats.py`. HFGD models use D=256, a 1-block transformer CAE.",
        "",
        "| model | key | params (M) | GFLOPs |",
        "| --- | --- | ---: | ---: |",
    ]
    lines += [f"| {d} | `{k}` | {p:.2f} | {f:.1f} |" for k, d, p, f in rows]
    if FLAGS.output:
        with open(FLAGS.output, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        print(f"Wrote {FLAGS.output}")
    if FLAGS.time:
        seconds = {}
        for key in FLAGS.time_models:
            keras.utils.set_random_seed(0)
            model = build_model(ModelConfig(num_classes=FLAGS.num_classes, norm_method="batch_norm", **MODELS[key][1]))
            seconds[key] = forward_seconds(model, size, FLAGS.time_runs)
        peer = FLAGS.time_models[-1]
        timing = [
            "",
            f"## Forward time (fp32, batch 1, {size}x{size}, median of {FLAGS.time_runs}, one process)",
            "",
            f"Ratios are to `{peer}` measured in the same process; absolute seconds depend on the machine.",
            "",
            "| key | seconds | ratio |",
            "| --- | ---: | ---: |",
        ]
        for key, value in seconds.items():
            print(f"forward {key:24s} {value:.3f} s  ({value / seconds[peer]:.2f}x {peer})")
            timing.append(f"| `{key}` | {value:.3f} | {value / seconds[peer]:.2f}x |")
        if FLAGS.output:
            with open(FLAGS.output, "a") as handle:
                handle.write("\n".join(timing) + "\n")


if __name__ == "__main__":
    app.run(main)
