"""Evaluates a training run: `python scripts/evaluate.py --checkpoint_dir=runs/x [--checkpoint=latest]`.

The model and dataset come from the run's `run_config.json`; the protocol (scales, flip, sliding
window) comes from the flags and is written into the results JSON.
"""

import dataclasses
import os

from absl import app, flags, logging

import common_flags

common_flags.define_run_flags(mode="val")
flags.DEFINE_string("results_json", "", "Where to write the metrics JSON; default <checkpoint_dir>/eval_<checkpoint>.json.")
flags.DEFINE_string("eval_data_dir", "", "Override the run's data_dir (TFRecords of the eval split).")
flags.DEFINE_integer("max_eval_batches", 0, "Evaluate only this many batches (0 = the whole split).")
flags.DEFINE_string("strategy", "auto", "auto, one_device or mirrored.")
FLAGS = flags.FLAGS


def main(argv):
    eval_config = common_flags.run_script_prologue(argv)

    from hfgd_tf.data.pipeline import build_eval_dataset
    from hfgd_tf.evaluation import evaluate, format_metrics_table, write_results
    from hfgd_tf.data.records import check_records
    from hfgd_tf.train.checkpoints import read_run_config, restore_model
    from hfgd_tf.train.distribute import create_strategy

    logging.set_verbosity(logging.INFO)
    try:
        # The records are checked before the model is built.
        _, data_config, _ = read_run_config(FLAGS.checkpoint_dir)
        if FLAGS.eval_data_dir:
            if not os.path.isdir(FLAGS.eval_data_dir):
                raise ValueError(f"--eval_data_dir {FLAGS.eval_data_dir!r} does not exist or is not a directory")
            data_config = dataclasses.replace(data_config, data_dir=FLAGS.eval_data_dir)
        check_records(data_config, [data_config.eval_split])
    except ValueError as error:
        common_flags.config_error(error)
    strategy = create_strategy(FLAGS.strategy)
    try:
        with strategy.scope():
            model, _, _ = restore_model(FLAGS.checkpoint_dir, FLAGS.checkpoint)
        dataset = strategy.distribute_datasets_from_function(
            lambda context: build_eval_dataset(data_config, eval_config.eval_batch_size, context)
        )
    except ValueError as error:
        common_flags.config_error(error)
    info = data_config.info
    metrics = evaluate(
        model,
        dataset,
        info.num_classes,
        info.ignore_label,
        eval_config,
        strategy=strategy,
        class_names=info.class_names,
        max_batches=FLAGS.max_eval_batches or None,
    )
    print(format_metrics_table(metrics))
    name = FLAGS.checkpoint if FLAGS.checkpoint in ("latest", "best") else os.path.basename(FLAGS.checkpoint)
    path = FLAGS.results_json or os.path.join(FLAGS.checkpoint_dir, f"eval_{name}.json")
    write_results(metrics, path, extra={"checkpoint_dir": FLAGS.checkpoint_dir, "checkpoint": FLAGS.checkpoint})
    print(f"Results ({metrics['num_images']} images, protocol {metrics['protocol']}): {path}")


if __name__ == "__main__":
    app.run(main)
