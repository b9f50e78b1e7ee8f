"""The suites of `scripts/benchmark.py`, one module each: `define_flags()` defines the suite's own flags,
`main(argv)` measures and reports. What several suites measure alike is in `hfgd_tf.cli.benchmarking`.

    models   HFGD beside its peers: params, GFLOPs, latency, training step, SavedModel, input headroom
             (docs/performance.md)
    deploy   every export format beside Keras fp32 (the deployment section of docs/performance.md)
    stats    params and GFLOPs of the model zoo (docs/model_zoo.md), optionally forward-time ratios
    input    input pipeline images/s (1 and 2 parallel calls) beside the training rate, real records
    sources  TFRecord vs TFDS input images/s
    train    training steps/s on 1 vs 2 replicas, evaluation time

Only the chosen suite's flags are defined (`define_flags(argv)` reads `--suite` from the command line
first), so each suite keeps its own defaults (e.g. `--batch_size`, `--output`) and `--helpfull` lists
what that suite takes.
"""

import importlib

from absl import app, flags

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


# --- Flags that several suites define alike ----------------------------------------------------------------


def define_zoo_size_flags():
    """`--image_size` and `--num_classes` of the model-zoo measurements (models, deploy, stats)."""
    flags.DEFINE_integer("image_size", 512, "Square input size of the measurements (multiple of 32).")
    flags.DEFINE_integer("num_classes", 59, "Classes of every model (59: Pascal Context, as docs/model_zoo.md).")


def define_records_flags(batch_size_help):
    """The `DataConfig` flags and `--batch_size` of the suites that read records (input, sources)."""
    cli_flags.define_config_flags(cli_flags.DataConfig)
    flags.DEFINE_integer("batch_size", 8, batch_size_help)


def check_no_arguments(argv):
    """Stops with a usage message naming them when positional arguments were given."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
