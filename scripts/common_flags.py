"""Flags shared by the scripts, generated from the config dataclasses so that a flag has its field's name.

Every field of `ModelConfig`, `DataConfig`, `OptimizerConfig`, `TrainConfig` and `EvalConfig` becomes a
flag with the field's default and the help text of its docstring; `*_from_flags()` turn the parsed
flags into configs once, in `main()`. Library code never reads FLAGS.
"""

import dataclasses
import os
import re
import sys
import typing

from absl import flags

# `python scripts/<name>.py` from a source checkout works without installing the package too.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from hfgd_tf.data.config import DataConfig  # noqa: E402
from hfgd_tf.data.registry import dataset_names, get_dataset_info  # noqa: E402
from hfgd_tf.evaluation.config import EvalConfig  # noqa: E402
from hfgd_tf.models.config import ModelConfig  # noqa: E402
from hfgd_tf.train.config import OptimizerConfig, TrainConfig  # noqa: E402

FLAGS = flags.FLAGS

# Fields whose flag default differs from the dataclass (required fields, or derived values).
_FLAG_DEFAULTS = {
    "num_classes": 0,  # 0: take it from the dataset registry
    "dataset": "synthetic_streets",
    "checkpoint_dir": "",
}
_EXTRA_HELP = {
    "num_classes": " 0 takes the dataset's class count.",
    "dataset": f" One of {list(dataset_names())}.",
}


def _field_help(cls):
    """Parses `Attributes:` of a Google-style docstring into {field: help}."""
    helps, current = {}, []
    text = (cls.__doc__ or "").split("Attributes:", 1)[-1]
    for line in text.splitlines():
        match = re.match(r"^\s{8}([a-z_, \n]+):\s*(.*)$", line)
        if match and all(re.fullmatch(r"[a-z_0-9]+", n.strip()) for n in match.group(1).split(",")):
            current = [n.strip() for n in match.group(1).split(",")]
            for name in current:
                helps[name] = match.group(2).strip()
        elif line.strip() and current:
            for name in current:
                helps[name] += " " + line.strip()
    return helps


def _define(cls, defined):
    hints = typing.get_type_hints(cls)
    helps = _field_help(cls)
    for field in dataclasses.fields(cls):
        name = field.name
        if name in defined:
            continue
        default = _FLAG_DEFAULTS.get(name, field.default)
        help_text = f"[{cls.__name__}] " + helps.get(name, name) + _EXTRA_HELP.get(name, "")
        kind = hints[name]
        if kind is bool:
            flags.DEFINE_bool(name, default, help_text)
        elif kind is int:
            flags.DEFINE_integer(name, default, help_text)
        elif kind is float:
            flags.DEFINE_float(name, default, help_text)
        elif kind is tuple:
            flags.DEFINE_list(name, [str(v) for v in default], help_text)
        else:
            flags.DEFINE_string(name, default, help_text)
        defined.add(name)


def define_config_flags(*classes):
    """Defines the flags of the given config classes (shared names such as `seed` are one flag)."""
    defined = set(name for name in FLAGS)
    for cls in classes:
        _define(cls, defined)


def define_all():
    """Flags of every config: what train.py and demo.py take."""
    define_config_flags(ModelConfig, DataConfig, OptimizerConfig, TrainConfig, EvalConfig)


def define_run_flags(with_eval_config=True):
    """Flags of the scripts that work on a finished run directory (evaluate, export, predict)."""
    flags.DEFINE_string("checkpoint_dir", "", "A training run directory (holds run_config.json and checkpoints).")
    flags.DEFINE_string("checkpoint", "best", "'best' (best-mIoU weights), 'latest' or a checkpoint path.")
    if with_eval_config:
        define_config_flags(EvalConfig)


def _parse_numbers(name, value):
    try:
        return tuple(float(v) for v in value)
    except ValueError:
        raise ValueError(
            f"--{name} must be a comma-separated list of numbers, e.g. --{name}=0.75,1.0,1.25. Received: "
            f"--{name}={','.join(value)}"
        ) from None


def _values(cls, stored=None, **overrides):
    """Field values of `cls` from the flags; `stored` (a dict) supplies fields whose flag was not given."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        if stored is not None and field.name in stored and not FLAGS[field.name].present:
            values[field.name] = stored[field.name]
            continue
        value = FLAGS[field.name].value
        if hints[field.name] is tuple:
            value = _parse_numbers(field.name, value)
        values[field.name] = value
    values.update(overrides)
    return values


def data_config_from_flags(**overrides):
    return DataConfig(**_values(DataConfig, **overrides))


def model_config_from_flags():
    num_classes = FLAGS.num_classes or get_dataset_info(FLAGS.dataset, FLAGS.data_dir).num_classes
    return ModelConfig(**_values(ModelConfig, num_classes=num_classes))


def optimizer_config_from_flags(**overrides):
    return OptimizerConfig(**_values(OptimizerConfig, **overrides))


def train_config_from_flags(**overrides):
    return TrainConfig(**_values(TrainConfig, **overrides))


def eval_config_from_flags(stored=None, **overrides):
    """The `EvalConfig` of the flags; with `stored` (the `eval` dict of a run's run_config.json), flags
    not given on the command line take the run's value instead of the flag default."""
    return EvalConfig(**_values(EvalConfig, stored=stored, **overrides))


def check_writable_directory(flag_name, path):
    """Creates `path` if needed and checks that a file can be written in it; exits naming the flag if not."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write_test")
        with open(probe, "w") as handle:
            handle.write("")
        os.remove(probe)
    except OSError as error:
        config_error(f"--{flag_name}={path!r} is not a writable directory: {error.strerror or error}")


def config_error(error):
    """Turns a config ValueError into the message a user sees (no traceback), exit status 2."""
    sys.stderr.write(f"Invalid flags: {error}\n")
    sys.exit(2)


def run_script_prologue(argv):
    """Shared start of the scripts that work on a run directory: checks argv and --checkpoint_dir,
    returns the `EvalConfig` from the flags (or exits with a message naming the bad flag)."""
    if len(argv) > 1:
        config_error(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS.checkpoint_dir:
        config_error("--checkpoint_dir is required (a training run directory)")
    try:
        return eval_config_from_flags()
    except ValueError as error:
        config_error(error)
