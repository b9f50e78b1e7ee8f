"""The CamVid study of HFGD's claims: what runs, on which data, and how the results page is written.

HFGD (arXiv:2303.08646) claims that isolating the upsampler (stop-gradients, class kernels trained only
with the high-level features and reused by the upsampler) beats a jointly trained SemanticFPN, that the
CAE helps, and that OS4 and OS2 outputs add accuracy. Pascal Context on 8 GPUs is out of reach here;
CamVid (367 train / 101 val street scenes, 11 classes) on a 2-core CPU can test the *direction* of each
claim. `scripts/run_ablations.py` runs the rows defined here; every finished (row, seed) writes one
small JSON, and `render_report` writes `docs/results.md` from those JSONs only.

Protocol A (the paper's premise: pretrained high-level features, limited data). One backbone is
pretrained with the high-level-only model on the `pretrain` split (the train split without the held-back
frames); every fine-tuning row starts from that backbone (the heads are fresh) and trains on the
`finetune` split: a contiguous `holdback_fraction` of the frames of *each* of the three train sequences
(0001TP, 0006R0, 0016E5), so it is new footage rather than neighbours of pretraining frames. Of a
sequence's first and last blocks, the one farther from the val frames is held back: CamVid's val frames
(0016E5_07959-08159) sit inside the train part of 0016E5, and fine-tuning on their neighbours would
favour the fine-tuned rows over the frozen reference.
Fine-tuning protects the pretrained features alike for every row: backbone LR x0.1, warmup, a short
schedule. The reference line is the same pretrained backbone frozen, with a fresh HFGD head. The HFGD variants'
heads differ from it only in where gradients flow (unshared kernels: one more 1x1 classifier); SemanticFPN's head
differs more (no CAE, no high-level branch), so its comparison with the frozen reference says so.

Protocol B (ablations from scratch at equal budget: the same number of steps, not the same FLOPs) trains on the
whole train split.
"""

import dataclasses
import functools
import hashlib
import json
import math
import os
import re
import statistics
import typing

from hfgd_tf.data import DataConfig
from hfgd_tf.evaluation.config import EvalConfig
from hfgd_tf.files import write_bytes_atomic, write_json_atomic
from hfgd_tf.models import ModelConfig
from hfgd_tf.train.config import OptimizerConfig, TrainConfig

PRETRAIN_SPLIT, FINETUNE_SPLIT = "pretrain", "finetune"


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """Everything that sizes the study; a result JSON records them, and results of other settings are refused.

    Attributes:
        backbone: str. Backbone preset for every row.
        num_channels: int. D.
        crop_height, crop_width: int. Training crop (random scale 0.5-2.0, flip, brightness as the paper).
        batch_size: int.
        scratch_steps: int. Protocol B steps per row.
        pretrain_steps: int. Protocol A pretraining steps.
        finetune_steps: int. Protocol A fine-tuning steps per row.
        initial_lr: float. SGD LR from scratch (poly decay).
        finetune_lr: float. SGD LR of the heads when fine-tuning.
        finetune_backbone_lr_multiplier: float. Backbone LR multiplier when fine-tuning.
        finetune_warmup_steps: int.
        holdback_fraction: float. Fraction of each train sequence held back for fine-tuning.
        epoch_steps: int. Checkpoint period (a killed row resumes from its last checkpoint).
        deeplab_output_stride: int. Backbone output stride of the DeepLabV3+ row (dilation).
    """

    backbone: str = "resnet18"
    num_channels: int = 128
    crop_height: int = 224
    crop_width: int = 224
    batch_size: int = 8
    scratch_steps: int = 1000
    pretrain_steps: int = 1500
    finetune_steps: int = 250
    initial_lr: float = 0.01
    finetune_lr: float = 0.01
    finetune_backbone_lr_multiplier: float = 0.1
    finetune_warmup_steps: int = 50
    holdback_fraction: float = 0.25
    epoch_steps: int = 250
    deeplab_output_stride: int = 16

    def __post_init__(self):
        if not 0.0 < self.holdback_fraction < 1.0:
            raise ValueError(f"StudySettings.holdback_fraction must be in (0, 1). Received: {self.holdback_fraction}")
        for name in ("scratch_steps", "pretrain_steps", "finetune_steps", "epoch_steps", "batch_size", "num_channels",
                     "crop_height", "crop_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"StudySettings.{name} must be >= 1. Received: {getattr(self, name)}")
        for name in ("initial_lr", "finetune_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"StudySettings.{name} must be > 0. Received: {getattr(self, name)}")
        for name in ("finetune_backbone_lr_multiplier", "finetune_warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"StudySettings.{name} must be >= 0. Received: {getattr(self, name)}")
        for name in ("scratch_steps", "pretrain_steps", "finetune_steps"):
            steps = getattr(self, name)
            if steps % min(self.epoch_steps, steps):
                raise ValueError(
                    f"StudySettings.{name}={steps} must be a multiple of StudySettings.epoch_steps={self.epoch_steps} (the checkpoint "
                    "period)"
                )


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the results table (run once per seed).

    Attributes:
        name: str. Unique key, also the result file's stem.
        protocol: str. "A" or "B".
        title: str. What the row is, for the page.
        stage: str. "pretrain", "finetune" or "scratch".
        seeds: tuple of int.
        model: dict. ModelConfig overrides.
        train: dict. TrainConfig overrides.
    """

    name: str
    protocol: str
    title: str
    stage: str
    seeds: tuple
    model: dict = dataclasses.field(default_factory=dict)
    train: dict = dataclasses.field(default_factory=dict)


NO_STOP_GRADIENTS = dict(stop_gradient_backbone=False, stop_gradient_guidance=False, stop_gradient_class_kernels=False)


def study_rows():
    """The rows in table order (the pretraining row first: Protocol A's fine-tuning rows need it; scripts/
    run_ablations.py runs every row's first seed, in this order, before any row's next seed, so that a study cut
    short still has every row).

    Seeds: 3 per Protocol A row; 3 for SemanticFPN and HFGD from scratch, the paper's main comparison (the issue
    asks for at least 2; with 2 seeds the pooled spread of Protocol B has 2 degrees of freedom, and a 95% bar of
    4.3 standard errors); 1 for every other Protocol B row, judged with that pooled spread.
    """
    a_seeds, b_main, b_single = (0, 1, 2), (0, 1, 2), (0,)
    return [
        Row("A_pretrain", "A", "Pretraining: high-level-only model on the pretrain split", "pretrain", (0,),
            model=dict(upsampler="none")),
        Row("A_frozen", "A", "Reference: pretrained backbone frozen, fresh HFGD head", "finetune", a_seeds,
            train=dict(freeze_backbone=True)),
        Row("A_sfpn", "A", "SemanticFPN (joint)", "finetune", a_seeds, model=dict(upsampler="sfpn")),
        Row("A_hfgd", "A", "HFGD full", "finetune", a_seeds),
        Row("A_hfgd_no_stop_gradients", "A", "HFGD without stop-gradients", "finetune", a_seeds,
            model=NO_STOP_GRADIENTS),
        Row("A_hfgd_unshared_kernels", "A", "HFGD without shared class kernels", "finetune", a_seeds,
            model=dict(share_class_kernels=False)),
        Row("B_sfpn", "B", "SemanticFPN (joint)", "scratch", b_main, model=dict(upsampler="sfpn")),
        Row("B_hfgd", "B", "HFGD full (OS4)", "scratch", b_main),
        Row("B_hfgd_no_cae", "B", "HFGD without CAE (--cae=none: one 3x3 conv on C5 in its place)", "scratch",
            b_single, model=dict(cae="none")),
        Row("B_hfgd_no_stop_gradients", "B", "HFGD without stop-gradients", "scratch", b_single,
            model=NO_STOP_GRADIENTS),
        Row("B_hfgd_unshared_kernels", "B", "HFGD without shared class kernels", "scratch", b_single,
            model=dict(share_class_kernels=False)),
        Row("B_high_level_only", "B", "High-level branch only (OS32)", "scratch", b_single, model=dict(upsampler="none")),
        Row("B_hfgd_os8", "B", "HFGD at OS8", "scratch", b_single, model=dict(output_stride=8)),
        Row("B_hfgd_os2", "B", "HFGD at OS2", "scratch", b_single, model=dict(output_stride=2)),
        Row("B_hfgd_wide_head", "B", "HFGD with the D-wide head (before the cheaper default)", "scratch", b_single,
            model=dict(upsampler_num_channels=-1)),
        Row("B_deeplabv3plus", "B", "DeepLabV3+ (dilated backbone)", "scratch", b_single,
            model=dict(upsampler="deeplabv3plus")),
    ]


class Claim(typing.NamedTuple):
    """A claim the page judges: `better` beats `worse` (kind "better"), or is not clearly worse ("not_worse")."""

    text: str
    protocol: str
    better: str
    worse: str
    kind: str = "better"


CLAIMS = tuple(Claim(*claim) for claim in (
    # HFGD and SemanticFPN differ in more than the isolation (HFGD also has the CAE and the high-level loss).
    ("HFGD beats a jointly trained SemanticFPN (pretrained backbone)", "A", "A_hfgd", "A_sfpn"),
    ("Stop-gradients help (pretrained backbone)", "A", "A_hfgd", "A_hfgd_no_stop_gradients"),
    ("Shared class kernels help (pretrained backbone)", "A", "A_hfgd", "A_hfgd_unshared_kernels"),
    # The premise: fine-tuning through a jointly trained upsampler can harm the pretrained features, so each
    # fine-tuned row is also set against the frozen backbone with a fresh head.
    ("Fine-tuning through HFGD beats keeping the backbone frozen", "A", "A_hfgd", "A_frozen"),
    # Not the backbone's update alone: SemanticFPN's head is another head than the reference's (HFGD's). A
    # SemanticFPN head on the frozen backbone would need the same pretraining, which every Protocol A row shares.
    ("Fine-tuning through SemanticFPN beats the frozen backbone under HFGD's head (the heads differ too)", "A",
     "A_sfpn", "A_frozen"),
    ("Fine-tuning through HFGD without stop-gradients beats keeping the backbone frozen", "A",
     "A_hfgd_no_stop_gradients", "A_frozen"),
    ("Fine-tuning through HFGD without shared kernels beats keeping the backbone frozen", "A",
     "A_hfgd_unshared_kernels", "A_frozen"),
    ("HFGD beats a jointly trained SemanticFPN (from scratch)", "B", "B_hfgd", "B_sfpn"),
    ("The CAE helps", "B", "B_hfgd", "B_hfgd_no_cae"),
    ("Stop-gradients help (from scratch)", "B", "B_hfgd", "B_hfgd_no_stop_gradients"),
    ("Shared class kernels help (from scratch)", "B", "B_hfgd", "B_hfgd_unshared_kernels"),
    ("The upsampler adds accuracy over the high-level branch alone", "B", "B_hfgd", "B_high_level_only"),
    ("OS4 beats OS8", "B", "B_hfgd", "B_hfgd_os8"),
    ("OS2 beats OS4", "B", "B_hfgd_os2", "B_hfgd"),
    ("The cheaper head (D/2) is not worse than the D-wide head", "B", "B_hfgd", "B_hfgd_wide_head", "not_worse"),
))


def claim_between(better, worse):
    """The `Claim` that sets row `better` against row `worse`."""
    return next(claim for claim in CLAIMS if (claim.better, claim.worse) == (better, worse))


# Said after a decided verdict that Holm's correction over all claims drops (`holm_decided`).
HOLM_CAVEAT = "; not after Holm's correction over all claims"


def claim_for(first, second):
    """The `Claim` that sets rows `first` and `second` against each other, either way round; None when none does."""
    return next((claim for claim in CLAIMS if {claim.better, claim.worse} == {first, second}), None)


def holm_caveat(claim, outcome, standing):
    """`HOLM_CAVEAT` when `outcome` decides `claim` and the claim is not in `standing` (`holm_decided`); else ""
    (also when `claim` is None: a comparison no claim makes)."""
    return HOLM_CAVEAT if claim is not None and outcome in DECIDED and claim not in standing else ""


def settings_key(settings):
    """A short hash of the settings: run directories and the pretrained backbone are kept per settings."""
    text = json.dumps(dataclasses.asdict(settings), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _frame(stem):
    """`0016E5_07959` -> ("0016E5", 7959); `0006R0_f00930` -> ("0006R0", 930)."""
    sequence, _, frame = stem.partition("_")
    digits = re.search(r"(\d+)$", frame)
    if not sequence or digits is None:
        raise ValueError(f"CamVid stem {stem!r} is not <sequence>_<frame number>")
    return sequence, int(digits.group(1))


def holdback_split(stems, fraction, avoid=()):
    """Splits CamVid train stems into (pretrain, finetune), holding back a block of every sequence.

    Each sequence is sorted by frame number; its first or its last `fraction` of frames (at least one) is
    held back: the block farther from the frames of the same sequence in `avoid` (the val stems), the
    last block when the sequence has none there.
    """
    sequences, avoided = {}, {}
    for stem in stems:
        sequence, frame = _frame(stem)
        sequences.setdefault(sequence, []).append((frame, stem))
    for stem in avoid:
        sequence, frame = _frame(stem)
        avoided.setdefault(sequence, []).append(frame)
    pretrain, finetune = [], []
    for sequence in sorted(sequences):
        frames = [stem for _, stem in sorted(sequences[sequence])]
        numbers = sorted(number for number, _ in sequences[sequence])
        held = max(1, math.ceil(fraction * len(frames)))
        head, tail = frames[:held], frames[len(frames) - held :]
        block = tail
        if sequence in avoided:
            def distance(block_numbers):
                return min(abs(a - b) for a in block_numbers for b in avoided[sequence])

            if distance(numbers[:held]) > distance(numbers[len(numbers) - held :]):
                block = head
        finetune += block
        pretrain += [stem for stem in frames if stem not in set(block)]
    return pretrain, finetune


def model_config(row, settings, num_classes, pretrained_backbone=""):
    overrides = dict(row.model)
    if overrides.get("upsampler_num_channels") == -1:  # the D-wide head
        overrides["upsampler_num_channels"] = settings.num_channels
    if overrides.get("upsampler") == "deeplabv3plus":
        overrides["backbone_output_stride"] = settings.deeplab_output_stride
    return ModelConfig(
        num_classes=num_classes,
        backbone=settings.backbone,
        num_channels=settings.num_channels,
        cae_num_heads=4,
        # One replica: plain BatchNorm (synchronised BN would be the same thing, slower).
        norm_method="batch_norm",
        backbone_weights_path=pretrained_backbone if row.stage == "finetune" else "",
        **overrides,
    )


def row_steps(row, settings):
    """Training steps of one run of `row`."""
    return {"pretrain": settings.pretrain_steps, "finetune": settings.finetune_steps, "scratch": settings.scratch_steps}[
        row.stage
    ]


def run_configs(row, seed, settings, records_dir, run_dir, num_classes, pretrained_backbone=""):
    """The five configs of one (row, seed) run."""
    split = {"pretrain": PRETRAIN_SPLIT, "finetune": FINETUNE_SPLIT, "scratch": "train"}[row.stage]
    steps = row_steps(row, settings)
    epoch_steps = min(settings.epoch_steps, steps)
    finetune = row.stage == "finetune"
    data = DataConfig(
        "camvid",
        records_dir,
        train_split=split,
        eval_split="val",
        crop_height=settings.crop_height,
        crop_width=settings.crop_width,
        eval_crop_height=360,
        eval_crop_width=480,
        shuffle_buffer=400,
        seed=seed,
    )
    optimizer = OptimizerConfig(
        initial_lr=settings.finetune_lr if finetune else settings.initial_lr,
        warmup_steps=settings.finetune_warmup_steps if finetune else 0,
        backbone_lr_multiplier=settings.finetune_backbone_lr_multiplier if finetune else 1.0,
    )
    train = TrainConfig(
        checkpoint_dir=run_dir,
        batch_size=settings.batch_size,
        train_epoch=steps // epoch_steps,
        epoch_steps=epoch_steps,
        strategy="one_device",
        evaluate_every_epoch=False,  # the final weights are evaluated once: no model selection on val
        log_every_steps=50,
        seed=seed,
        max_checkpoints_to_keep=1,
        **row.train,
    )
    return (
        model_config(row, settings, num_classes, pretrained_backbone),
        data,
        optimizer,
        train,
        EvalConfig(eval_batch_size=1),
    )


def result_path(results_dir, row, seed):
    return os.path.join(results_dir, f"{row.name}__seed{seed}.json")


def add_run_timing(run_dir, start_step, end_step, wall_seconds, cpu_seconds, commit=None):
    """Adds one process's time (and the commit of its code, when given) to <run_dir>/timing.json and returns the
    totals.

    A run can take several processes (preemption, a kill, a new session), each maybe on another commit: the
    `commits` list keeps them in order. Steps that no recorded process timed (trained before this file existed,
    or by a killed process up to the checkpoint it left) count as `untimed_steps`, so a result's times do not
    pass for the whole run when they are not. A killed process's steps after its last checkpoint are trained
    again, and its time for them is lost without a trace.
    """
    path = os.path.join(run_dir, "timing.json")
    timing = {"wall_seconds": 0.0, "cpu_seconds": 0.0, "processes": 0, "untimed_steps": 0, "timed_until_step": 0,
              "commits": []}
    if os.path.isfile(path):
        with open(path) as handle:
            timing.update(json.load(handle))
    timing["untimed_steps"] += max(0, start_step - timing["timed_until_step"])
    timing["wall_seconds"] += wall_seconds
    timing["cpu_seconds"] += cpu_seconds
    timing["processes"] += 1
    timing["timed_until_step"] = end_step
    if commit is not None:
        timing["commits"].append(commit)
    write_json_atomic(path, timing)
    return timing


def process_commits(timing):
    """The commits of a run's processes in order (`add_run_timing`'s `commits`), for its result: None when they
    are all one commit (the result's `commit` says it) or when a process went unrecorded (a killed one, or one
    before commits were kept: its steps show as `untimed_steps`), since a list with a gap would pass for whole."""
    commits = timing.get("commits", [])
    if len(commits) != timing["processes"] or timing["untimed_steps"] or len(set(commits)) < 2:
        return None
    return commits


PRETRAINED_BACKBONE_RECORD = "pretrained_backbone.sha256"


def file_sha256(path):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_pretrained_backbone(run_dir, sha256):
    """Ties a fine-tuning run directory to the pretrained backbone it started from.

    The first process of a run writes `sha256` into `<run_dir>/pretrained_backbone.sha256`; a resuming process
    must find the same one, so that a run's checkpoints never continue on top of another pretraining.

    Raises:
        ValueError: naming the run directory, when it was started from other pretrained weights.
    """
    path = os.path.join(run_dir, PRETRAINED_BACKBONE_RECORD)
    if os.path.isfile(path):
        with open(path) as handle:
            recorded = handle.read().strip()
        if recorded != sha256:
            raise ValueError(
                f"{run_dir} was started from pretrained backbone {recorded[:12]}, the study's is now {sha256[:12]} "
                "(the pretraining row was run again): remove the directory to fine-tune this run again"
            )
        return
    write_bytes_atomic(path, (sha256 + "\n").encode())


def check_one_pretrained_backbone(results, current_sha256=None):
    """Raises ValueError when fine-tuning results came from different pretrained backbones.

    Every Protocol A row must start from the same pretraining (the rows are compared with each other and
    with the frozen reference). Results record the backbone file's hash (`pretrained_backbone_sha256`);
    `current_sha256` is the study's backbone file now, when it exists.
    """
    hashes = {}
    for result in results:
        sha256 = result.get("pretrained_backbone_sha256")
        if sha256:
            hashes.setdefault(sha256, []).append(f"{result['row']} seed {result['seed']}")
    if current_sha256 and hashes and set(hashes) != {current_sha256}:
        hashes.setdefault(current_sha256, []).append("the study's pretrained backbone file now")
    if len(hashes) > 1:
        groups = "; ".join(f"{sha[:12]}: {', '.join(runs)}" for sha, runs in sorted(hashes.items()))
        raise ValueError(
            f"Fine-tuning results come from different pretrained backbones ({groups}): the pretraining row was run "
            "again after some fine-tuning runs; move the older results away and rerun them"
        )


# What the page and docs/performance.md read from a result JSON, with its type (an int passes for a float).
RESULT_FIELDS = {
    "row": str, "protocol": str, "seed": int, "miou": float, "pixel_accuracy": float, "per_class_iou": dict,
    "params_m": float, "gflops": float, "steps": int, "train_cpu_seconds": float, "commit": str, "machine": str,
    "settings": dict, "model_config": dict,
}


def read_result(path):
    """The result dict in `path`, checked to be one run's result under its own name.

    A JSON object with every `RESULT_FIELDS` key of its type, named `result_path`'s way after its own row and
    seed: one file per (row, seed), so that a copy or a renamed file cannot count twice or stand in for a run
    that has not happened. Raises ValueError naming `path` and what is wrong.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            result = json.load(handle)
    except (OSError, ValueError) as error:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path} cannot be read as a result of scripts/run_ablations.py ({error}); move it away") from None
    if not isinstance(result, dict):
        raise ValueError(f"{path} is not a result of scripts/run_ablations.py (not a JSON object); move it away")
    for key, kind in RESULT_FIELDS.items():
        value = result.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
            raise ValueError(
                f"{path} is not a result of scripts/run_ablations.py ({key!r} missing or not {kind.__name__}); move it away"
            )
    # Values a run can produce: a hand-edited percentage or NaN would otherwise reach the page as a number.
    ranges = {"miou": (0, 1), "pixel_accuracy": (0, 1), "steps": (1, math.inf), "params_m": (0, math.inf),
              "gflops": (0, math.inf), "train_cpu_seconds": (0, math.inf)}
    values = [(key, result[key], *ranges[key]) for key in ranges]
    values += [(f"per_class_iou[{name!r}]", iou, 0, 1) for name, iou in result["per_class_iou"].items()]
    for key, value, low, high in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValueError(
                f"{path} is not a result of scripts/run_ablations.py ({key} is {value!r}, not a number in "
                f"[{low}, {high}]); move it away"
            )
    expected = f"{result['row']}__seed{result['seed']}.json"
    if os.path.basename(path) != expected:
        raise ValueError(f"{path} holds {result['row']} seed {result['seed']}, so it must be named {expected}; move it away")
    return result


def check_results(rows, named_results):
    """Raises ValueError naming the file when a result is not a run of the plan.

    Args:
        rows: list of `Row` (the plan).
        named_results: list of `(path, result dict)`, each read by `read_result`.
    """
    planned = _planned_runs(rows)
    protocols = {row.name: row.protocol for row in rows}
    class_names = None
    for path, result in named_results:
        row, seed = result.get("row"), result.get("seed")
        if (row, seed) not in planned:
            raise ValueError(
                f"{path}: {row} seed {seed} is not a run of the study (python scripts/run_ablations.py --plan lists "
                "them); move it away"
            )
        # The protocol picks the pooled seed SD a result joins: a wrong one would move every bar.
        if result.get("protocol") != protocols[row]:
            raise ValueError(f"{path}: {row} is a Protocol {protocols[row]} row, but the file says protocol "
                             f"{result.get('protocol')!r}; move it away")
        names = sorted(result["per_class_iou"])
        if class_names is None:
            class_names, first = names, path
        elif names != class_names:
            raise ValueError(f"{path}: its per_class_iou names the classes {names}, {first} names {class_names}: "
                             "every run evaluates the same classes; move the wrong file away")


# Config fields that do not change what a run computes: files of the machine that ran, logging, checkpoint keeping.
_NOT_COMPARED_FIELDS = {
    "model_config": {"backbone_weights_path"},
    "train_config": {"checkpoint_dir", "max_checkpoints_to_keep", "restore_checkpoint", "log_every_steps",
                     "training_progress_bar", "evaluate_every_epoch"},
}


def _json_like(value):
    """`value` as it reads back from JSON (tuples become lists), for comparing with a stored result."""
    return json.loads(json.dumps(value))


def config_differences(row, result, settings, num_classes):
    """What a result's stored configs hold that the row's run would not get now: a list of
    "model_config.cae: 'none' then, 'transformer' now".

    Compared: the `model_config`, `optimizer_config` and `train_config` the result recorded, field by field,
    with `run_configs` for its row and seed today (the data and evaluation configs follow from the study
    settings, which are checked on their own). Not compared: configs a result predates (written before the script
    recorded them), fields only one side has (a field added or removed since it ran: a row that now overrides a
    new field goes unnoticed), and `_NOT_COMPARED_FIELDS`.
    """
    configs = run_configs(row, result["seed"], settings, "<records>", "<run_dir>", num_classes)
    now = {"model_config": configs[0], "optimizer_config": configs[2], "train_config": configs[3]}
    differences = []
    for key, config in now.items():
        stored = result.get(key)
        if not isinstance(stored, dict):
            continue
        current = _json_like(dataclasses.asdict(config))
        for field in sorted(set(stored) & set(current) - _NOT_COMPARED_FIELDS.get(key, set())):
            if stored[field] != current[field]:
                differences.append(f"{key}.{field}: {stored[field]!r} then, {current[field]!r} now")
    return differences


def check_configs(rows, named_results, settings, num_classes):
    """Raises ValueError naming the file when a finished run was trained otherwise than its row trains now
    (a row or a config default changed since): its result would stand for a run the plan no longer makes.

    Args:
        rows: list of `Row` (the plan).
        named_results: list of `(path, result dict)` of planned runs (`check_results`).
        settings: `StudySettings` the results were made with.
        num_classes: int.
    """
    by_name = {row.name: row for row in rows}
    for path, result in named_results:
        differences = config_differences(by_name[result["row"]], result, settings, num_classes)
        if differences:
            raise ValueError(
                f"{path}: {result['row']} seed {result['seed']} ran with other configs than the row gives now "
                f"({'; '.join(differences[:3])}{'; ...' if len(differences) > 3 else ''}): move the file away to "
                "run it again, or restore the row's definition or the config default that changed"
            )


def _planned_runs(rows):
    """The (row name, seed) pairs of the plan."""
    return {(row.name, seed) for row in rows for seed in row.seeds}


def run_count(rows):
    """Runs of the study: one per row and seed."""
    return sum(len(row.seeds) for row in rows)


def _eval_cpu_seconds(result):
    """A result's evaluation CPU time; its wall time for results written before CPU time was recorded."""
    return result.get("eval_cpu_seconds", result.get("eval_seconds", 0.0))


def projected_cpu_hours(rows, settings, results):
    """CPU hours of the whole study at the finished runs' mean CPU time per training step and per evaluation.

    A rough figure: rows differ in cost per step (a frozen backbone is cheaper, OS2 dearer). None before any
    run has finished with timed steps.
    """
    # A result without `train_processes` may have timed only the last process of its run.
    timed = [r for r in results if "train_processes" in r]
    timed_steps = sum(r["steps"] - r.get("untimed_steps", 0) for r in timed)
    if not results or timed_steps <= 0:
        return None
    per_step = sum(r["train_cpu_seconds"] for r in timed) / timed_steps
    per_eval = statistics.fmean(_eval_cpu_seconds(r) for r in results)
    steps = sum(row_steps(row, settings) * len(row.seeds) for row in rows)
    return (per_step * steps + per_eval * run_count(rows)) / 3600


def _mean_spread(values):
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else None
    return mean, spread


def _format(values, scale=100.0):
    mean, spread = _mean_spread([v * scale for v in values])
    if spread is None:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {spread:.1f}"


def aggregate(results):
    """Groups result dicts by row: `{row: {"miou": [...], "per_class": {name: [...]}, ...}}`."""
    grouped = {}
    for result in results:
        entry = grouped.setdefault(
            result["row"],
            {"protocol": result["protocol"], "seeds": [], "miou": [], "per_class": {}, "train_cpu_seconds": [],
             "params_m": None, "gflops": None, "cpu_lower_bound": False},
        )
        # Steps trained before the script timed them, or only a resumed run's last process timed: a lower bound.
        entry["cpu_lower_bound"] |= bool(result.get("untimed_steps")) or "train_processes" not in result
        entry["seeds"].append(result["seed"])
        entry["miou"].append(result["miou"])
        entry["train_cpu_seconds"].append(result["train_cpu_seconds"])
        entry["params_m"], entry["gflops"] = result["params_m"], result["gflops"]
        for name, iou in result["per_class_iou"].items():
            entry["per_class"].setdefault(name, []).append(iou)
    return grouped


def pooled_seed_sd(grouped, protocol):
    """`(sd, degrees of freedom)`: the seed standard deviation (fraction) pooled over a protocol's rows with
    several seeds, `sqrt(sum((n_i - 1) s_i^2) / sum(n_i - 1))`; `(None, 0)` when no row has several seeds.

    With 2-3 seeds a row's own SD is a poor estimate (two seeds can land on the same value); the pooled one
    is the best estimate of how much the seed alone moves a row trained the same way.
    """
    groups = [entry["miou"] for entry in grouped.values() if entry["protocol"] == protocol and len(entry["miou"]) > 1]
    degrees = sum(len(values) - 1 for values in groups)
    if not degrees:
        return None, 0
    return math.sqrt(sum((len(values) - 1) * statistics.variance(values) for values in groups) / degrees), degrees


def degrees_of_freedom(degrees):
    """"1 degree of freedom", "2 degrees of freedom": for the pages' sentences."""
    return f"{degrees} degree{'' if degrees == 1 else 's'} of freedom"


NO_SPREAD = "1 seed: no spread measured yet"
# The verdicts' two-sided confidence: a difference beyond the bar comes from seed noise alone at most 5% of the time.
BAR_CONFIDENCE = 0.95


def student_t_tail(x, degrees, intervals=2000):
    """P(|T| > x) for Student's t with `degrees` degrees of freedom.

    By hand because scipy.stats.t is a few calls in a library the project does not otherwise need. With
    t = sqrt(df) tan(theta) the density becomes `c cos(theta)^(df - 1)` on [0, pi/2), so the tail is a smooth
    integral over the bounded [atan(x / sqrt(df)), pi/2) (Simpson's rule): accurate for any x, also far out where
    an integral of the density over [0, x] would lose the tail.
    """
    scale = math.exp(math.lgamma((degrees + 1) / 2) - math.lgamma(degrees / 2)) / math.sqrt(math.pi)
    start = math.atan(abs(x) / math.sqrt(degrees))
    step = (math.pi / 2 - start) / intervals
    weights = [1 if i in (0, intervals) else 4 if i % 2 else 2 for i in range(intervals + 1)]
    tail = step / 3 * sum(w * max(0.0, math.cos(start + i * step)) ** (degrees - 1) for i, w in enumerate(weights))
    return min(1.0, 2.0 * scale * tail)


@functools.lru_cache(maxsize=None)
def t_critical(degrees, confidence=BAR_CONFIDENCE):
    """The x with P(|T| > x) = 1 - confidence for Student's t (bisection on `student_t_tail`): how many
    standard errors apart two means must be when the SD comes from `degrees` degrees of freedom."""
    low, high = 0.0, 1.0
    while student_t_tail(high, degrees) > 1 - confidence:
        low, high = high, 2 * high
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if student_t_tail(middle, degrees) > 1 - confidence else (low, middle)
    return (low + high) / 2


def _standard_error(better, worse, pooled=(None, 0)):
    """`(sqrt(s_b^2/n_b + s_w^2/n_w), degrees of freedom)` for `verdict_bar`; None without a measured spread."""
    seed_sd, degrees = pooled
    variance = 0.0
    for values in (better, worse):
        spreads = [sd for sd in (statistics.stdev(values) if len(values) > 1 else None, seed_sd) if sd is not None]
        if not spreads:
            return None
        variance += max(spreads) ** 2 / len(values)
    if seed_sd is None:
        degrees = len(better) + len(worse) - 2
    return math.sqrt(variance), degrees


def verdict_bar(better, worse, pooled=(None, 0)):
    """Half-width of the 95% bar for `mean(better) - mean(worse)` (per-seed mIoUs, fractions); None without a
    measured spread.

    `t sqrt(s_b^2/n_b + s_w^2/n_w)`, `t` Student's for `BAR_CONFIDENCE`. Each row's `s` is the larger of its own
    seed SD and the protocol's pooled one (`pooled`: `(sd, degrees of freedom)` from `pooled_seed_sd`), so that a
    row whose few seeds happen to agree does not narrow the bar; `t` takes the pooled SD's degrees of freedom
    (without a pooled SD, the rows' own: `n_b + n_w - 2`). With 2 degrees of freedom `t` is 4.3, not the
    normal's 2: two or three seeds per row measure the spread itself poorly.
    """
    error = _standard_error(better, worse, pooled)
    return None if error is None else t_critical(error[1]) * error[0]


def verdict(better, worse, pooled=(None, 0)):
    """Whether `better > worse` holds, from per-seed mIoUs (lists, fractions): "holds" above `verdict_bar`,
    "does not hold" below minus it, "within seed noise" between; `NO_SPREAD` for a row with one seed and no
    pooled SD.

    Returns:
        (difference of the means, outcome str).
    """
    difference, outcome, _ = _judge(better, worse, pooled)
    return difference, outcome


def _judge(better, worse, pooled):
    """`verdict` with the bar it used: (difference, outcome, bar or None)."""
    difference = statistics.fmean(better) - statistics.fmean(worse)
    bar = verdict_bar(better, worse, pooled)
    if bar is None:
        return difference, NO_SPREAD, bar
    if abs(difference) <= bar:
        return difference, "within seed noise", bar
    return difference, "holds" if difference > 0 else "does not hold", bar


def _compare(grouped, protocol, better, worse):
    """`verdict` of two rows with their protocol's pooled seed SD: (difference, outcome)."""
    return verdict(grouped[better]["miou"], grouped[worse]["miou"], pooled_seed_sd(grouped, protocol))


def claim_verdict(claim, grouped):
    """`(difference, outcome, bar)` of a `Claim` with its protocol's pooled seed SD (bar: `verdict_bar`, None
    without a spread); None when a row has not run.

    A "not_worse" claim is tested for a cost: within seed noise it reads "no cost detected", with the largest
    cost the bar does not exclude (`bar - difference`), since "not clearly worse" is not "not worse".
    """
    if claim.better not in grouped or claim.worse not in grouped:
        return None
    difference, outcome, bar = _judge(
        grouped[claim.better]["miou"], grouped[claim.worse]["miou"], pooled_seed_sd(grouped, claim.protocol)
    )
    if claim.kind == "not_worse" and outcome == "within seed noise":
        outcome = f"no cost detected (a cost up to {100 * (bar - difference):.1f} points is not excluded, 97.5% one-sided)"
    return difference, outcome, bar


def claim_p_value(claim, grouped):
    """Two-sided p-value of a `Claim`'s difference under the `verdict_bar` test; None when a row has not run or
    no spread is measured."""
    if claim.better not in grouped or claim.worse not in grouped:
        return None
    better, worse = grouped[claim.better]["miou"], grouped[claim.worse]["miou"]
    error = _standard_error(better, worse, pooled_seed_sd(grouped, claim.protocol))
    if error is None:
        return None
    difference = abs(statistics.fmean(better) - statistics.fmean(worse))
    if error[0] == 0:  # every seed alike: any difference is beyond the bar (`_judge` says so too)
        return 0.0 if difference else 1.0
    return student_t_tail(difference / error[0], error[1])


def holm_decided(claims, grouped, familywise=1 - BAR_CONFIDENCE):
    """The claims whose difference stays significant under Holm's step-down correction over every claim with a
    p-value (`claim_p_value`): the chance of any false verdict among them is at most `familywise`.

    Holm (1979): sort the m p-values; the i-th smallest (from 0) must be at most `familywise / (m - i)`, and the
    first that is not ends the list. Uniformly more powerful than Bonferroni, valid under any dependence (the
    claims share rows, so they are not independent).
    """
    p_values = sorted(
        ((p, claim) for claim in claims if (p := claim_p_value(claim, grouped)) is not None), key=lambda item: item[0]
    )
    return [claim for _, claim in p_values[: holm_rejections([p for p, _ in p_values], familywise)]]


def holm_rejections(p_values, familywise=1 - BAR_CONFIDENCE):
    """How many of `p_values` Holm's step-down procedure rejects (they are the smallest ones)."""
    ordered = sorted(p_values)
    for index, p in enumerate(ordered):
        if p > familywise / (len(ordered) - index):
            return index
    return len(ordered)


def planned_runs_finished(rows, results):
    """The (row, seed) pairs of the plan that have a result (results of rows or seeds not planned do not count)."""
    return _planned_runs(rows) & {(result["row"], result["seed"]) for result in results}


def run_commits(result):
    """The commits a result's run trained on: one per process where recorded (`process_commits`, in order), else
    the one it names."""
    return result.get("process_commits") or [result["commit"]]


def report_meta(rows, results, machine=None, command="python scripts/run_ablations.py", source="docs/results"):
    """The `meta` of `render_report`: the command, the directory of the result JSONs (`source`), the machines
    the runs named (`machine` when none has finished), their commits and the missing runs."""
    finished = planned_runs_finished(rows, results)
    return {
        "command": command,
        "source": source,
        "machine": "; ".join(sorted({result["machine"] for result in results})) or machine,
        "commits": [commit for result in results for commit in run_commits(result)],
        "missing": [f"{row.name} seed {seed}" for row in rows for seed in row.seeds if (row.name, seed) not in finished],
    }


def _status(rows, results):
    """Whether the study is complete, counting planned runs only."""
    finished, expected = len(planned_runs_finished(rows, results)), run_count(rows)
    if finished < expected:
        return f"**Incomplete: {finished} of {expected} runs finished.**"
    return f"Complete: all {expected} runs finished."


def _row_line(row, entry, costs):
    """A table line for `row` from its `aggregate` entry (None: not run); `costs` adds params, GFLOPs, CPU time."""
    empty = " | | |" if costs else ""
    if entry is None:
        return f"| `{row.name}` | {row.title} | 0/{len(row.seeds)} | not run yet |{empty}"
    seeds = ",".join(str(s) for s in sorted(entry["seeds"]))
    line = f"| `{row.name}` | {row.title} | {len(entry['seeds'])}/{len(row.seeds)} ({seeds}) | {_format(entry['miou'])} |"
    if costs:
        line += (
            f" {entry['params_m']:.2f} | {entry['gflops']:.1f} | "
            f"{'≥ ' if entry['cpu_lower_bound'] else ''}{statistics.fmean(entry['train_cpu_seconds']) / 60:.1f} |"
        )
    return line


CLAIMS_HEADER = ["| claim | rows | difference (mIoU points) | 95% bar (±) | verdict |", "| --- | --- | ---: | ---: | --- |"]


def _claim_line(claim, grouped, standing):
    """The claims table's line; `standing`: the claims that survive Holm's correction (`holm_decided`), so that a
    decided verdict that does not says so in its own cell."""
    rows = f"`{claim.better}` vs `{claim.worse}`"
    outcome = claim_verdict(claim, grouped)
    if outcome is None:
        return f"| {claim.text} | {rows} | | | not run yet |"
    difference, word, bar = outcome
    caveat = holm_caveat(claim, word, standing)
    return (f"| {claim.text} | {rows} | {100 * difference:+.1f} | {'-' if bar is None else f'{100 * bar:.1f}'} | "
            f"{word}{caveat} |")


# Protocol A's fine-tuned rows by whether the upsampler's gradients reach the pretrained backbone.
JOINT_ROWS = ("A_sfpn", "A_hfgd_no_stop_gradients")
ISOLATED_ROWS = ("A_hfgd", "A_hfgd_unshared_kernels")
# Protocol A's claims that bear on HFGD's premise, by which way a "holds" points: +1 for the premise (HFGD or
# an isolating part helps), -1 against it (HFGD's head without stop-gradients beats the frozen backbone under the
# same head: the backbone adapted usefully through the joint upsampler). HFGD against SemanticFPN counts although
# their heads differ: it is the paper's own comparison, the one the premise is meant to explain. Not counted: an
# isolated row against the frozen reference (bears on neither way), and SemanticFPN against the frozen reference
# (a comparison of ours, whose heads differ too).
PREMISE_SIDE = {
    ("A_hfgd", "A_sfpn"): 1,
    ("A_hfgd", "A_hfgd_no_stop_gradients"): 1,
    ("A_hfgd", "A_hfgd_unshared_kernels"): 1,
    ("A_hfgd_no_stop_gradients", "A_frozen"): -1,
}


def _protocol_finished(rows, grouped, protocol):
    """Whether the protocol has rows and every planned seed of them has a result."""
    planned = [row for row in rows if row.protocol == protocol]
    return bool(planned) and all(set(row.seeds) <= set(grouped.get(row.name, {}).get("seeds", ())) for row in planned)


def premise_tally(grouped, standing):
    """Protocol A's decided verdicts on the premise: `(for, against)`, lists of "claim text +d.d (outcome)";
    `standing`: the claims that survive Holm's correction (`holm_decided`)."""
    sides = {True: [], False: []}
    for claim in CLAIMS:
        side = PREMISE_SIDE.get((claim.better, claim.worse))
        outcome = claim_verdict(claim, grouped) if side else None
        if outcome is None or outcome[1] not in DECIDED:
            continue
        difference, word, _ = outcome
        caveat = holm_caveat(claim, word, standing)
        sides[(word == "holds") == (side > 0)].append(f"{claim.text} {100 * difference:+.1f} ({word}{caveat})")
    return sides[True], sides[False]


def _tally_sentence(supporting, opposing):
    """The reading's summary of `premise_tally`."""
    if supporting and opposing:
        return (f"The verdicts on the premise point both ways. For it: {'; '.join(supporting)}. Against it: "
                f"{'; '.join(opposing)}. They do not combine into a reading at this scale; each stands as measured.")
    if opposing:
        return (f"No verdict supports the premise; {len(opposing)} {'goes' if len(opposing) == 1 else 'go'} against "
                f"it: {'; '.join(opposing)}. The other "
                "comparisons that bear on it are within seed noise.")
    if supporting:
        return (f"Every verdict on the premise supports it ({len(supporting)}): {'; '.join(supporting)}. The other "
                "comparisons that bear on it are within seed noise.")
    return ("No comparison that bears on the premise (HFGD against SemanticFPN, each isolating part, HFGD's head "
            "fine-tuned without stop-gradients against the frozen reference) gets past seed noise: at this scale the "
            "premise is neither supported nor contradicted.")


def protocol_a_reading(rows, grouped, settings):
    """The "Reading of Protocol A" section: what the fine-tuned rows say about HFGD's premise, worded from the
    verdicts (written only once every Protocol A run has finished).

    The premise: fine-tuning through a jointly trained upsampler contaminates pretrained features on limited
    data, and isolating the upsampler (stop-gradients) protects them. The section lists every decided verdict
    for and against it (`PREMISE_SIDE`); a conclusion is drawn only when the verdicts agree on it.

    Args:
        rows: list of `Row`.
        grouped: `aggregate` of the results.
        settings: `StudySettings`.

    Returns:
        list of str (markdown lines); none when `rows` lack the Protocol A rows.
    """
    if not {"A_pretrain", "A_frozen", *JOINT_ROWS, *ISOLATED_ROWS} <= {row.name for row in rows}:
        return []  # a page of other rows
    lines = ["## Reading of Protocol A", ""]
    protocol_a = [row for row in rows if row.protocol == "A"]
    if not _protocol_finished(rows, grouped, "A"):
        return lines + ["Written when every Protocol A run has finished.", ""]

    standing = set(holm_decided(CLAIMS, grouped))

    def compare(better, worse):
        return _compare(grouped, "A", better, worse)

    def against(names, reference):
        outcomes = {name: compare(name, reference) for name in names}
        return outcomes, "; ".join(f"`{name}` {100 * d:+.1f} ({o}{holm_caveat(claim_for(name, reference), o, standing)})"
                                   for name, (d, o) in outcomes.items())

    joint, joint_text = against(JOINT_ROWS, "A_frozen")
    isolated, isolated_text = against(ISOLATED_ROWS, "A_frozen")
    stop_difference, stop = compare("A_hfgd", "A_hfgd_no_stop_gradients")
    fine_tuned = [row.name for row in protocol_a if row.stage == "finetune" and row.name != "A_frozen"]
    pretrain = statistics.fmean(grouped["A_pretrain"]["miou"])
    lines += [
        "Against the frozen backbone with a fresh HFGD head (`A_frozen`, mIoU points): rows whose upsampler's "
        f"gradients reach the pretrained backbone: {joint_text}; rows that keep the upsampler isolated: "
        f"{isolated_text}. HFGD with its stop-gradients against HFGD without them (`A_hfgd` vs "
        f"`A_hfgd_no_stop_gradients`): {100 * stop_difference:+.1f} ({stop}"
        f"{holm_caveat(claim_between('A_hfgd', 'A_hfgd_no_stop_gradients'), stop, standing)}). `A_sfpn` differs from the reference in "
        "its head too (SemanticFPN's: no CAE, no high-level branch), so its difference is not the backbone's update "
        "alone (a head that learns faster in the short schedule would show the same); the HFGD rows share the "
        "reference's head.",
        "",
        f"The pretraining model itself (`A_pretrain`, {_format(grouped['A_pretrain']['miou'])}, one seed) is a "
        "reference, not judged: its head trained with the backbone for "
        f"{settings.pretrain_steps} steps on the pretraining split, which keeps the 0016E5 frames next to val, while "
        f"every fine-tuned head, the frozen reference's too, trained {settings.finetune_steps} steps on the "
        "held-back frames only; and its seed noise is that of a training from scratch, which the fine-tuning seeds "
        "pooled here do not measure. Against it (mIoU points): "
        + ", ".join(f"`{name}` {100 * (statistics.fmean(grouped[name]['miou']) - pretrain):+.1f}"
                    for name in ["A_frozen", *fine_tuned])
        + ". \"Beats the frozen backbone\" says that the backbone adapted usefully to the held-back frames, not that "
        "it became better than the pretraining model.",
        "",
    ]
    supporting, opposing = premise_tally(grouped, standing)
    lines.append(_tally_sentence(supporting, opposing))
    # A narrative only where every decided verdict points its way, and only from HFGD-head rows (SemanticFPN's
    # head differs from the frozen reference's).
    unlocked = joint["A_hfgd_no_stop_gradients"][1]
    if not supporting and unlocked == "holds" and stop == "does not hold" and not any(
        o == "holds" for _, o in isolated.values()
    ):
        lines += [
            "",
            "Here letting the gradients of HFGD's upsampler reach the backbone pays and its stop-gradients cost accuracy: "
            "the contamination HFGD guards against does not show at this scale. A backbone pretrained on "
            f"{1 - settings.holdback_fraction:.0%} of CamVid's train frames, the same scenes, is not the generic "
            "ImageNet feature extractor the paper protects; "
            "testing the premise needs ImageNet weights and a dataset unlike the pretraining (see \"What this can and cannot "
            "show\").",
        ]
    elif not opposing and stop == "holds" and unlocked == "does not hold" and not any(
        o == "does not hold" for _, o in isolated.values()
    ):
        lines += [
            "",
            "Here HFGD fine-tuned without its stop-gradients ends below the frozen backbone while the isolated rows do "
            "not, and the stop-gradients help: the direction of HFGD's premise, that training a pyramid upsampler "
            "jointly on limited data harms pretrained features.",
        ]
    shared_difference, shared = compare("A_hfgd", "A_hfgd_unshared_kernels")
    hfgd_difference, hfgd = isolated["A_hfgd"]
    parts = (
        f"removing the stop-gradients {-100 * stop_difference:+.1f}, removing the shared class kernels "
        f"{-100 * shared_difference:+.1f} mIoU points against HFGD full, which ends {100 * hfgd_difference:+.1f} "
        f"against the frozen backbone ({hfgd})"
    )
    if stop == shared == "does not hold":
        lines += ["", f"Both parts that isolate HFGD's upsampler cost accuracy at this scale: {parts}."]
    elif stop == shared == "holds":
        lines += ["", f"Both parts that isolate HFGD's upsampler help at this scale, as the paper reports: {parts}."]
    return lines + [""]


# What a verdict of "HFGD full beats HFGD without the part" says of the part.
PART_EFFECT = {"holds": "helps", "does not hold": "costs accuracy"}
# What a verdict of "first beats second" says of the first row.
FIRST_ROW = {"holds": "above, beyond the 95% bar", "does not hold": "below, beyond the 95% bar"}
# Protocol B's rows that each take one part away from HFGD full, and what that part is.
PART_ROWS = (
    ("B_hfgd_no_cae", "the CAE"),
    ("B_hfgd_no_stop_gradients", "the stop-gradients"),
    ("B_hfgd_unshared_kernels", "the shared class kernels"),
    ("B_high_level_only", "the upsampler"),
)
# HFGD at each output stride, coarse to fine.
OUTPUT_STRIDE_ROWS = (("B_hfgd_os8", 8), ("B_hfgd", 4), ("B_hfgd_os2", 2))
# The parts that isolate HFGD's upsampler, each with the row that removes it in either protocol:
# (part, Protocol A row, Protocol B row).
ISOLATING_PARTS = (
    ("the stop-gradients", "A_hfgd_no_stop_gradients", "B_hfgd_no_stop_gradients"),
    ("the shared class kernels", "A_hfgd_unshared_kernels", "B_hfgd_unshared_kernels"),
)
PROTOCOL_B_ROWS = frozenset(
    {"B_sfpn", "B_hfgd", "B_hfgd_wide_head", "B_deeplabv3plus"} | {name for name, _ in PART_ROWS}
    | {name for name, _ in OUTPUT_STRIDE_ROWS}
)
DECIDED = ("holds", "does not hold")


def _agreement(a_outcome, b_outcome, a_stands=True, b_stands=True):
    """How the two protocols' verdicts on one part relate; `*_stands`: whether a decided verdict survives Holm's
    correction over all claims (`holm_caveat`). Only verdicts that survive it count as deciding; the others are
    named as decided at their own claim's bar only."""
    sides = (("A", a_outcome, a_stands), ("B", b_outcome, b_stands))
    decided = [protocol for protocol, outcome, stands in sides if outcome in DECIDED and stands]
    own_bar = [protocol for protocol, outcome, stands in sides if outcome in DECIDED and not stands]
    if len(decided) == 2:
        # Not a contradiction: the premise itself says a part may matter on pretrained features and not from scratch.
        return "the protocols agree" if a_outcome == b_outcome else "the protocols point opposite ways"
    text = f"only Protocol {decided[0]} decides" if decided else "neither protocol decides"
    if own_bar:
        text += (f" after Holm's correction (Protocol {own_bar[0]} at its own claim's bar only)" if len(own_bar) == 1
                 else " after Holm's correction (both at their own claims' bars only)")
    return text


def protocol_b_reading(rows, grouped, settings):
    """The "Reading of Protocol B" section: which parts of HFGD pay when every model trains from scratch for the
    same number of steps, worded from the verdicts (written only once every Protocol B run has finished).

    Each part is judged by HFGD full against the row without it (positive: the part helps); output strides by
    the finer against the coarser, with their GFLOPs; the isolating parts are set beside Protocol A's verdicts
    when Protocol A has finished. Rows with one seed are judged with the protocol's pooled seed SD, and the
    section says how often seed noise alone crosses the bar with that few degrees of freedom.

    Args:
        rows: list of `Row`.
        grouped: `aggregate` of the results.
        settings: `StudySettings`.

    Returns:
        list of str (markdown lines); none when `rows` lack the Protocol B rows.
    """
    if not PROTOCOL_B_ROWS <= {row.name for row in rows}:
        return []  # a page of other rows
    lines = ["## Reading of Protocol B", ""]
    if not _protocol_finished(rows, grouped, "B"):
        return lines + ["Written when every Protocol B run has finished.", ""]

    standing = set(holm_decided(CLAIMS, grouped))

    def worded(first, second, words, protocol="B"):
        """`(first minus second in mIoU points with the outcome in `words`, outcome)`; a decided verdict on a
        claim that Holm's correction drops says so (`holm_caveat`)."""
        difference, outcome = _compare(grouped, protocol, first, second)
        caveat = holm_caveat(claim_for(first, second), outcome, standing)
        return f"{100 * difference:+.1f} ({words.get(outcome, outcome)}{caveat})", outcome

    def cost(name):
        return f"{_format(grouped[name]['miou'])} mIoU at {grouped[name]['gflops']:.1f} GFLOPs"

    comparisons = 0

    def row_against(first, second):
        nonlocal comparisons
        comparisons += 1
        return worded(first, second, FIRST_ROW)[0]

    lines += [
        f"From scratch, {settings.scratch_steps} steps each: HFGD full ({cost('B_hfgd')}) minus the jointly "
        f"trained SemanticFPN ({cost('B_sfpn')}): {row_against('B_hfgd', 'B_sfpn')}; minus DeepLabV3+ "
        f"({cost('B_deeplabv3plus')}): {row_against('B_hfgd', 'B_deeplabv3plus')}.",
        "",
    ]
    parts = {part: worded("B_hfgd", name, PART_EFFECT) for name, part in PART_ROWS}
    comparisons += len(parts)
    summary = "".join(
        f" Parts that {heading}: {', '.join(part for part, (_, o) in parts.items() if o == outcome)}."
        for outcome, heading in (
            ("holds", "help here"),
            ("does not hold", "cost accuracy here (HFGD full is below the row without them)"),
            ("within seed noise", "stay within seed noise when removed (no verdict either way at this scale)"),
            (NO_SPREAD, "have no verdict yet (no seed spread measured)"),
        )
        if any(o == outcome for _, o in parts.values())
    )
    lines.append(
        "Each part taken away from HFGD full (HFGD full minus the row without the part, mIoU points): "
        + "; ".join(f"{part} {text}" for part, (text, _) in parts.items()) + "." + summary
    )
    strides = ", ".join(f"OS{stride} {cost(name)}" for name, stride in OUTPUT_STRIDE_ROWS)
    finer = "; ".join(
        f"OS{fine} minus OS{coarse} {row_against(fine_name, coarse_name)}"
        for (coarse_name, coarse), (fine_name, fine) in zip(OUTPUT_STRIDE_ROWS, OUTPUT_STRIDE_ROWS[1:])
    )
    # Worded as the claims table words it: a test for a cost ("not_worse"), not for a gain.
    wide_difference, wide, _ = claim_verdict(claim_between("B_hfgd", "B_hfgd_wide_head"), grouped)
    comparisons += 1
    wide_text = f"{100 * wide_difference:+.1f}" + (f" ({FIRST_ROW[wide]})" if wide in FIRST_ROW else f": {wide}")
    lines += [
        "",
        f"Output stride: {strides}; {finer}. The D/2 head ({cost('B_hfgd')}) minus the D-wide head "
        f"({cost('B_hfgd_wide_head')}): {wide_text}.",
    ]
    protocol_a_rows = {"A_hfgd", *(a_row for _, a_row, _ in ISOLATING_PARTS)}
    if protocol_a_rows <= {row.name for row in rows} and _protocol_finished(rows, grouped, "A"):
        sides = []
        for part, a_row, b_row in ISOLATING_PARTS:
            a_text, a_outcome = worded("A_hfgd", a_row, PART_EFFECT, protocol="A")
            b_text, b_outcome = worded("B_hfgd", b_row, PART_EFFECT)
            agreement = _agreement(a_outcome, b_outcome, claim_between("A_hfgd", a_row) in standing,
                                   claim_between("B_hfgd", b_row) in standing)
            sides.append(f"{part[0].upper()}{part[1:]}: Protocol A {a_text}; Protocol B {b_text}; {agreement}.")
        lines += ["", "HFGD's isolating parts in both protocols (HFGD full minus the row without the part, mIoU "
                  "points). " + " ".join(sides)]
    seed_sd, degrees = pooled_seed_sd(grouped, "B")
    single = [row.name for row in rows if row.protocol == "B" and len(row.seeds) == 1]
    if single and seed_sd is not None:
        lines += [
            "",
            f"The one-seed rows ({len(single)} of them) are judged with the seed SD pooled over Protocol B's "
            f"several-seed rows, {100 * seed_sd:.1f} points over {degrees_of_freedom(degrees)}: the bar is then "
            f"{t_critical(degrees):.1f} standard errors (Student's t), wide, because that few degrees of freedom "
            f"measure the spread itself poorly. Each comparison may still reach a verdict from seed noise alone "
            f"{1 - BAR_CONFIDENCE:.0%} of the time (a little less under the larger-of-two-SDs rule): if no row truly "
            f"differed, about {comparisons * (1 - BAR_CONFIDENCE):.1f} of this section's {comparisons} Protocol B "
            "comparisons would.",
        ]
    return lines + [""]


# The README's headline: the rows the paper's main claim rests on, and the claims between them.
HEADLINE_ROWS = ("A_pretrain", "A_frozen", "A_sfpn", "A_hfgd", "A_hfgd_no_stop_gradients", "A_hfgd_unshared_kernels",
                 "B_sfpn", "B_hfgd")
README_START = "<!-- results headline: written by scripts/run_ablations.py -->"
README_END = "<!-- end of results headline -->"


def render_headline(rows, results):
    """The markdown between `README_START` and `README_END` in README.md: headline rows and their claims."""
    grouped = aggregate(results)
    headline = [row for row in rows if row.name in HEADLINE_ROWS]
    lines = [
        f"{_status(rows, results)} Headline rows (CamVid val mIoU %, mean ± std over seeds; every "
        "row, per-class IoU, costs and the settings are on the page):",
        "",
        "| row | what | runs (seeds) | mIoU |",
        "| --- | --- | --- | ---: |",
    ]
    lines += [_row_line(row, grouped.get(row.name), costs=False) for row in headline]
    lines += ["", *CLAIMS_HEADER]
    standing = set(holm_decided(CLAIMS, grouped))
    lines += [_claim_line(claim, grouped, standing) for claim in CLAIMS
              if {claim.better, claim.worse} <= set(HEADLINE_ROWS)]
    family = _family_lines(grouped, where=" on docs/results.md")
    return "\n".join(lines + (["", *family] if family else []))


def replace_marked_block(text, block, source="README.md"):
    """`text` with the lines between `README_START` and `README_END` replaced by `block`.

    Raises:
        ValueError: naming `source`, when the markers are missing, repeated or out of order.
    """
    starts, ends = text.count(README_START), text.count(README_END)
    start, end = text.find(README_START), text.find(README_END)
    if starts != 1 or ends != 1 or end < start:
        raise ValueError(
            f"{source}: expected the line {README_START!r} once, followed by {README_END!r} once (found them "
            f"{starts} and {ends} times{', in the wrong order' if starts == ends == 1 else ''}); the results "
            "headline goes between them"
        )
    return text[: start + len(README_START)] + "\n" + block + "\n" + text[end:]


def differs_only_in_headline(old, new):
    """Whether two README texts differ only between their headline markers (False when either lacks them)."""
    try:
        return replace_marked_block(old, "") == replace_marked_block(new, "")
    except ValueError:
        return False


LIMITS = """\
## What this can and cannot show

- Scale: a {backbone} trained for {scratch_steps} steps from random weights (Protocol B) or pretrained on
  {pretrain_share:.0%} of CamVid's 367 train frames (Protocol A) is far from the paper's setting (ImageNet-pretrained ResNet-101 /
  ConvNeXt / Swin, Pascal Context or COCO-Stuff, 30k-80k iterations of batch 16 on 8 GPUs). How much the
  seed alone moves a row is the ± of its mIoU; the verdicts say which differences exceed it.
- The premise of HFGD is that pretrained high-level features are contaminated when a pyramid upsampler is
  trained jointly on limited data. Protocol A tests that direction with a backbone pretrained on CamVid
  itself, a weak stand-in for ImageNet features. Testing the claim properly needs ImageNet weights
  (`--backbone_weights_path`, docs/pretrained.md), Pascal Context 59 and the paper's schedule.
- CamVid's val frames (0016E5_07959-08159) lie inside the train part of sequence 0016E5: every model has
  trained on frames a second away from val, so val mIoU is optimistic, and not for every row alike:
  Protocol B's rows and `A_pretrain` trained on those neighbours end to end; Protocol A's fine-tuned rows
  start from a backbone that did, but their heads trained on the held-back frames only (Protocol A holds back
  the 0016E5 block farthest from val: fine-tuned on val's neighbours, the backbones would adapt towards val,
  which would favour them over the frozen reference). Compare `A_pretrain` with the fine-tuned rows with
  that in mind.
- SemanticFPN (`A_sfpn`, `B_sfpn`) is the paper's baseline as published: a jointly trained FPN head with no
  CAE and no high-level branch or loss. "HFGD beats SemanticFPN" therefore compares more than the isolation
  of the upsampler; the rows that take one part away from HFGD full test the parts one by one. Protocol A
  has no SemanticFPN head on the frozen backbone, the matched reference that would take the head out of
  "fine-tuning through SemanticFPN beats the frozen backbone": it needs the pretrained backbone every Protocol
  A row starts from, which (with `A_pretrain`'s run directory) did not survive a move of the machine that ran
  the study. Adding it, or seeds to Protocol A, means running all of Protocol A again (`--figures` cannot draw
  Protocol A's panels for the same reason).
- Where a verdict says "does not hold" or "within seed noise", the claim is not confirmed at this scale;
  that is not evidence against it at the paper's scale.
- Scenes side by side: `python scripts/run_ablations.py --figures` writes PNG panels (image, truth,
  SemanticFPN, HFGD; per protocol the lowest seed of both rows still trained on that machine; void pixels, which
  mIoU does not score, are drawn void in the predictions too) of a few val scenes to `<work_dir>/<settings key>/figures/`. They are not committed: CamVid's licence
  (CC BY-NC 4.0, ../shared/data/camvid/README.md) asks not to redistribute the data inside the project, and
  a panel contains the image and its labels.
"""


def _limits_lines(grouped, class_names):
    """Limits that follow from the numbers: classes no run learned, and the seeds the headline from-scratch
    claim would need at the measured spread."""
    lines = []
    never = [name for name in class_names if grouped and all(
        max(entry["per_class"].get(name, [0.0])) == 0.0 for entry in grouped.values())]
    if never:
        lines.append(
            f"- {len(never)} of the {len(class_names)} classes ({', '.join(never)}) score 0.0 IoU in every run: at "
            f"this scale mIoU is decided by the other {len(class_names) - len(never)}, large regions where a finer "
            "output stride matters least. The OS4/OS2 claims are about thin objects and boundaries: these runs "
            "never learn the thin classes, and no boundary metric is computed here; the claims need longer "
            "training, pretrained weights and larger crops."
        )
    claim = claim_between("B_hfgd", "B_sfpn")
    outcome = claim_verdict(claim, grouped)
    seed_sd, _ = pooled_seed_sd(grouped, claim.protocol)
    if outcome is None or outcome[1] != "within seed noise" or seed_sd is None or outcome[0] == 0:
        return lines
    runs = {name: grouped[name]["miou"] for name in (claim.better, claim.worse)}
    spread = max([seed_sd] + [statistics.stdev(values) for values in runs.values() if len(values) > 1])
    # Seeds per row for 80% power at a two-sided 5% level: n = 2 ((z_0.975 + z_0.8) s / d)^2 (normal approximation).
    seeds = math.ceil(2 * ((1.96 + 0.84) * spread / outcome[0]) ** 2)
    more = sum(max(0, seeds - len(values)) for values in runs.values())
    if more:
        lines.append(
            f"- \"{claim.text}\" is within seed noise. Were the measured difference ({100 * abs(outcome[0]):.1f} "
            f"points, itself uncertain) the true one, with the seed SD used here ({100 * spread:.1f} points), each row "
            f"would need about {seeds} seeds to detect it 80% of the time (2 ((1.96 + 0.84) s / d)^2, a rough figure): "
            f"{more} more runs, about {more * _run_hours(grouped, claim):.0f} CPU-hours at this scale."
        )
    return lines


def _run_hours(grouped, claim):
    """Mean training CPU-hours of one run of the claim's two rows."""
    return statistics.fmean(grouped[claim.better]["train_cpu_seconds"] + grouped[claim.worse]["train_cpu_seconds"]) / 3600


def _budget_line(rows, settings, results, budget_hours=6.0):
    """The study's size and projected cost; says so when it exceeds `budget_hours` on 2 cores."""
    projected = projected_cpu_hours(rows, settings, results)
    runs = run_count(rows)
    if projected is None:
        return f"- Size: {runs} runs; none has finished yet to measure what a run costs on this machine."
    line = (
        f"- Size: {runs} runs. At the finished runs' mean CPU time per training step and per evaluation, the whole "
        f"study takes about {projected:.1f} CPU-hours: at least {projected / 2:.1f} h on 2 cores with nothing else "
        "running."
    )
    if projected / 2 > budget_hours:
        line += (
            f" That is more than the ~{budget_hours:.0f} h the study was meant to fit (the issue suggested 1000-2000 "
            f"steps per row and 256-352 px crops; this study: {settings.scratch_steps} steps per row from scratch, "
            f"crop {settings.crop_height}x{settings.crop_width}, batch {settings.batch_size}, {settings.backbone}). "
            "The target was missed by choice: full-length rows, three seeds for every Protocol A row and for "
            "SemanticFPN and HFGD from scratch, rather than shorter or fewer runs. It is resumable and spans several "
            "sessions."
        )
    return line


def _family_lines(grouped, where=""):
    """The claims judged as one family: which decided verdicts survive Holm's correction (`holm_decided`);
    `where` names the page of the claims when the lines go elsewhere."""
    outcomes = {claim: claim_verdict(claim, grouped) for claim in CLAIMS}
    decided = [claim for claim, outcome in outcomes.items() if outcome and outcome[1] in DECIDED]
    if not decided:
        return []
    # A claim has a p-value exactly when it has a bar (both need its rows and a measured spread).
    judged = sum(outcome is not None and outcome[2] is not None for outcome in outcomes.values())
    standing = set(holm_decided(CLAIMS, grouped))

    def verdict_named(claim):
        difference, outcome, _ = outcomes[claim]
        return f"\"{claim.text}\" {outcome}, {100 * difference:+.1f}"

    kept = [verdict_named(claim) for claim in decided if claim in standing]
    dropped = [verdict_named(claim) for claim in decided if claim not in standing]
    line = (
        f"Judged as one family (Holm's step-down correction over the {judged} claims{where} with a bar: the chance "
        f"that any verdict comes from seed noise alone is then at most {1 - BAR_CONFIDENCE:.0%}, under the same "
        "assumption of alike seed spreads), "
        + (f"{len(kept)} of the {len(decided)} verdicts {'stands' if len(kept) == 1 else 'stand'}: {'; '.join(kept)}."
           if kept else f"none of the {len(decided)} verdicts stands.")
    )
    if dropped:
        one = len(dropped) == 1
        line += (
            f" {'The other' if one else 'The others'} ({'; '.join(dropped)}) {'passes its' if one else 'pass their'} "
            f"own claim's bar, a {1 - BAR_CONFIDENCE:.0%} test, but not the correction: if no row truly differed, "
            f"about {judged * (1 - BAR_CONFIDENCE):.1f} such verdicts would come by chance alone among {judged} claims."
        )
    return [line]


def _commit_notes(results):
    """What the commits line must add: runs on uncommitted code, and runs whose commit may not be their code's."""

    def named(selected):
        return ", ".join(f"{r['row']} seed {r['seed']}" for r in selected)

    notes = ""
    dirty = [r for r in results if any(commit.endswith("-dirty") for commit in run_commits(r))]
    if dirty:
        notes += (f" A commit ending in -dirty: the process started with uncommitted changes under hfgd_tf/ or "
                  f"scripts/, which no commit records ({named(dirty)}).")
    at_end = [r for r in results if "train_config" not in r and "commit_note" not in r]
    if at_end:
        notes += (f" Written by an early version of the script, which named the HEAD when the run ended, possibly "
                  f"later than the code it trained with, and did not record the train config, so only the model "
                  f"and optimizer configs are checked against the row's: {named(at_end)}.")
    notes += "".join(f" {r['row']} seed {r['seed']}: {r['commit_note']}." for r in results if r.get("commit_note"))
    mixed = [r for r in results if len(set(run_commits(r))) > 1]
    if mixed:
        notes += " Resumed on another commit (each process's in order): " + "; ".join(
            f"{r['row']} seed {r['seed']} ({', '.join(run_commits(r))})" for r in mixed) + "."
    return notes


def render_report(rows, settings, results, meta, class_names):
    """The markdown of docs/results.md.

    Args:
        rows: list of `Row`.
        settings: `StudySettings`.
        results: list of result dicts (the JSONs).
        meta: dict with "command", "source" (the results directory), "machine", "commits" (list) and "missing"
            (list of "row seed"): `report_meta`.
        class_names: list of str.
    """
    grouped = aggregate(results)
    bn_momentum = next(f.default for f in dataclasses.fields(ModelConfig) if f.name == "bn_momentum")
    lines = ["# Results: HFGD's claims tested on CamVid", ""]
    if meta["missing"]:
        lines += [
            f"{_status(rows, results)} Missing: {', '.join(meta['missing'])}. "
            "Rows without all their seeds show the seeds they have; verdicts may change.",
            "",
        ]
    else:
        lines += [_status(rows, results), ""]
    train_hours = sum(r["train_cpu_seconds"] for r in results) / 3600
    # Results written before evaluation CPU time was recorded count its wall time, and the page says so.
    eval_hours = sum(_eval_cpu_seconds(r) for r in results) / 3600
    eval_wall = [f"{r['row']} seed {r['seed']}" for r in results if "eval_cpu_seconds" not in r]
    untimed = [f"{r['row']} seed {r['seed']}: {r['untimed_steps']} steps" for r in results if r.get("untimed_steps")]
    last_process_only = [f"{r['row']} seed {r['seed']}" for r in results if "train_processes" not in r]
    lines += [
        f"Every number on this page is written by `{meta['command']}` from `{meta['source']}/*.json` (one file per",
        "row and seed). Rerunning the command skips finished runs, resumes a killed one from its last checkpoint",
        "and rewrites this page.",
        "",
        f"- Machine: {meta['machine']}. CPU time of the finished runs: {train_hours:.2f} h training + "
        f"{eval_hours:.2f} h evaluation (process CPU time, summed over the cores; unlike wall time it does not "
        "count the hours a run was paused or shared the machine)."
        + (f" Evaluation wall time where CPU time was not recorded: {', '.join(eval_wall)}." if eval_wall else "")
        + (f" Not included: steps trained before the script recorded time ({'; '.join(untimed)})." if untimed else "")
        + (
            " Training CPU time that may count only the last process of a resumed run (written before the processes "
            f"were summed; left out of the projection below): {', '.join(last_process_only)}."
            if last_process_only
            else ""
        )
        + (" The tables mark those rows' train CPU minutes as lower bounds (≥)." if untimed or last_process_only else ""),
        _budget_line(rows, settings, results),
        f"- Commits of the runs: {', '.join(sorted(set(meta['commits']))) or 'none yet'} (each result JSON names its own;"
        " the seeds of a row may have run on different commits)." + _commit_notes(results),
        f"- Backbone {settings.backbone}, D={settings.num_channels} (U-SFPN head {settings.num_channels // 2} wide), "
        f"crop {settings.crop_height}x{settings.crop_width}, batch {settings.batch_size}, SGD momentum 0.9, poly LR, "
        "weight decay 1e-4, random scale 0.5-2.0, flip, brightness; plain BatchNorm, float32, one CPU device.",
        f"- Protocol B (from scratch, whole train split, 367 frames): {settings.scratch_steps} steps, LR "
        f"{settings.initial_lr}.",
        f"- Protocol A: pretraining {settings.pretrain_steps} steps (seed 0) on the train split minus one "
        f"contiguous block of {settings.holdback_fraction:.0%} of each sequence (its first or last frames, whichever "
        "lie farther from the val frames of the same sequence: the first frames of 0016E5, the last of the other "
        f"two); fine-tuning {settings.finetune_steps} steps on those held-back frames, LR {settings.finetune_lr}, "
        f"backbone LR x{settings.finetune_backbone_lr_multiplier}, {settings.finetune_warmup_steps} warmup steps; "
        "every fine-tuning row starts from the same pretrained backbone (its hash is recorded and checked) with a "
        "fresh head. The backbone's BatchNorm statistics follow the fine-tuning frames in every fine-tuned row "
        f"(momentum {bn_momentum}: after {settings.finetune_steps} steps about "
        f"{bn_momentum ** settings.finetune_steps:.0%} of the pretrained statistics remain); the frozen reference "
        "keeps them. The seed spread of a Protocol A row is over head initialisation and data order on one "
        "pretraining; the pretraining's own variance is not measured.",
        "- Evaluation: CamVid val (101 frames, 360x480), single scale, no flip, the final weights of each run (no",
        "  model selection on val); mIoU in %, mean ± sample standard deviation over the seeds.",
        "",
    ]
    for protocol, heading in (("A", "Protocol A: pretrained backbone, limited data"), ("B", "Protocol B: from scratch")):
        lines += [f"## {heading}", "", "| row | what | runs (seeds) | mIoU | params (M) | GFLOPs (360x480) | train CPU min |",
                  "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
        for row in rows:
            if row.protocol != protocol:
                continue
            lines.append(_row_line(row, grouped.get(row.name), costs=True))
        lines.append("")
    lines += ["## Claims at this scale", "", *CLAIMS_HEADER]
    standing = set(holm_decided(CLAIMS, grouped))
    lines += [_claim_line(claim, grouped, standing) for claim in CLAIMS]
    pooled = {protocol: pooled_seed_sd(grouped, protocol) for protocol in ("A", "B")}
    pooled_text = "; ".join(
        f"Protocol {protocol} {100 * sd:.1f} points over {degrees_of_freedom(degrees)}, so t = {t_critical(degrees):.2f}"
        if sd is not None
        else f"Protocol {protocol} not measured yet"
        for protocol, (sd, degrees) in pooled.items()
    )
    lines += [
        "",
        "Verdict rule: \"holds\" when the difference of the means is beyond the 95% bar, `t sqrt(s1^2/n1 + s2^2/n2)`"
        " over the rows' seeds with Student's `t` for the pooled standard deviation's degrees of freedom;",
        "\"does not hold\" when it is that far the other way, \"within seed noise\" between. Each row's standard",
        "deviation is the larger of its own over its seeds and the one pooled over its protocol's rows with several",
        f"seeds ({pooled_text}); a row with one seed gets no verdict until the pooled one exists. A verdict comes",
        f"from seed noise alone at most {1 - BAR_CONFIDENCE:.0%} of the time if the rows of a protocol vary by seed "
        "alike (the pooled SD stands for the one-seed rows' spread, which is not measured; a row much noisier "
        "than the pooled ones would reach false verdicts more often): if no row truly differed, about "
        f"{len(CLAIMS) * (1 - BAR_CONFIDENCE):.1f} of the {len(CLAIMS)} claims above would still reach one.",
        "A \"not worse\" claim is a test for a cost: within seed noise it reads \"no cost detected\" and names the",
        "largest cost the bar does not exclude (bar minus difference: a 97.5% one-sided bound).",
        *(["", *family] if (family := _family_lines(grouped)) else []),
        "",
    ]
    lines += ["## Per-class IoU (mean over seeds, %)", "",
              "| row | " + " | ".join(class_names) + " |", "| --- |" + " ---: |" * len(class_names)]
    for row in rows:
        entry = grouped.get(row.name)
        if entry is not None:
            cells = [f"{100 * statistics.fmean(entry['per_class'][name]):.1f}" for name in class_names]
            lines.append(f"| `{row.name}` | " + " | ".join(cells) + " |")
    lines += [""] + protocol_a_reading(rows, grouped, settings) + protocol_b_reading(rows, grouped, settings)
    lines += [
        LIMITS.format(
            backbone=settings.backbone, scratch_steps=settings.scratch_steps,
            pretrain_share=1 - settings.holdback_fraction,
        ).rstrip("\n")
    ]
    return "\n".join(lines + _limits_lines(grouped, class_names) + [""])
