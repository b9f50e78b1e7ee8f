"""The embedded end-to-end demo: synthetic street scenes -> TFRecords -> train HFGD -> evaluate ->
export a SavedModel -> predict with it (TensorFlow only) -> colourised PNG.

    python scripts/demo.py --flagfile=experiments/demo.cfg

Nothing is downloaded: the data are drawn procedurally (hfgd_tf.data.synthetic) and written as
TFRecords, so the demo runs the same pipeline as real datasets.
"""

import os
import time

from absl import flags, logging

from hfgd_tf.cli import flags as cli_flags

cli_flags.define_all()
flags.DEFINE_string("output_dir", "demo_output", "Everything the demo writes goes under this directory.")
flags.DEFINE_integer("num_train_images", 400, "Synthetic training scenes.")
flags.DEFINE_integer("num_val_images", 100, "Synthetic validation scenes.")
flags.DEFINE_integer("image_height", 128, "Synthetic scene height.")
flags.DEFINE_integer("image_width", 160, "Synthetic scene width.")
FLAGS = flags.FLAGS


def main(argv):
    start = time.time()
    cli_flags.apply_authors_runtime_flags()  # before TF sets up its devices
    cli_flags.check_output_paths(
        output_dir=(FLAGS.output_dir, "directory"),
        data_dir=(FLAGS.data_dir, "directory"),
        checkpoint_dir=(FLAGS.checkpoint_dir, "directory"),
    )
    output_dir = os.path.abspath(FLAGS.output_dir)
    data_dir = FLAGS.data_dir or os.path.join(output_dir, "data")
    checkpoint_dir = FLAGS.checkpoint_dir or os.path.join(output_dir, "run")
    try:
        model_config = cli_flags.model_config_from_flags()
        data_config = cli_flags.data_config_from_flags(data_dir=data_dir)
        optimizer_config = cli_flags.optimizer_config_from_flags()
        train_config = cli_flags.train_config_from_flags(checkpoint_dir=checkpoint_dir)
        eval_config = cli_flags.eval_config_from_flags()
    except ValueError as error:
        cli_flags.config_error(error)
    if data_config.dataset != "synthetic_streets":
        cli_flags.config_error(f"demo.py trains on --dataset=synthetic_streets only. Received: {data_config.dataset!r}")

    import numpy as np
    import tensorflow as tf

    from hfgd_tf.data.synthetic import generate_scene, write_synthetic_tfrecords
    from hfgd_tf.evaluation import format_metrics_table, write_results
    from hfgd_tf.export import colorize, export_saved_model, save_prediction_pngs
    from hfgd_tf.train import Trainer
    from hfgd_tf.train.checkpoints import resolve_checkpoint, restore_model

    logging.set_verbosity(logging.INFO)
    print(f"[1/5] Writing synthetic TFRecords to {data_dir}")
    write_synthetic_tfrecords(
        data_dir, FLAGS.num_train_images, FLAGS.num_val_images, FLAGS.image_height, FLAGS.image_width, seed=FLAGS.seed
    )

    print(f"[2/5] Training {model_config.backbone} HFGD for {train_config.total_steps} steps into {checkpoint_dir}")
    try:
        trainer = Trainer(model_config, data_config, optimizer_config, train_config, eval_config)
    except ValueError as error:
        cli_flags.config_error(error)
    trainer.train()
    train_seconds = time.time() - start

    print("[3/5] Evaluating the best checkpoint on the synthetic val split")
    model, _, _ = restore_model(checkpoint_dir, "best")
    metrics = trainer.evaluate(model)
    print(format_metrics_table(metrics))
    results = write_results(metrics, os.path.join(output_dir, "eval_results.json"), extra={"checkpoint": "best"})

    export_dir = os.path.join(output_dir, "saved_model")
    print(f"[4/5] Exporting a SavedModel to {export_dir}")
    info = data_config.info
    source = {
        "checkpoint_dir": cli_flags.absolute_path(checkpoint_dir),
        "checkpoint": cli_flags.absolute_path(resolve_checkpoint(checkpoint_dir, "best")),
    }
    export_saved_model(model, export_dir, info.class_names, info.colormap, source=source)

    print("[5/5] Predicting an unseen scene with the SavedModel (TensorFlow only)")
    serving = tf.saved_model.load(export_dir).signatures["serving_default"]
    image, label = generate_scene(10_000_000 + FLAGS.seed, FLAGS.image_height, FLAGS.image_width)
    class_ids = serving(images=tf.constant(image[None]))["class_ids"][0].numpy()
    stem = os.path.join(output_dir, "prediction")
    written = save_prediction_pngs(stem, image, class_ids, info.colormap)
    panel_path = f"{stem}_panel.png"
    panel = np.concatenate([image, colorize(label, info.colormap), colorize(class_ids, info.colormap)], axis=1)
    from PIL import Image

    Image.fromarray(panel).save(panel_path)

    print("\nDone in %.1f s (training %.1f s)." % (time.time() - start, train_seconds))
    print(f"  mIoU (synthetic val, {metrics['num_images']} images, single scale): {100 * metrics['miou']:.2f}")
    print(f"  TFRecords:        {data_dir}")
    print(f"  checkpoints/logs: {checkpoint_dir}")
    print(f"  eval results:     {results}")
    print(f"  SavedModel:       {export_dir}")
    print(f"  prediction PNGs:  {written['color']}, {written['overlay']}")
    print(f"  image | truth | prediction: {panel_path}")


def run():
    """`hfgd-demo` (installed with the package) and `python scripts/demo.py`."""
    cli_flags.run_command(main, __doc__)


if __name__ == "__main__":
    run()
