"""Exports a SavedModel: `python scripts/export.py --checkpoint_dir=runs/x --export_dir=exports/x`.

The SavedModel's `serving_default` takes uint8 images `[B, H, W, 3]` of any size and returns
`class_ids` int32 `[B, H, W]` and `probabilities` float32 `[B, H, W, K]`; loading it needs only
TensorFlow. --eval_scales / --flip bake multi-scale / flip inference into the graph.
"""

import os

from absl import app, flags, logging

import common_flags

common_flags.define_run_flags()
flags.DEFINE_string("export_dir", "", "Output directory; default <checkpoint_dir>/saved_model.")
FLAGS = flags.FLAGS


def main(argv):
    eval_config = common_flags.run_script_prologue(argv)

    from hfgd_tf.export import export_saved_model
    from hfgd_tf.train.checkpoints import resolve_checkpoint, restore_model

    logging.set_verbosity(logging.INFO)
    export_dir = FLAGS.export_dir or os.path.join(FLAGS.checkpoint_dir, "saved_model")
    # The export is written beside its final name and renamed, so the parent must be writable.
    common_flags.check_output_paths(export_dir=(export_dir, "directory"))
    try:
        # The file is resolved once, loaded and recorded with the export (its source run and checkpoint), so
        # that a checkpoint written meanwhile by a running training cannot make the record wrong.
        checkpoint = resolve_checkpoint(FLAGS.checkpoint_dir, FLAGS.checkpoint)
        model, _, data_config = restore_model(FLAGS.checkpoint_dir, "best" if FLAGS.checkpoint == "best" else checkpoint)
        source = {
            "checkpoint_dir": common_flags.absolute_path(FLAGS.checkpoint_dir),
            "checkpoint": common_flags.absolute_path(checkpoint),
        }
        export_saved_model(
            model, export_dir, data_config.info.class_names, data_config.info.colormap, eval_config, source=source
        )
    except ValueError as error:
        common_flags.config_error(error)
    print(f"SavedModel: {export_dir} (signature 'serving_default': uint8 images -> class_ids, probabilities)")


if __name__ == "__main__":
    app.run(main)
