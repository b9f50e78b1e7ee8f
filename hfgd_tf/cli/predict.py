"""Predicts label maps for image files or folders with an export (any format) or a training run.

    python scripts/predict.py --saved_model=exports/x --input=photo.jpg --output_dir=predictions
    python scripts/predict.py --exported=exports/x_litert_int8 --input=images/   (LiteRT, ONNX, OpenVINO too)
    python scripts/predict.py --checkpoint_dir=runs/x --input=images/ --output_dir=predictions
    python scripts/predict.py --flagfile=experiments/x.cfg --saved_model=exports/x --input=images/

With an experiment flagfile (which sets --checkpoint_dir) and --saved_model, the SavedModel is used when it was
exported from that run (scripts/export.py records its source run); the flagfile's model flags are checked
against the run. A SavedModel predicts with the scales and flip baked in at export (recorded beside it); an
--eval_scales / --flip / --sliding_window_* / --scored_output that asks for another protocol is refused rather
than ignored.
Writes `<stem>_label.png` (class ids), `<stem>_color.png` and `<stem>_overlay.png` per image.
"""

import os

from absl import flags

from hfgd_tf.cli import flags as cli_flags

cli_flags.define_run_flags(mode="test_dir")
flags.DEFINE_string(
    "saved_model",
    "",
    "An export written by scripts/export.py (any --format) or demo.py, run in its own runtime. With --checkpoint_dir too (an experiment flagfile sets it), the export must come from that run.",
)
flags.DEFINE_alias("exported", "saved_model")
flags.DEFINE_string("input", "", "An image file or a folder of images (.jpg, .jpeg, .png).")
flags.DEFINE_string("output_dir", "predictions", "Where the PNGs go.")
FLAGS = flags.FLAGS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def list_images(path):
    import tensorflow as tf

    # tf.io.gfile: --input and --output_dir may be gs://... paths.
    if tf.io.gfile.isdir(path):
        names = tf.io.gfile.listdir(path)
        files = sorted(os.path.join(path, n) for n in names if n.lower().endswith(IMAGE_SUFFIXES))
        if not files:
            raise ValueError(f"--input folder {path!r} has no {IMAGE_SUFFIXES} files")
        return files
    if tf.io.gfile.exists(path):
        return [path]
    raise ValueError(f"--input {path!r} is neither an image file nor a folder")


def check_saved_model_from_run(saved_model, checkpoint_dir):
    """Both --saved_model and --checkpoint_dir (e.g. from an experiment flagfile): exits unless the export
    was written from that run, so that the flagfile's run and the served weights cannot silently differ."""
    import tensorflow as tf

    from hfgd_tf.export import read_export_source
    from hfgd_tf.train.checkpoints import RUN_CONFIG

    try:
        source = read_export_source(saved_model)
    except ValueError as error:
        cli_flags.config_error(error)
    run_dir = cli_flags.absolute_path(checkpoint_dir)
    clear = "drop one of them (--checkpoint_dir= with nothing after it clears a flagfile's)"
    if source is None:
        cli_flags.config_error(
            f"--saved_model={saved_model!r} does not record the run it was exported from (an export written "
            f"before scripts/export.py recorded it), so it cannot be matched with --checkpoint_dir={checkpoint_dir!r}: "
            f"{clear}, or export the run again"
        )
    if source["checkpoint_dir"] != run_dir:
        cli_flags.config_error(
            f"--saved_model={saved_model!r} was exported from {source['checkpoint_dir']!r}, not from "
            f"--checkpoint_dir={checkpoint_dir!r} ({run_dir!r}): {clear}"
        )
    if tf.io.gfile.exists(os.path.join(checkpoint_dir, RUN_CONFIG)):
        try:
            cli_flags.check_flags_match_run(checkpoint_dir)
        except ValueError as error:
            cli_flags.config_error(error)
    else:
        print(f"{os.path.join(checkpoint_dir, RUN_CONFIG)} is gone: the model flags given are not checked")
    print(f"Predicting with {saved_model}, exported from {run_dir} (checkpoint {source['checkpoint']})")


def main(argv):
    if not FLAGS.saved_model and not FLAGS.checkpoint_dir:
        cli_flags.config_error("Give --saved_model (an export) or --checkpoint_dir (a training run)")
    try:
        cli_flags.check_authors_flags()  # the --saved_model path reads no config, so check them here
    except ValueError as error:
        cli_flags.config_error(error)
    cli_flags.apply_authors_runtime_flags()
    try:
        files = list_images(FLAGS.input)
    except ValueError as error:
        cli_flags.config_error(error)
    cli_flags.check_writable_directory("output_dir", FLAGS.output_dir)

    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from hfgd_tf.export import read_export_labels, save_prediction_pngs

    if FLAGS.saved_model:
        if not tf.io.gfile.isdir(FLAGS.saved_model):
            cli_flags.config_error(f"--saved_model {FLAGS.saved_model!r} is not a directory")
        cli_flags.check_export_protocol_flags(FLAGS.saved_model, "saved_model")
        if FLAGS.checkpoint_dir:
            check_saved_model_from_run(FLAGS.saved_model, FLAGS.checkpoint_dir)
        try:
            _, colormap = read_export_labels(FLAGS.saved_model)
        except ValueError as error:
            cli_flags.config_error(error)
        from hfgd_tf.export import load_exported

        try:
            exported = load_exported(FLAGS.saved_model)
        except ValueError as error:
            cli_flags.config_error(error)

        def predict(image):
            # A fixed-size export (LiteRT) gets the image resized to its size and the logits resized back.
            return exported.predict(image[None], resize=True)["class_ids"][0]

    else:
        from hfgd_tf.evaluation import predict_logits
        from hfgd_tf.train.checkpoints import restore_model

        try:
            cli_flags.check_flags_match_run(FLAGS.checkpoint_dir)
            eval_config = cli_flags.eval_config_from_flags()
            model, _, data_config = restore_model(FLAGS.checkpoint_dir, FLAGS.checkpoint)
        except ValueError as error:
            cli_flags.config_error(error)
        colormap = data_config.info.colormap

        def predict(image):
            logits = predict_logits(model, tf.constant(image[None], tf.float32), eval_config)
            return tf.argmax(logits, -1)[0].numpy()

    # Only now: a refused model or flag leaves no output directory behind.
    tf.io.gfile.makedirs(FLAGS.output_dir)
    for path in files:
        try:
            with tf.io.gfile.GFile(path, "rb") as handle, Image.open(handle) as opened:
                image = np.asarray(opened.convert("RGB"))
        except OSError as error:
            cli_flags.config_error(f"Cannot read image {path!r}: {error}")
        stem = os.path.join(FLAGS.output_dir, os.path.splitext(os.path.basename(path))[0])
        written = save_prediction_pngs(stem, image, predict(image), colormap)
        print(f"{path} -> {', '.join(written[kind] for kind in ('label', 'color', 'overlay'))}")


def run():
    """`hfgd-predict` (installed with the package) and `python scripts/predict.py`."""
    cli_flags.run_command(main, __doc__)


if __name__ == "__main__":
    run()
