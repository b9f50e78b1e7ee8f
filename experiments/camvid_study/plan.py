"""The study's plan: its settings, its rows, the claims it judges, CamVid's splits and the configs of one run.

A row is one line of the results table, run once per seed; `run_configs` turns (row, seed) into the five configs
the library's `Trainer` takes, so a result JSON can be checked against what its row would train today.
"""

import dataclasses
import math
import re
import typing

from hfgd_tf.data import DataConfig
from hfgd_tf.evaluation.config import EvalConfig
from hfgd_tf.models import ModelConfig
from hfgd_tf.train.config import OptimizerConfig, TrainConfig

PRETRAIN_SPLIT, FINETUNE_SPLIT = "pretrain", "finetune"
EVAL_HEIGHT, EVAL_WIDTH = 360, 480  # CamVid val frames, scored whole


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """What sizes a run (a result JSON records them; `stale_reasons` compares them).

    Attributes:
        backbone, num_channels: the model's backbone preset and D.
        crop_height, crop_width, batch_size: training crop (random scale 0.5-2.0, flip, brightness) and batch.
        scratch_steps, pretrain_steps, finetune_steps: steps of a row trained from scratch, of the pretraining
            row, of a fine-tuning row.
        initial_lr, finetune_lr: SGD LR (poly decay) from scratch and when fine-tuning.
        finetune_backbone_lr_multiplier, finetune_warmup_steps: the backbone's LR factor and the warmup when
            fine-tuning.
        holdback_fraction: the share of each train sequence held back from pretraining for fine-tuning.
        epoch_steps: checkpoint period (a killed run resumes from its last checkpoint).
        deeplab_output_stride: backbone output stride of the DeepLabV3+ row.
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
            raise ValueError(f"holdback_fraction must be in (0, 1). Received: {self.holdback_fraction}")
        for name in ("scratch_steps", "pretrain_steps", "finetune_steps", "epoch_steps", "batch_size"):
            steps = getattr(self, name)
            if steps < 1:
                raise ValueError(f"{name} must be >= 1. Received: {steps}")
            if name.endswith("_steps") and name != "epoch_steps" and steps % min(self.epoch_steps, steps):
                raise ValueError(f"{name}={steps} must be a multiple of epoch_steps={self.epoch_steps}")


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the results table.

    Attributes:
        name: unique key, also the result file's stem.
        protocol: the table it belongs to.
        title: what the row is, for the page.
        stage: "pretrain", "finetune" or "scratch" (which split, steps and optimizer settings).
        seeds: tuple of int.
        model, train: ModelConfig / TrainConfig overrides.
    """

    name: str
    protocol: str
    title: str
    stage: str
    seeds: tuple
    model: dict = dataclasses.field(default_factory=dict)
    train: dict = dataclasses.field(default_factory=dict)


NO_STOP_GRADIENTS = dict(stop_gradient_backbone=False, stop_gradient_guidance=False, stop_gradient_class_kernels=False)
PROTOCOL_TITLES = {"A": "Protocol A: pretrained backbone, limited data", "B": "Protocol B: from scratch"}


def study_rows():
    """The rows in table order (a pretraining row before the rows that start from it)."""
    three, one = (0, 1, 2), (0,)
    return [
        Row("A_pretrain", "A", "Pretraining: high-level-only model on the pretrain split", "pretrain", one,
            model=dict(upsampler="none")),
        Row("A_frozen", "A", "Reference: pretrained backbone frozen, fresh HFGD head", "finetune", three,
            train=dict(freeze_backbone=True)),
        Row("A_sfpn", "A", "SemanticFPN (joint)", "finetune", three, model=dict(upsampler="sfpn")),
        Row("A_hfgd", "A", "HFGD full", "finetune", three),
        Row("A_hfgd_no_stop_gradients", "A", "HFGD without stop-gradients", "finetune", three, model=NO_STOP_GRADIENTS),
        Row("A_hfgd_unshared_kernels", "A", "HFGD without shared class kernels", "finetune", three,
            model=dict(share_class_kernels=False)),
        Row("B_sfpn", "B", "SemanticFPN (joint)", "scratch", three, model=dict(upsampler="sfpn")),
        Row("B_hfgd", "B", "HFGD full (OS4)", "scratch", three),
        Row("B_hfgd_no_cae", "B", "HFGD without CAE (one 3x3 conv on C5 in its place)", "scratch", one,
            model=dict(cae="none")),
        Row("B_hfgd_no_stop_gradients", "B", "HFGD without stop-gradients", "scratch", one, model=NO_STOP_GRADIENTS),
        Row("B_hfgd_unshared_kernels", "B", "HFGD without shared class kernels", "scratch", one,
            model=dict(share_class_kernels=False)),
        Row("B_high_level_only", "B", "High-level branch only (OS32)", "scratch", one, model=dict(upsampler="none")),
        Row("B_hfgd_os8", "B", "HFGD at OS8", "scratch", one, model=dict(output_stride=8)),
        Row("B_hfgd_os2", "B", "HFGD at OS2", "scratch", one, model=dict(output_stride=2)),
        Row("B_hfgd_wide_head", "B", "HFGD with the D-wide head (before the cheaper default)", "scratch", one,
            model=dict(upsampler_num_channels=-1)),
        Row("B_deeplabv3plus", "B", "DeepLabV3+ (dilated backbone)", "scratch", one, model=dict(upsampler="deeplabv3plus")),
    ]


class Claim(typing.NamedTuple):
    """`better` beats `worse` (kind "better"), or is not clearly worse than it (kind "not_worse")."""

    text: str
    better: str
    worse: str
    kind: str = "better"


CLAIMS = tuple(Claim(*claim) for claim in (
    # HFGD and SemanticFPN differ in more than the isolation (HFGD also has the CAE and the high-level loss).
    ("HFGD beats a jointly trained SemanticFPN (pretrained backbone)", "A_hfgd", "A_sfpn"),
    ("Stop-gradients help (pretrained backbone)", "A_hfgd", "A_hfgd_no_stop_gradients"),
    ("Shared class kernels help (pretrained backbone)", "A_hfgd", "A_hfgd_unshared_kernels"),
    ("Fine-tuning through HFGD beats keeping the backbone frozen", "A_hfgd", "A_frozen"),
    ("Fine-tuning through SemanticFPN beats the frozen backbone under HFGD's head (the heads differ too)",
     "A_sfpn", "A_frozen"),
    ("Fine-tuning through HFGD without stop-gradients beats keeping the backbone frozen",
     "A_hfgd_no_stop_gradients", "A_frozen"),
    ("Fine-tuning through HFGD without shared kernels beats keeping the backbone frozen",
     "A_hfgd_unshared_kernels", "A_frozen"),
    ("HFGD beats a jointly trained SemanticFPN (from scratch)", "B_hfgd", "B_sfpn"),
    ("The CAE helps", "B_hfgd", "B_hfgd_no_cae"),
    ("Stop-gradients help (from scratch)", "B_hfgd", "B_hfgd_no_stop_gradients"),
    ("Shared class kernels help (from scratch)", "B_hfgd", "B_hfgd_unshared_kernels"),
    ("The upsampler adds accuracy over the high-level branch alone", "B_hfgd", "B_high_level_only"),
    ("OS4 beats OS8", "B_hfgd", "B_hfgd_os8"),
    ("OS2 beats OS4", "B_hfgd_os2", "B_hfgd"),
    ("The cheaper head (D/2) is not worse than the D-wide head", "B_hfgd", "B_hfgd_wide_head", "not_worse"),
))


def _frame(stem):
    """`0016E5_07959` -> ("0016E5", 7959); `0006R0_f00930` -> ("0006R0", 930)."""
    sequence, _, frame = stem.partition("_")
    digits = re.search(r"(\d+)$", frame)
    if not sequence or digits is None:
        raise ValueError(f"CamVid stem {stem!r} is not <sequence>_<frame number>")
    return sequence, int(digits.group(1))


def holdback_split(stems, fraction, avoid=()):
    """Splits CamVid train stems into (pretrain, finetune), holding back one contiguous block of every sequence.

    Each sequence's first or last `fraction` of frames (at least one) is held back: the block farther from the
    same sequence's frames in `avoid` (the val stems: CamVid's val frames sit inside the train part of 0016E5, and
    fine-tuning on their neighbours would favour the fine-tuned rows), the last block when it has none there.
    """
    sequences, avoided = {}, {}
    for stem in stems:
        sequence, frame = _frame(stem)
        sequences.setdefault(sequence, []).append((frame, stem))
    for stem in avoid:
        sequence, frame = _frame(stem)
        avoided.setdefault(sequence, []).append(frame)
    pretrain, finetune = [], []
    for sequence, frames in sorted(sequences.items()):
        frames.sort()
        held = max(1, math.ceil(fraction * len(frames)))
        head, tail = frames[:held], frames[len(frames) - held:]

        def distance(block):
            return min(abs(number - other) for number, _ in block for other in avoided[sequence])

        block = head if sequence in avoided and distance(head) > distance(tail) else tail
        held_back = [stem for _, stem in block]
        finetune += held_back
        pretrain += [stem for _, stem in frames if stem not in held_back]
    return pretrain, finetune


def row_steps(row, settings):
    return {"pretrain": settings.pretrain_steps, "finetune": settings.finetune_steps,
            "scratch": settings.scratch_steps}[row.stage]


def run_configs(row, seed, settings, records_dir, run_dir, num_classes, pretrained_backbone=""):
    """The (model, data, optimizer, train, eval) configs of one run of `row`."""
    finetune = row.stage == "finetune"
    steps = row_steps(row, settings)
    epoch_steps = min(settings.epoch_steps, steps)
    overrides = dict(row.model)
    if overrides.get("upsampler_num_channels") == -1:  # the D-wide head
        overrides["upsampler_num_channels"] = settings.num_channels
    if overrides.get("upsampler") == "deeplabv3plus":
        overrides["backbone_output_stride"] = settings.deeplab_output_stride
    model = ModelConfig(
        num_classes=num_classes, backbone=settings.backbone, num_channels=settings.num_channels, cae_num_heads=4,
        norm_method="batch_norm",  # one replica: synchronised BatchNorm would be the same, slower
        backbone_weights_path=pretrained_backbone if finetune else "", **overrides,
    )
    data = DataConfig(
        "camvid", records_dir, train_split={"pretrain": PRETRAIN_SPLIT, "finetune": FINETUNE_SPLIT,
                                            "scratch": "train"}[row.stage],
        eval_split="val", crop_height=settings.crop_height, crop_width=settings.crop_width,
        eval_crop_height=EVAL_HEIGHT, eval_crop_width=EVAL_WIDTH, shuffle_buffer=400, seed=seed,
    )
    optimizer = OptimizerConfig(
        initial_lr=settings.finetune_lr if finetune else settings.initial_lr,
        warmup_steps=settings.finetune_warmup_steps if finetune else 0,
        backbone_lr_multiplier=settings.finetune_backbone_lr_multiplier if finetune else 1.0,
    )
    train = TrainConfig(
        checkpoint_dir=run_dir, batch_size=settings.batch_size, train_epoch=steps // epoch_steps,
        epoch_steps=epoch_steps, strategy="one_device",
        evaluate_every_epoch=False,  # the final weights are scored once: no model selection on val
        log_every_steps=50, seed=seed, max_checkpoints_to_keep=1, **row.train,
    )
    return model, data, optimizer, train, EvalConfig(eval_batch_size=1)
