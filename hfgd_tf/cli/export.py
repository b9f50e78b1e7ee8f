"""Exports a training run for deployment: `python scripts/export.py --checkpoint_dir=runs/x --export_dir=exports/x`.

    --format=saved_model (default)   TensorFlow / TF Serving; any size; --eval_scales / --flip baked in
    --format=litert --export_height=512 --export_width=512 [--quantize=float16|int8]
    --format=onnx [--quantize=int8]  ONNX Runtime
    --format=openvino                OpenVINO runtime

Every artifact takes uint8 images `[B, H, W, 3]` and returns `class_ids` int32 `[B, H, W]`, `probabilities`
and `logits` float32 `[B, H, W, K]`; class names/colours and the protocol are in `<export_dir>/assets/`.
int8 calibrates on --calibration_steps images of the run's training records. The protocol (--eval_scales,
--flip, ...) is the run's (its run_config.json, as evaluate.py scores it) unless flags override it; one a format
cannot run is refused by name. docs/export.md says which format suits which target.
"""

import os

from absl import flags, logging

from hfgd_tf.cli import flags as cli_flags

cli_flags.define_run_flags()
flags.DEFINE_string("export_dir", "", "Output directory; default <checkpoint_dir>/<format>[_<quantize>].")
flags.DEFINE_enum("format", "saved_model", ["saved_model", "litert", "onnx", "openvino"], "Artifact format.")
flags.DEFINE_enum(
    "quantize",
    "none",
    ["none", "float16", "int8", "bfloat16"],
    "none (float32); float16 (litert); int8 (litert, onnx; calibrated on the training records); bfloat16 (saved_model).",
)
flags.DEFINE_integer("export_height", 0, "Fixed input height (litert needs one); 0: any size.")
flags.DEFINE_integer("export_width", 0, "Fixed input width (litert needs one); 0: any size.")
flags.DEFINE_integer("calibration_steps", 100, "Training images that calibrate --quantize=int8.")
FLAGS = flags.FLAGS


def check_protocol_of_run(export_config, eval_config, stored):
    """`check_protocol`, whose message also names the protocol fields that came from the run's
    run_config.json (not from flags), and the flags that override them."""
    from hfgd_tf.evaluation import EvalConfig
    from hfgd_tf.export import check_protocol
    from hfgd_tf.train.checkpoints import RUN_CONFIG

    try:
        check_protocol(export_config, eval_config)
    except ValueError as error:
        default = EvalConfig()
        from_run = [
            name
            for name in cli_flags.PROTOCOL_FLAGS
            if name in stored
            and not FLAGS[name].present
            and cli_flags.flag_text(name, stored[name]) != cli_flags.flag_text(name, getattr(default, name))
        ]
        if not from_run:
            raise
        values = " ".join(cli_flags.flag_text(name, stored[name]) for name in from_run)
        raise ValueError(
            f"{error}. Those values are the run's evaluation protocol ({os.path.join(FLAGS.checkpoint_dir, RUN_CONFIG)}: "
            f"{values}), which an export takes unless flags override it; give the flags the export should run"
        ) from None


def main(argv):
    cli_flags.run_script_prologue()

    from hfgd_tf.export import ExportConfig, check_export_dir, export_model
    from hfgd_tf.export.calibration import calibration_images
    from hfgd_tf.train.checkpoints import read_run_config, resolve_checkpoint, restore_model

    default_name = FLAGS.format + ("" if FLAGS.quantize == "none" else f"_{FLAGS.quantize}")
    export_dir = FLAGS.export_dir or os.path.join(FLAGS.checkpoint_dir, default_name)
    # Checked before any work. The export is written beside its final name and renamed, so the parent must be writable.
    cli_flags.check_output_paths(export_dir=(export_dir, "directory"))
    logging.set_verbosity(logging.INFO)
    try:
        export_config = ExportConfig(
            format=FLAGS.format,
            quantize=FLAGS.quantize,
            export_height=FLAGS.export_height,
            export_width=FLAGS.export_width,
            calibration_steps=FLAGS.calibration_steps,
        )
        # The run's evaluation protocol, as evaluate.py scores it, unless protocol flags override it: an export
        # then scores as evaluate.py does on the same run.
        _, _, run = read_run_config(FLAGS.checkpoint_dir)
        stored = cli_flags.stored_eval_protocol(run)
        eval_config = cli_flags.eval_config_from_flags(stored=stored)
        check_protocol_of_run(export_config, eval_config, stored)
    except ValueError as error:
        cli_flags.config_error(error)
    logging.info("Exported protocol (the run's, overridden by the flags given): %s", eval_config.protocol())
    try:
        check_export_dir(export_dir)
    except ValueError as error:
        cli_flags.config_error(error)
    try:
        # The file is resolved once, loaded and recorded with the export (its source run and checkpoint), so
        # that a checkpoint written meanwhile by a running training cannot make the record wrong.
        checkpoint = resolve_checkpoint(FLAGS.checkpoint_dir, FLAGS.checkpoint)
        policy = "mixed_bfloat16" if export_config.quantize == "bfloat16" else "float32"
        model, _, data_config = restore_model(
            FLAGS.checkpoint_dir, "best" if FLAGS.checkpoint == "best" else checkpoint, dtype_policy=policy
        )
        source = {
            "checkpoint_dir": cli_flags.absolute_path(FLAGS.checkpoint_dir),
            "checkpoint": cli_flags.absolute_path(checkpoint),
        }
        calibration = None
        if export_config.quantize == "int8":
            calibration = calibration_images(
                data_config, export_config.calibration_steps, export_config.export_height, export_config.export_width
            )
        export_model(
            model,
            export_dir,
            export_config,
            data_config.info.class_names,
            data_config.info.colormap,
            eval_config,
            source=source,
            calibration_images=calibration,
        )
    except ValueError as error:
        cli_flags.config_error(error)
    print(
        f"{FLAGS.format} export ({FLAGS.quantize}): {export_dir} (uint8 images -> class_ids, probabilities, logits; "
        "labels and protocol in assets/)"
    )


def run():
    """`hfgd-export` (installed with the package) and `python scripts/export.py`."""
    cli_flags.run_command(main, __doc__)


if __name__ == "__main__":
    run()
