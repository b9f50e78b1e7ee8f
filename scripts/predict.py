"""Predicts label maps for image files or folders with a SavedModel or a training run.

    python scripts/predict.py --saved_model=exports/x --input=photo.jpg --output_dir=predictions
    python scripts/predict.py --checkpoint_dir=runs/x --input=images/ --output_dir=predictions

Writes `<stem>_label.png` (class ids), `<stem>_color.png` and `<stem>_overlay.png` per image.
"""

import os

from absl import app, flags

import common_flags

common_flags.define_run_flags(mode="test_dir")
flags.DEFINE_string("saved_model", "", "A SavedModel written by scripts/export.py (instead of --checkpoint_dir).")
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


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if bool(FLAGS.saved_model) == bool(FLAGS.checkpoint_dir):
        common_flags.config_error("Give exactly one of --saved_model and --checkpoint_dir")
    try:
        common_flags.check_authors_flags()  # the --saved_model path reads no config, so check them here
    except ValueError as error:
        common_flags.config_error(error)
    common_flags.apply_authors_runtime_flags()
    try:
        files = list_images(FLAGS.input)
    except ValueError as error:
        common_flags.config_error(error)
    common_flags.check_writable_directory("output_dir", FLAGS.output_dir)

    import numpy as np
    import tensorflow as tf
    from PIL import Image

    tf.io.gfile.makedirs(FLAGS.output_dir)

    from hfgd_tf.export import read_export_labels, save_prediction_pngs

    if FLAGS.saved_model:
        if not tf.io.gfile.isdir(FLAGS.saved_model):
            common_flags.config_error(f"--saved_model {FLAGS.saved_model!r} is not a directory")
        serving = tf.saved_model.load(FLAGS.saved_model).signatures["serving_default"]
        _, colormap = read_export_labels(FLAGS.saved_model)

        def predict(image):
            return serving(images=tf.constant(image[None]))["class_ids"][0].numpy()

    else:
        from hfgd_tf.evaluation import predict_logits
        from hfgd_tf.train.checkpoints import restore_model

        try:
            common_flags.check_flags_match_run(FLAGS.checkpoint_dir)
            eval_config = common_flags.eval_config_from_flags()
            model, _, data_config = restore_model(FLAGS.checkpoint_dir, FLAGS.checkpoint)
        except ValueError as error:
            common_flags.config_error(error)
        colormap = data_config.info.colormap

        def predict(image):
            logits = predict_logits(model, tf.constant(image[None], tf.float32), eval_config)
            return tf.argmax(logits, -1)[0].numpy()

    for path in files:
        try:
            with tf.io.gfile.GFile(path, "rb") as handle, Image.open(handle) as opened:
                image = np.asarray(opened.convert("RGB"))
        except OSError as error:
            common_flags.config_error(f"Cannot read image {path!r}: {error}")
        stem = os.path.join(FLAGS.output_dir, os.path.splitext(os.path.basename(path))[0])
        written = save_prediction_pngs(stem, image, predict(image), colormap)
        print(f"{path} -> {written['color']}")


if __name__ == "__main__":
    app.run(main)
