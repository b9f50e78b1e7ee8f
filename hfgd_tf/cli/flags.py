"""Flags shared by the scripts, generated from the config dataclasses so that a flag has its field's name.

Every field of `ModelConfig`, `DataConfig`, `OptimizerConfig`, `TrainConfig` and `EvalConfig` becomes a
flag with the field's default and the help text of its docstring; `*_from_flags()` turn the parsed
flags into configs once, in `main()`. Library code never reads FLAGS.
"""

import dataclasses
import json
import os
import re
import sys
import typing

from absl import app, flags

from hfgd_tf.cli.startup import import_tensorflow_quietly

import_tensorflow_quietly()  # before anything imports TensorFlow

from hfgd_tf.data.config import DataConfig  # noqa: E402
from hfgd_tf.data.registry import dataset_names, get_dataset_info  # noqa: E402
from hfgd_tf.evaluation.config import EvalConfig  # noqa: E402
from hfgd_tf.models.config import ModelConfig  # noqa: E402
from hfgd_tf.train.config import OptimizerConfig, TrainConfig  # noqa: E402

FLAGS = flags.FLAGS


def _flagfile_argument(argument):
    """The path of a `--flagfile=PATH` / `-flagfile=PATH` argument, or None."""
    for prefix in ("--flagfile=", "-flagfile="):
        if argument.startswith(prefix):
            return argument[len(prefix) :]
    return None


def _flagfile_lines(path, including, stack):
    """The flag lines of flagfile `path`, its own includes expanded (see `expand_flagfiles`)."""
    candidates = [path] if os.path.isabs(path) else []
    if not candidates:
        if including:
            candidates.append(os.path.join(os.path.dirname(including), path))
        candidates.append(os.path.abspath(path))
    found = next((c for c in candidates if os.path.isfile(c)), None)
    if found is None:
        where = f" (included from {including})" if including else ""
        raise ValueError(f"--flagfile={path}{where}: no such file; looked for {', '.join(dict.fromkeys(candidates))}")
    found = os.path.realpath(found)
    if found in stack:
        raise ValueError(f"--flagfile={path}: includes itself ({' -> '.join(stack + [found])})")
    lines = []
    with open(found) as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith(("#", "//")):
                continue
            include = _flagfile_argument(line)
            if include is not None:
                lines.extend(_flagfile_lines(include, found, stack + [found]))
            else:
                lines.append(line)
    return lines


def expand_flagfiles(argv):
    """`argv` with every `--flagfile=PATH` replaced by the flags that file holds, in place (later flags win).

    absl resolves a `--flagfile=` line inside a flagfile against the working directory, so an experiment that
    includes its dataset's flagfile would only work from the directory it was written for. Here an include
    is looked up next to the file that includes it first (experiments include `--flagfile=base.cfg`), then
    against the working directory (absl's rule, for flagfiles written for it); a path on the command line is
    relative to the working directory as usual. Missing or circular includes raise ValueError naming them.
    """
    expanded, index = [], 0
    while index < len(argv):
        argument = argv[index]
        path = _flagfile_argument(argument)
        if path is None and argument in ("--flagfile", "-flagfile") and index + 1 < len(argv):
            path, index = argv[index + 1], index + 1
        if path is None:
            expanded.append(argument)
        else:
            expanded.extend(_flagfile_lines(os.path.expanduser(path), None, []))
        index += 1
    return expanded


def _expand_command_line_flagfiles():
    # The scripts parse sys.argv in app.run(), after importing this module.
    try:
        sys.argv[:] = expand_flagfiles(sys.argv)
    except ValueError as error:
        sys.stderr.write(f"Invalid flags: {error}\n")
        sys.exit(2)


_expand_command_line_flagfiles()

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


# --- TFDS data source and keras-cv / keras-hub backbones ---
# --data_source, --tfds_name, --tfds_data_dir (DataConfig) and --backbone_kwargs, --backbone_preset_dir
# (ModelConfig) are generated from the dataclasses like every other flag. A folder dataset read from TFDS
# takes its class count from the TFDS metadata rather than from data_dir's manifest.
def _dataset_num_classes():
    translated = _authors_overrides()
    dataset, data_dir = translated.get("dataset", FLAGS.dataset), translated.get("data_dir", FLAGS.data_dir)
    if dataset == "folder" and "data_source" in FLAGS and FLAGS.data_source == "tfds":
        return data_config_from_flags().info.num_classes
    return get_dataset_info(dataset, data_dir).num_classes


def _field_help(cls):
    """Parses `Attributes:` of a Google-style docstring into {field: help}.

    An entry starts at 8 spaces with `name: text` or `name_a, name_b: text` (a list of names may
    continue on the next lines when a line ends with a comma); deeper-indented lines continue the text.
    """
    helps, current, pending = {}, [], []
    text = (cls.__doc__ or "").split("Attributes:", 1)[-1]
    for line in text.splitlines():
        names_only = re.match(r"^\s{8}((?:[a-z][a-z_0-9]*,\s*)+)$", line)
        match = re.match(r"^\s{8}([a-z][a-z_0-9, ]*):\s*(.*)$", line)
        if names_only:
            pending += [n.strip() for n in names_only.group(1).split(",") if n.strip()]
        elif match and all(re.fullmatch(r"[a-z][a-z_0-9]*", n.strip()) for n in match.group(1).split(",")):
            current = pending + [n.strip() for n in match.group(1).split(",")]
            pending = []
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


def define_all(mode="train"):
    """Flags of every config: what train.py and demo.py take (plus the authors' names, `mode` theirs)."""
    define_config_flags(ModelConfig, DataConfig, OptimizerConfig, TrainConfig, EvalConfig)
    define_authors_flags(mode)


def define_verify_records_flag():
    """`--verify_records`: the scripts that read records also check their SHA-256 sums at start."""
    flags.DEFINE_bool(
        "verify_records",
        False,
        "At start, also compare every shard's SHA-256 with the records' manifest.json (reads every byte once). "
        "The shard list and sizes are always compared.",
    )


def define_cluster_flags():
    """`--worker_hosts`/`--task_index`: write TF_CONFIG for --strategy=multi_worker (train, evaluate)."""
    flags.DEFINE_string(
        "worker_hosts",
        "",
        "--strategy=multi_worker: comma-separated host:port of every worker, the same list on each (worker 0 is "
        "the chief); written to the TF_CONFIG environment variable. Leave empty when TF_CONFIG is set already.",
    )
    flags.DEFINE_integer(
        "task_index", -1, "--strategy=multi_worker: this worker's position in --worker_hosts (0 is the chief)."
    )


def configure_workers_from_flags(strategy):
    """Writes TF_CONFIG from --worker_hosts/--task_index (raises ValueError naming the flags)."""
    from hfgd_tf.train.distribute import configure_workers

    configure_workers(FLAGS.worker_hosts, FLAGS.task_index, strategy)


def define_run_flags(with_eval_config=True, mode=None):
    """Flags of the scripts that work on a finished run directory (evaluate, export, predict).

    They also take every training flag, so that the experiment's flagfile serves training and evaluation
    alike, as the authors' `train.py` / `eval.py`: the model and data come from the run's
    `run_config.json`, and a model or data flag that disagrees with it is an error (`check_flags_match_run`).
    """
    flags.DEFINE_string("checkpoint_dir", "", "A training run directory (holds run_config.json and checkpoints).")
    flags.DEFINE_string("checkpoint", "best", "'best' (best-mIoU weights), 'latest' or a checkpoint path.")
    if with_eval_config:
        define_config_flags(EvalConfig)
    define_config_flags(ModelConfig, DataConfig, OptimizerConfig, TrainConfig)
    if "worker_hosts" not in FLAGS:  # a multi-worker training flagfile's cluster flags (used by evaluate.py)
        define_cluster_flags()
    define_authors_flags(mode or "val")


# Model and data fields that only shape training (initial weights, augmentation, the training split and
# input order): a shared flagfile may set them to anything without changing what a run script restores.
TRAINING_ONLY_FIELDS = frozenset(
    {
        # Initial weights (a preset dir also sets the architecture: compared), regularisers, and the
        # stop-gradients, which change gradients only: the restored forward pass is the same.
        "backbone_weights_path",
        "drop_path_rate",
        "bn_momentum",
        "stop_gradient_backbone",
        "stop_gradient_guidance",
        "stop_gradient_class_kernels",
        "train_split",
        "crop_height",
        "crop_width",
        "min_scale",
        "max_scale",
        "scale_step",
        "random_brightness",
        "brightness_max_delta",
        "photo_metric_distortion",
        "random_flip",
        "shuffle_buffer",
        "num_parallel_calls",
        "deterministic",
        "seed",
    }
)


def run_script_flag_names():
    """The training flags a run script accepts for a shared flagfile (for docs/flags.md)."""
    names = set()
    for cls in (ModelConfig, DataConfig, OptimizerConfig, TrainConfig):
        names |= {field.name for field in dataclasses.fields(cls)}
    return names


def _comparable(name, value):
    if isinstance(value, (list, tuple)):
        return [_comparable(name, v) for v in value]
    if name in ("data_dir", "tfds_data_dir", "backbone_preset_dir") and value and "://" not in value:
        return os.path.abspath(value)
    if name == "backbone_kwargs" and value:
        try:
            return json.loads(value)  # the same JSON, spaced differently, is the same backbone
        except ValueError:
            return value
    return value


def _as_given(name, value, translated):
    """The flag as the user gave it: ours, or the authors' flag it was translated from (with our value)."""
    source = translated[name][1] if name in translated else ""
    if not source:
        return f"--{name}={value}"
    if "=" not in source:  # e.g. --camvid_path: its value is ours
        return f"{source}={value}"
    return f"{source} (i.e. {name}={value})"


def check_flags_match_run(checkpoint_dir):
    """Raises ValueError naming the flag when a model or data flag given to a run script differs from the run.

    The run script restores the model and data the run was trained with (its run_config.json); a differing
    flag would otherwise be ignored in silence. Optimizer, schedule and training-only fields are not compared.
    """
    from hfgd_tf.train.checkpoints import RUN_CONFIG, read_run_config

    translated = _authors_overrides(with_sources=True)
    checks = []
    for cls in (ModelConfig, DataConfig):
        given = [
            f.name
            for f in dataclasses.fields(cls)
            if (_present(f.name) or f.name in translated) and f.name not in TRAINING_ONLY_FIELDS
        ]
        checks.append((cls, given))
    if not any(given for _, given in checks):
        return
    model, data, _ = read_run_config(checkpoint_dir)
    # num_classes not given: the run's (deriving it from the dataset would need a folder dataset's
    # manifest, which need not be where the records were at training time).
    num_classes = FLAGS.num_classes or model.num_classes
    # Field values, not configs: a config built from a shared flagfile's partial flags may not validate
    # (e.g. one crop side given), and only the given fields are compared.
    from_flags = {ModelConfig: _values(ModelConfig, num_classes=num_classes), DataConfig: _values(DataConfig)}
    stored = {ModelConfig: model, DataConfig: data}
    differing = []
    for cls, given in checks:
        for name in given:
            flag_value, run_value = from_flags[cls][name], getattr(stored[cls], name)
            if _comparable(name, flag_value) != _comparable(name, run_value):
                differing.append((name, flag_value, run_value))
    if differing:
        # Every difference in one message: fixing them one run at a time would take as many attempts.
        listed = "; ".join(
            f"{_as_given(name, flag_value, translated)} differs from the run's {name}={run_value}"
            for name, flag_value, run_value in differing
        )
        hint = (
            " (--eval_data_dir reads the evaluation records from elsewhere)"
            if any(name == "data_dir" for name, _, _ in differing) and "eval_data_dir" in FLAGS
            else ""
        )
        raise ValueError(
            f"{len(differing)} model/data flag{'s' if len(differing) > 1 else ''} given here disagree"
            f"{'' if len(differing) > 1 else 's'} with {os.path.join(checkpoint_dir, RUN_CONFIG)}: {listed}. This script restores the model and data the "
            f"run was trained with; drop these flags, give the run's own values, or point --checkpoint_dir at the "
            f"run that matches{hint}"
        )


# ==== The authors' flag names ========================================================
# Their users' flagfiles run here. Three kinds, all listed in docs/flags.md:
# - AUTHORS_ALIASES: the same meaning under another name -> an absl alias of our flag;
# - translated flags: a small conversion into our fields (`_authors_overrides`);
# - unsupported flags: accepted with their harmless value, otherwise a ValueError naming the flag and
#   what to use (`_UNSUPPORTED`).
# Flags they share with us by name (train_epoch, epoch_steps, initial_lr, end_lr, decay_strategy,
# sgd_momentum_rate, bn_epsilon, eval_crop_height/width, restore_checkpoint, max_checkpoints_to_keep, ...)
# are ours already; AUTHORS_SAME_NAMES lists them with the notes where a default or meaning differs.

AUTHORS_ALIASES = {
    "gpu_batch_size": "batch_size",
    "eval_gpu_batch_size": "eval_batch_size",
    "scale_rates": "eval_scales",
    "sliding_window_crop_height": "sliding_window_height",
    "sliding_window_crop_width": "sliding_window_width",
    "tpu_name": "tpu",
    "random_seed": "seed",
    "global_norm_method": "norm_method",
    "shuffle": "shuffle_buffer",
}
AUTHORS_CONVERTER_ALIASES = {"convert_datasets": "dataset", "tfrecord_outputs": "output_dir"}  # convert_tfrecord.py
AUTHORS_SAME_NAMES = {
    "checkpoint_dir": "",
    "restore_checkpoint": "",
    "max_checkpoints_to_keep": "",
    "training_progress_bar": "their default is on, ours off",
    "mixed_precision": "also takes their true/false: true picks bfloat16 on a TPU or Ampere+ GPU, float16 on "
    "older GPUs, none on CPU; false is none",
    "crop_height": "",
    "crop_width": "",
    "eval_crop_height": "",
    "eval_crop_width": "",
    "random_brightness": "",
    "photo_metric_distortion": "",
    "train_epoch": "total steps = train_epoch * epoch_steps, as theirs",
    "epoch_steps": "",
    "backbone": "our backbone names (docs/model_zoo.md)",
    "output_stride": "DIFFERENT meaning: ours is the upsampler's output stride; theirs (the backbone's, by "
    "dilation) is --backbone_output_stride",
    "bn_momentum": "their default 0.9997, ours 0.99 (same Keras semantics)",
    "bn_epsilon": "",
    "weight_decay": "also the AdamW decay (see --adamw_weight_decay)",
    "decay_norm_vars": "",
    "optimizer": "sgd or adamw (their adam/amsgrad are not offered)",
    "initial_lr": "",
    "end_lr": "",
    "decay_strategy": "none, poly (power --poly_power, 0.9) or cosine; warmup --warmup_steps",
    "sgd_momentum_rate": "",
    "flip": "",
}
# For docs/flags.md: the translated flags, what they become.
AUTHORS_TRANSLATED = {
    "<dataset>_path": (
        "--data_dir",
        "the one of the dataset chosen by --dataset / --train_datasets; the others are ignored",
    ),
    "<backbone>_weights_path": ("--backbone_weights_path", "the one of the chosen --backbone; the others are ignored"),
    "train_datasets": ("--dataset", "exactly one dataset"),
    "val_datasets": ("--dataset", "must name the training dataset (evaluation reads its --eval_split)"),
    "compress": (
        "--compression",
        "true -> ZLIB, false -> '' (uncompressed records); scripts/convert_tfrecord.py has --compress itself",
    ),
    "adamw_weight_decay": ("--weight_decay", "when --optimizer=adamw (ignored otherwise, as theirs)"),
    "mode": (
        "(the script)",
        "train.py accepts train, evaluate.py val, predict.py test_dir; evaluate, export and predict also accept "
        "train (a training flagfile they share); other values name the script to use",
    ),
    "gpu_memory_growth": ("(runtime)", "tf.config.experimental.set_memory_growth on every GPU"),
    "soft_device_placement": ("(runtime)", "tf.config.set_soft_device_placement"),
}
_TRUE, _FALSE = ("true", "1", "yes", "t", "y"), ("false", "0", "no", "f", "n", "")


def _data_path_flags():
    return {f"{name}_path": name for name in dataset_names()}


def _weights_path_flags():
    from hfgd_tf.backbones import BACKBONE_PRESETS

    return {f"{name}_weights_path": name for name in sorted(BACKBONE_PRESETS)}


# name -> (define function, default, help, accepted values (a given other value fails; None: see
# `_authors_overrides`), what to use)
_UNSUPPORTED = {
    "use_tfrecord": (
        flags.DEFINE_bool,
        True,
        "Authors' flag: records are always TFRecords.",
        (True,),
        "convert the raw folders with scripts/convert_tfrecord.py and give --data_dir",
    ),
    "trainval": (
        flags.DEFINE_bool,
        False,
        "Authors' flag: train on train + val.",
        (False,),
        "convert train and val into one split (e.g. --split=trainval) and set --train_split=trainval",
    ),
    "aux_loss": (
        flags.DEFINE_bool,
        False,
        "Authors' flag: auxiliary FCN head.",
        (False,),
        "HFGD has no auxiliary head; its high-level branch loss is weighted by --high_loss_weight",
    ),
    "aux_loss_rate": (
        flags.DEFINE_float,
        0.2,
        "Authors' flag: weight of the auxiliary head's loss.",
        None,
        "--high_loss_weight (weight of HFGD's high-level loss)",
    ),
    "backbone_bn_momentum": (
        flags.DEFINE_float,
        None,
        "Authors' flag: BN momentum of the backbone only.",
        None,
        "--bn_momentum (one momentum for the whole model)",
    ),
    "initial_epoch": (
        flags.DEFINE_integer,
        0,
        "Authors' flag: epoch to start at.",
        (0,),
        "rerun the same command: training resumes from the last checkpoint in --checkpoint_dir",
    ),
    "tensorboard_dir": (
        flags.DEFINE_string,
        "",
        "Authors' flag: TensorBoard log directory.",
        ("",),
        "TensorBoard logs go to <--checkpoint_dir>/logs (tensorboard --logdir=<checkpoint_dir>/logs)",
    ),
}


UNSUPPORTED_ACCEPTED = {
    "aux_loss_rate": "any value while --aux_loss is off",
    "backbone_bn_momentum": "the --bn_momentum value",
}


def authors_expanded_names():
    """Every `<dataset>_path` and `<backbone>_weights_path` flag name."""
    return sorted(_data_path_flags()) + sorted(_weights_path_flags())


def define_authors_flags(mode=None):
    """Defines the authors' names whose targets this script has (call after defining its own flags).

    Args:
        mode: str or None. The authors' `--mode` value this script stands for ("train" for train.py,
            "val" for evaluate.py); None leaves `--mode` undefined.
    """
    converter = "examples_per_shard" in FLAGS
    for theirs, ours in (AUTHORS_CONVERTER_ALIASES if converter else AUTHORS_ALIASES).items():
        if ours in FLAGS and theirs not in FLAGS:
            flags.DEFINE_alias(theirs, ours)
    if mode is not None:
        flags.DEFINE_string("mode", mode, f"Authors' flag: train, val or test_dir; this script is {mode!r}.")
    if "data_dir" in FLAGS and "dataset" in FLAGS and "batch_size" in FLAGS:  # the training scripts
        for name, dataset in _data_path_flags().items():
            flags.DEFINE_string(name, None, f"Authors' flag: --data_dir when --dataset={dataset}.")
        for name, backbone in _weights_path_flags().items():
            flags.DEFINE_string(name, None, f"Authors' flag: --backbone_weights_path when --backbone={backbone}.")
        flags.DEFINE_list("train_datasets", None, "Authors' flag: the training dataset, i.e. --dataset (one).")
        flags.DEFINE_list(
            "val_datasets", None, "Authors' flag: the evaluation dataset; must be --dataset (its --eval_split)."
        )
        flags.DEFINE_bool("compress", None, "Authors' flag: ZLIB-compressed records, i.e. --compression=ZLIB (or '').")
        flags.DEFINE_float("adamw_weight_decay", None, "Authors' flag: --weight_decay when --optimizer=adamw.")
        flags.DEFINE_bool("gpu_memory_growth", True, "Authors' flag: allocate GPU memory as needed.")
        flags.DEFINE_bool("soft_device_placement", True, "Authors' flag: let TF place ops without a kernel on CPU.")
        for name, (define, default, help_text, _, use) in _UNSUPPORTED.items():
            define(name, default, f"{help_text} Not supported: {use}.")


def _present(name):
    return name in FLAGS and FLAGS[name].present


def _set_once(overrides, field, value, given_as):
    """Records a translated value; the same field given two ways with different values is an error."""
    ours_given = _present(field) and FLAGS[field].value != value
    previous = overrides.get(field)
    if ours_given or (previous is not None and previous[0] != value):
        other = previous[1] if previous is not None else f"--{field}={FLAGS[field].value}"
        raise ValueError(f"{given_as} conflicts with {other}: give one of them")
    overrides[field] = (value, given_as)


def _authors_overrides(with_sources=False):
    """Our field values from the authors' translated flags; raises ValueError on unsupported values.

    With `with_sources`, `{field: (value, the flag it was given as)}`.
    """
    overrides = {}
    # A run script (evaluate, export, predict: they define --checkpoint) accepts the `--mode=train` of a
    # training flagfile it shares: that flagfile names the run, the script does its own job.
    run_script_mode = "checkpoint" in FLAGS and _present("mode") and FLAGS.mode == "train"
    if _present("mode") and FLAGS.mode != FLAGS["mode"].default and not run_script_mode:
        use = {
            "train": "scripts/train.py",
            "val": "scripts/evaluate.py",
            "test_dir": "scripts/predict.py --input=<dir>",
        }
        raise ValueError(
            f"--mode={FLAGS.mode}: each mode is its own script here; use {use.get(FLAGS.mode, list(use.values()))}"
        )
    if "train_datasets" not in FLAGS:
        return {}
    for name, (_, _, _, accepted, use) in _UNSUPPORTED.items():
        if _present(name) and (accepted is None or FLAGS[name].value not in accepted):
            if name == "aux_loss_rate" and not FLAGS.aux_loss:
                continue  # the rate of a head that is off changes nothing
            if name == "backbone_bn_momentum" and FLAGS[name].value == FLAGS.bn_momentum:
                continue
            raise ValueError(f"--{name}={FLAGS[name].value} (the authors' flag) is not supported: {use}")
    if _present("train_datasets"):
        names = FLAGS.train_datasets
        if len(names) != 1 or names[0] not in dataset_names():
            raise ValueError(
                f"--train_datasets={','.join(names)}: give one dataset of {list(dataset_names())} "
                f"(to train on several, convert them into one folder dataset)"
            )
        _set_once(overrides, "dataset", names[0], f"--train_datasets={names[0]}")
    dataset = overrides.get("dataset", (FLAGS.dataset,))[0]
    if _present("val_datasets") and FLAGS.val_datasets != [dataset]:
        raise ValueError(
            f"--val_datasets={','.join(FLAGS.val_datasets)}: evaluation uses --dataset={dataset}'s --eval_split"
        )
    for name, target in _data_path_flags().items():
        if _present(name) and target == dataset:
            _set_once(overrides, "data_dir", FLAGS[name].value, f"--{name}")
    for name, target in _weights_path_flags().items():
        if _present(name) and target == FLAGS.backbone:
            _set_once(overrides, "backbone_weights_path", FLAGS[name].value, f"--{name}")
    if _present("compress"):
        _set_once(overrides, "compression", "ZLIB" if FLAGS.compress else "", f"--compress={FLAGS.compress}")
    if _present("adamw_weight_decay") and FLAGS.optimizer == "adamw":
        _set_once(overrides, "weight_decay", FLAGS.adamw_weight_decay, "--adamw_weight_decay")
    value = FLAGS.mixed_precision.lower()
    if value in _TRUE + _FALSE:
        overrides["mixed_precision"] = (_mixed_precision_for_devices() if value in _TRUE else "none", "")
    if with_sources:
        return overrides
    return {field: value for field, (value, _) in overrides.items()}


def check_authors_flags():
    """Raises ValueError for an unsupported authors' flag value or a wrong `--mode`.

    Building a config checks them too; this is for a path that builds none (predict.py --saved_model).
    """
    _authors_overrides()


def _mixed_precision_for_devices():
    """The authors' `--mixed_precision=True`: bfloat16 on a TPU or Ampere+ GPUs, float16 on older GPUs."""
    import tensorflow as tf

    if FLAGS.tpu:
        return "bfloat16"
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "none"
    capability = min(tf.config.experimental.get_device_details(g).get("compute_capability", (0, 0)) for g in gpus)
    return "bfloat16" if capability >= (8, 0) else "float16"


def apply_authors_runtime_flags():
    """`--gpu_memory_growth` and `--soft_device_placement` (process-wide TF settings, as theirs)."""
    if "gpu_memory_growth" not in FLAGS:
        return
    import tensorflow as tf

    tf.config.set_soft_device_placement(FLAGS.soft_device_placement)
    if FLAGS.gpu_memory_growth:
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)


# ==== end of the authors' flag names ===============================================================


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
    translated = _authors_overrides()
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in translated:
            value = translated[field.name]
        elif stored is not None and field.name in stored and not FLAGS[field.name].present:
            values[field.name] = stored[field.name]
            continue
        else:
            value = FLAGS[field.name].value
        if hints[field.name] is tuple:
            value = _parse_numbers(field.name, value)
        values[field.name] = value
    values.update(overrides)
    return values


def data_config_from_flags(**overrides):
    return DataConfig(**_values(DataConfig, **overrides))


def model_config_from_flags():
    num_classes = FLAGS.num_classes or _dataset_num_classes()
    return ModelConfig(**_values(ModelConfig, num_classes=num_classes))


def optimizer_config_from_flags(**overrides):
    return OptimizerConfig(**_values(OptimizerConfig, **overrides))


def train_config_from_flags(**overrides):
    return TrainConfig(**_values(TrainConfig, **overrides))


def eval_config_from_flags(stored=None, **overrides):
    """The `EvalConfig` of the flags; with `stored` (the `eval` dict of a run's run_config.json), flags
    not given on the command line take the run's value instead of the flag default."""
    return EvalConfig(**_values(EvalConfig, stored=stored, **overrides))


def stored_eval_protocol(run):
    """The evaluation protocol a run was trained with (the `eval` dict of its run_config.json, read by
    `read_run_config`), for `eval_config_from_flags(stored=...)`. The eval batch is left out: it depends on
    the machine's replicas, so it always comes from the flags."""
    return {key: value for key, value in run.get("eval", {}).items() if key != "eval_batch_size"}


# The EvalConfig flags that shape the prediction itself (the eval batch only groups images).
PROTOCOL_FLAGS = ("eval_scales", "flip", "sliding_window_height", "sliding_window_width", "scored_output")


def flag_text(name, value):
    """`--name=value` as a user types it (booleans lower-case, lists comma-separated)."""
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return f"--{name}={value}"


def _flag_text(name):
    return flag_text(name, FLAGS[name].value)


def _with_or_without(flip):
    return "with" if flip else "without"


def check_export_protocol_flags(export_dir, flag_name, stored=None):
    """Exits naming the flag when a protocol flag given (command line or flagfile; experiments/base.cfg sets
    --eval_scales and --flip) asks an export for what it does not run, so that the flag is not silently ignored.

    An export runs the scales and flip baked into it at export (`assets/inference.json`), never a sliding
    window, and serves the prediction's logits (`--scored_output=logits`). The order of the scales does not
    matter (their logits are averaged); a repeated scale does (it weighs more).

    Args:
        export_dir: str. The export directory given as `--<flag_name>`.
        flag_name: str. The script's flag naming the export ("saved_model" for predict.py, "exported" for
            evaluate.py), for the messages.
        stored: dict or None. The run's protocol (`stored_eval_protocol`): the values of the protocol flags
            not given, as `evaluate.py` scores a checkpoint; None takes the flag defaults.
    """
    from hfgd_tf.export import read_export_inference

    given = [name for name in PROTOCOL_FLAGS if FLAGS[name].present]
    if not given:
        return
    try:
        wanted = eval_config_from_flags(stored=stored)
        baked = read_export_inference(export_dir)
    except ValueError as error:
        config_error(error)
    export = f"--{flag_name}={export_dir!r}"
    checkpoint = f"use the checkpoint instead (--checkpoint_dir without --{flag_name})"
    windows = [name for name in given if name.startswith("sliding_window")]
    if windows and wanted.sliding_window_height:
        config_error(
            f"{' '.join(_flag_text(name) for name in windows)} (command line or flagfile) asks for sliding-window "
            f"inference, but {export} supports whole-image inference only (no export runs sliding windows: their "
            f"windows need static sizes): add --sliding_window_height=0 --sliding_window_width=0, or {checkpoint}"
        )
    if "scored_output" in given and wanted.scored_output != "logits":
        config_error(
            f"{_flag_text('scored_output')} (command line or flagfile): {export} supports --scored_output=logits "
            f"only (an export serves the prediction): drop the flag, or {checkpoint}"
        )
    scale_flags = [name for name in given if name in ("eval_scales", "flip")]
    if not scale_flags:
        return
    asked = f"{' '.join(_flag_text(name) for name in scale_flags)} (command line or flagfile)"
    if baked is None:
        config_error(
            f"{asked} given, but {export} does not record the scales and flip baked into it (an export written "
            "before they were recorded): export it again (scripts/export.py, with the same flags), or drop those flags"
        )
    if (sorted(wanted.eval_scales), wanted.flip) != (sorted(baked["eval_scales"]), baked["flip"]):
        config_error(
            f"{asked} asks for scales {list(wanted.eval_scales)} {_with_or_without(wanted.flip)} flip, but {export} "
            f"supports scales {baked['eval_scales']} {_with_or_without(baked['flip'])} flip only (baked in at "
            "export): give those values or drop the flags, export again with these (scripts/export.py; several "
            f"scales or flip need --format=saved_model), or {checkpoint}"
        )


def parent_directory(path):
    """The directory holding `path`: absolute for local paths, as given for `scheme://` ones (gs://...)."""
    return os.path.dirname(path) if "://" in path else os.path.dirname(os.path.abspath(path))


def absolute_path(path):
    """`path` made absolute and free of symlinks for local paths; `scheme://` ones (gs://...) as given but
    for a trailing slash, so that two spellings of one directory compare equal."""
    return path.rstrip("/") if "://" in path else os.path.realpath(path)


def check_output_paths(**paths):
    """Checks each output flag's path before any work starts; exits naming the flag and the reason.

    Args:
        **paths: flag name -> `(path, kind)` with kind "directory" or "file" (`hfgd_tf.files.check_output_paths`).
    """
    from hfgd_tf.files import check_output_paths as check

    try:
        check(paths)
    except ValueError as error:
        config_error(error)


def check_writable_directory(flag_name, path):
    """Checks that `path` is, or can be created as, a directory we can write in; exits naming the flag
    if not (see `check_output_paths`)."""
    check_output_paths(**{flag_name: (path or ".", "directory")})


def config_error(error):
    """Turns a config ValueError into the message a user sees (no traceback), exit status 2."""
    sys.stderr.write(f"Invalid flags: {error}\n")
    sys.exit(2)


# absl's flags that print the usage and the command's flags.
HELP_FLAGS = ("help", "?", "helpshort")


def run_command(main, usage):
    """Runs a command's `main(argv)` under absl, with `usage` (the command module's docstring) as the text
    `--help` prints.

    absl prints the docstring of the `__main__` module: a short wrapper's for `python scripts/<command>.py`,
    none for the console command pip generates (`hfgd-train`), so the command's own is put there. `--help`
    lists the flags absl files under the program's name (`sys.argv[0]`): when help is asked for, every flag
    of this package the command defined (in its module or its suite) is filed there too; absl's own stay under
    `--helpfull`. Only then: absl also prints that list before a usage error, which would bury the error.
    No command takes positional arguments: any stops the command with a usage error naming them.
    """
    sys.modules["__main__"].__doc__ = usage
    if any(argument.lstrip("-").split("=")[0] in HELP_FLAGS for argument in sys.argv[1:] if argument.startswith("-")):
        for module_name, module_flags in FLAGS.flags_by_module_dict().items():
            if module_name.startswith("hfgd_tf."):
                for flag in module_flags:
                    FLAGS.register_key_flag_for_module(sys.argv[0], flag)

    def main_without_arguments(argv):
        # No command takes positional arguments: a stray word (a flag missing its "--") is named, with the exit
        # status of every other input error found before work starts (`config_error`).
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
        return main(argv)

    app.run(main_without_arguments)


def run_script_prologue():
    """Shared start of the scripts that work on a run directory: checks --checkpoint_dir, returns the
    `EvalConfig` from the flags (or exits with a message naming the bad flag)."""
    if not FLAGS.checkpoint_dir:
        config_error("--checkpoint_dir is required (a training run directory)")
    apply_authors_runtime_flags()
    try:
        check_flags_match_run(FLAGS.checkpoint_dir)
        return eval_config_from_flags()
    except ValueError as error:
        config_error(error)
