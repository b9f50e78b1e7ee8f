"""Benchmarks, each measured in one process and reported as ratios to a peer of the same run (absolute
times depend on the machine). `--suite` picks what is measured; `--suite=X --help` lists its flags.

    python scripts/benchmark.py                                   # --suite=models: writes docs/performance.md
    python scripts/benchmark.py --rows=hfgd_r50_os4,backbone_r50 --runs=3 --output=
    python scripts/benchmark.py --compare_xla                     # also each row under XLA, same process
    python scripts/benchmark.py --mixed_precision=bfloat16 --jit_compile
    python scripts/benchmark.py --suite=deploy --deploy_checkpoint_dir=demo_output/run   # performance.md's deployment section
    python scripts/benchmark.py --suite=stats                     # rewrite docs/model_zoo.md (512x512, 59 classes)
    python scripts/benchmark.py --suite=stats --time --time_runs=5   # also time HFGD-R50-OS4 vs SemanticFPN-R50
    python scripts/benchmark.py --suite=input --dataset=camvid --data_dir=records/camvid --crop_height=352 --crop_width=480
    python scripts/benchmark.py --suite=sources --dataset=camvid --data_dir=records/camvid --tfds_data_dir=tfds_data
    python scripts/benchmark.py --suite=train --dataset=camvid --data_dir=records/camvid --backbone=resnet50

Suites (one module each here: `define_flags()` defines the suite's own flags, `main(argv)` measures and
reports; what several suites measure alike is in `hfgd_tf.cli.benchmarking`):

    models   HFGD beside its peers (keras-cv's DeepLabV3Plus and SegFormer, our baselines, the bare
             backbone): params, GFLOPs, latency, training step, SavedModel serving, input-pipeline headroom
    deploy   every export format (SavedModel, LiteRT, ONNX Runtime, OpenVINO) beside Keras fp32
    stats    params and GFLOPs of the model zoo; --time adds forward-time ratios
    input    input pipeline images/s (1 and 2 parallel calls) beside the training rate, on real records
             (scripts/convert_tfrecord.py)
    sources  TFRecord vs TFDS input images/s (scripts/build_tfds.py)
    train    training steps/s on 1 vs 2 replicas, evaluation time; takes every scripts/train.py flag

Only the chosen suite's flags are defined (`define_flags(argv)` reads `--suite` from the command line
first), so each suite keeps its own defaults (e.g. `--batch_size`, `--output`) and `--help` lists
what that suite takes.
"""

import importlib
import sys

from absl import flags

from hfgd_tf.cli import flags as cli_flags  # expands --flagfile in sys.argv before --suite is read

SUITES = ("models", "deploy", "stats", "input", "sources", "train")
DEFAULT_SUITE = "models"
FLAGS = flags.FLAGS


def suite_name(argv):
    """The `--suite` of a command line (the last one given), the default when absent."""
    name = DEFAULT_SUITE
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument == "--":
            break
        if argument in ("--suite", "-suite"):
            name = next(arguments, name)
        elif argument.startswith(("--suite=", "-suite=")):
            name = argument.split("=", 1)[1]
    return name


def define_flags(argv):
    """Defines `--suite` and the flags of the suite `argv` names; returns that suite's module.

    An unknown suite defines the default suite's flags: absl then rejects the `--suite` value, naming it.
    """
    name = suite_name(argv)
    flags.DEFINE_enum("suite", DEFAULT_SUITE, list(SUITES), "What to measure (see scripts/benchmark.py).")
    module = importlib.import_module(f"{__name__}.{name if name in SUITES else DEFAULT_SUITE}")
    module.define_flags()
    return module


def run():
    """`hfgd-benchmark` (installed with the package) and `python scripts/benchmark.py`."""
    suite = define_flags(sys.argv)
    cli_flags.run_command(suite.main, __doc__)


# --- Flags that several suites define alike ----------------------------------------------------------------


def define_zoo_size_flags():
    """`--image_size` and `--num_classes` of the model-zoo measurements (models, deploy, stats)."""
    flags.DEFINE_integer("image_size", 512, "Square input size of the measurements (multiple of 32).")
    flags.DEFINE_integer("num_classes", 59, "Classes of every model (59: Pascal Context, as docs/model_zoo.md).")


def define_records_flags(batch_size_help):
    """The `DataConfig` flags and `--batch_size` of the suites that read records (input, sources)."""
    cli_flags.define_config_flags(cli_flags.DataConfig)
    flags.DEFINE_integer("batch_size", 8, batch_size_help)
