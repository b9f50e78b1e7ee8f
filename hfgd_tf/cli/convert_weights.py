"""Converts a pretrained backbone checkpoint you already have into our backbone `.weights.h5`, offline.

    python scripts/convert_weights.py --source=resnet50.a1_in1k.safetensors --format=timm \
        --backbone=resnet50 --output=weights/resnet50.weights.h5
    python scripts/convert_weights.py --source=swin_tiny_patch4_window7_224.safetensors --format=timm \
        --backbone=swin_tiny --output=weights/swin_tiny.weights.h5
    python scripts/convert_weights.py --source=~/.keras/models/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 \
        --format=keras_applications --backbone=resnet50 --output=weights/resnet50_keras.weights.h5

Then train with `--backbone=<same preset> --backbone_weights_path=<output>` plus the flags the converter
prints on its "Train with:" line: the `--input_normalization` the source was trained with (`imagenet` for
timm and torchvision, `caffe` for keras.applications ResNets, ...) and, for Keras sources, the layout flags. Every tensor is accounted for: the report lists the source tensors
left unused (classification head, BatchNorm counters) and the target weights initialised fresh (per-stage
output norms, image stems), and the conversion refuses missing, extra or mis-shaped tensors. See docs/backbones.md
("Pretrained weights").
"""

import json
import os

from absl import flags

from hfgd_tf.cli import flags as cli_flags

flags.DEFINE_string(
    "source", None, "The checkpoint: .safetensors / .npz state dict (timm, torchvision) or Keras .h5 / .weights.h5."
)
flags.DEFINE_enum(
    "format", None, ["timm", "torchvision", "keras_applications", "keras_cv"], "Where the checkpoint comes from."
)
flags.DEFINE_string(
    "backbone",
    None,
    "Target backbone preset (hfgd_tf.backbones.BACKBONE_PRESETS), e.g. resnet50, resnet50d, convnext_tiny, swin_tiny.",
)
flags.DEFINE_string("output", None, "Output file, ending in .weights.h5.")
flags.DEFINE_string("report_json", "", "Optional: also write the tensor accounting (counts and names) as JSON here.")
flags.mark_flags_as_required(["source", "format", "backbone", "output"])
FLAGS = flags.FLAGS


def _layout_flags(overrides):
    """The training flags that rebuild the backbone the converter used (non-default layouts only)."""
    flags_needed = []
    if overrides.get("stride_in_1x1"):
        flags_needed.append("--backbone_stride_in_1x1")
    if "padding" in overrides:
        flags_needed.append(f"--backbone_padding={overrides['padding']}")
    epsilon = overrides.get("norm", {}).get("epsilon")
    if epsilon is not None and epsilon != 1e-5:
        flags_needed.append(f"--backbone_bn_epsilon={epsilon}")
    if overrides.get("stem_type"):
        flags_needed.append(f"--backbone_stem_type={overrides['stem_type']}")
    return flags_needed


def main(argv):
    cli_flags.check_output_paths(output=(FLAGS.output, "file"), report_json=(FLAGS.report_json, "file"))
    from hfgd_tf.backbones import BACKBONE_PRESETS, build_backbone
    from hfgd_tf.backbones.convert import (
        convert_checkpoint,
        source_input_normalization,
        target_overrides,
        write_converted,
    )

    source = os.path.expanduser(FLAGS.source)
    try:
        if FLAGS.backbone not in BACKBONE_PRESETS:
            raise ValueError(f"--backbone must be one of {sorted(BACKBONE_PRESETS)}. Received: {FLAGS.backbone!r}")
        overrides = target_overrides(FLAGS.format, FLAGS.backbone)
        norm = {"method": "batch_norm", **overrides.pop("norm", {})}
        backbone = build_backbone(FLAGS.backbone, norm=norm, **overrides)
        report = convert_checkpoint(source, FLAGS.format, backbone)
        write_converted(backbone, FLAGS.output, os.path.basename(source))
    except ValueError as error:
        cli_flags.config_error(error)
    print(f"Converted {source} ({FLAGS.format}) -> {FLAGS.output} for --backbone={FLAGS.backbone}")
    print(report.summary())
    needed = _layout_flags({**target_overrides(FLAGS.format, FLAGS.backbone)})
    normalization, why = source_input_normalization(FLAGS.format, FLAGS.backbone, source)
    if normalization is None:
        print(f"Input normalisation: {why}, which no --input_normalization reproduces; features will be off.")
    else:
        print(f"Input normalisation the source was trained with: {why}: --input_normalization={normalization}")
        needed.append(f"--input_normalization={normalization}")
    print(
        f"Train with: --backbone={FLAGS.backbone} --backbone_weights_path={FLAGS.output}"
        + "".join(f" {flag}" for flag in needed)
    )
    if FLAGS.report_json:
        with open(FLAGS.report_json, "w") as handle:
            json.dump(
                {
                    **report.as_dict(),
                    "ignored_tensors": report.ignored,
                    "fresh_weights": report.fresh,
                    "layout_flags": [flag for flag in needed if not flag.startswith("--input_normalization")],
                    "input_normalization": normalization,
                },
                handle,
                indent=1,
            )


def run():
    """`hfgd-convert-weights` (installed with the package) and `python scripts/convert_weights.py`."""
    cli_flags.run_command(main, __doc__)


if __name__ == "__main__":
    run()
