"""`scripts/benchmark.py --suite=stats`: parameters and FLOPs (counted on the TF graph by the TensorFlow
profiler) of the model zoo, written as a markdown table (docs/model_zoo.md); optional forward timings
reported as ratios to a peer measured in the same process.
"""

import os

from absl import app, flags

from hfgd_tf.cli import flags as cli_flags
from hfgd_tf.cli.benchmarking import MODELS, graph_flops, median_seconds
from hfgd_tf.cli.benchmarks import define_zoo_size_flags

FLAGS = flags.FLAGS


def define_flags():
    define_zoo_size_flags()
    flags.DEFINE_string("output", os.path.join("docs", "model_zoo.md"), "Markdown file to write ('' prints only).")
    flags.DEFINE_list("models", [], "Subset of model keys (default: all).")
    flags.DEFINE_bool("time", False, "Also time the forward pass of --time_models (fp32, batch 1, this device).")
    flags.DEFINE_list("time_models", ["hfgd_r50_os4", "sfpn_r50"], "Models to time; ratios are to the last one.")
    flags.DEFINE_integer("time_runs", 5, "Timed forward passes per model (after 2 warm-up passes); the median is used.")


def forward_seconds(model, size, runs):
    import tensorflow as tf

    images = tf.random.uniform([1, size, size, 3], 0, 255)
    function = tf.function(lambda x: model(x, training=False)["logits"])
    return median_seconds({"forward": lambda: function(images)}, runs)["forward"]


def main(argv):
    cli_flags.check_output_paths(output=(FLAGS.output, "file"))
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
        "`python scripts/benchmark.py --suite=stats`. HFGD models use D=256, a 1-block transformer CAE and a U-SFPN head",
        "whose laterals and 3x3 stages are D/2 = 128 wide (`upsampler_num_channels=0`; the SemanticFPN baseline",
        "too), projected to D; the `hfgd_r50_os4_wide_head` row is the D-wide head used before",
        "(`upsampler_num_channels=256`).",
        "Latency, training steps and keras-cv peers: `scripts/benchmark.py` (docs/performance.md).",
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
