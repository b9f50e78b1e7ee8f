"""Evaluates a training run: `python scripts/evaluate.py --checkpoint_dir=runs/x [--checkpoint=latest]`.

The model and dataset come from the run's `run_config.json`, and so does the evaluation protocol
(scales, flip, sliding window, eval batch) the run was trained with; a protocol flag given on the
command line overrides the run's value. The protocol used is written into the results JSON.

With --exported=<export dir> (any format scripts/export.py writes: SavedModel, LiteRT, ONNX, OpenVINO, float
or quantized), that artifact is scored in its own runtime on the run's eval records, with the same
confusion-matrix mIoU: `python scripts/evaluate.py --checkpoint_dir=runs/x --exported=runs/x/litert_int8`.
Its protocol is the one baked in at export (scripts/export.py bakes in the run's, unless flags override it); a
protocol flag asking for another (--eval_scales, --flip, --sliding_window_*, --scored_output) is refused rather
than ignored, and so is an export whose classes are not the dataset's. A fixed-size export gets each image
resized to its size.
"""

import dataclasses
import os

from absl import flags, logging

from hfgd_tf.cli import flags as cli_flags

# Defined before the run flags so that the authors' --tpu_name aliases --tpu here too.
flags.DEFINE_string(
    "strategy", "auto", "auto, one_device, mirrored, multi_worker or tpu (auto: TPU if --tpu is given)."
)
flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu|auto.")
cli_flags.define_cluster_flags()
cli_flags.define_run_flags(mode="val")
cli_flags.define_verify_records_flag()
flags.DEFINE_string(
    "results_json", "", "Where to write the metrics JSON; default <checkpoint_dir>/eval_<checkpoint>.json."
)
flags.DEFINE_string("eval_data_dir", "", "Override the run's data_dir (TFRecords of the eval split).")
flags.DEFINE_integer("max_eval_batches", 0, "Evaluate only this many batches (0 = the whole split).")
flags.DEFINE_string(
    "exported",
    "",
    "Score this export directory (scripts/export.py, any format) in its own runtime instead of the checkpoint.",
)
FLAGS = flags.FLAGS


def main(argv):
    cli_flags.run_script_prologue()
    # The path that will be written, checked before the evaluation (the default one too).
    if FLAGS.exported:
        default_name = "exported_" + os.path.basename(FLAGS.exported.rstrip("/"))
    else:
        default_name = (
            FLAGS.checkpoint if FLAGS.checkpoint in ("latest", "best") else os.path.basename(FLAGS.checkpoint)
        )
    results_json = FLAGS.results_json or os.path.join(FLAGS.checkpoint_dir, f"eval_{default_name}.json")
    cli_flags.check_output_paths(results_json=(results_json, "file"))

    import tensorflow as tf

    from hfgd_tf.data.records import check_records
    from hfgd_tf.evaluation import evaluate, format_metrics_table, write_results
    from hfgd_tf.evaluation.evaluator import build_distributed_eval_dataset, global_eval_batch_size
    from hfgd_tf.train.checkpoints import read_run_config, resolve_checkpoint, restore_model
    from hfgd_tf.train.distribute import create_strategy, end_multi_worker_run, is_chief

    logging.set_verbosity(logging.INFO)
    try:
        cli_flags.configure_workers_from_flags(FLAGS.strategy)
        # A multi-worker strategy must exist before any TensorFlow op runs (collectives are set up then).
        strategy = create_strategy(FLAGS.strategy, FLAGS.tpu)
        # The records are checked before the model is built.
        _, data_config, run = read_run_config(FLAGS.checkpoint_dir)
        # The protocol comes from the run; the batch from the flags (it depends on this machine's replicas).
        stored = cli_flags.stored_eval_protocol(run)
        if FLAGS.exported:
            if not tf.io.gfile.isdir(FLAGS.exported):
                raise ValueError(
                    f"--exported {FLAGS.exported!r} is not a directory (an export written by scripts/export.py)"
                )
            # An export runs the protocol baked into it: a protocol flag asking for another is refused.
            cli_flags.check_export_protocol_flags(FLAGS.exported, "exported", stored=stored)
        if FLAGS.eval_data_dir:
            if not tf.io.gfile.isdir(FLAGS.eval_data_dir):
                raise ValueError(f"--eval_data_dir {FLAGS.eval_data_dir!r} does not exist or is not a directory")
            data_config = dataclasses.replace(data_config, data_dir=FLAGS.eval_data_dir)
        check_records(data_config, [data_config.eval_split], verify_checksums=FLAGS.verify_records)
        eval_config = cli_flags.eval_config_from_flags(stored=stored)
        global_eval_batch_size(eval_config.eval_batch_size, strategy.num_replicas_in_sync)
        if FLAGS.exported:
            from hfgd_tf.data.pipeline import build_eval_dataset
            from hfgd_tf.export import load_exported, read_export_inference
            from hfgd_tf.export.scoring import evaluate_exported

            exported = load_exported(FLAGS.exported)
            baked = read_export_inference(FLAGS.exported) or {"eval_scales": [1.0], "flip": False}
            if (sorted(baked["eval_scales"]), baked["flip"]) != (sorted(eval_config.eval_scales), eval_config.flip):
                print(
                    f"Note: the run evaluates at scales {list(eval_config.eval_scales)} "
                    f"{'with' if eval_config.flip else 'without'} flip; {FLAGS.exported} runs scales "
                    f"{baked['eval_scales']} {'with' if baked['flip'] else 'without'} flip (baked in at export), "
                    "which its results record"
                )
            info = data_config.info
            metrics = evaluate_exported(
                exported,
                build_eval_dataset(data_config, 1),
                info.num_classes,
                info.ignore_label,
                info.class_names,
                max_batches=FLAGS.max_eval_batches or None,
            )
            print(format_metrics_table(metrics))
            path = results_json
            write_results(metrics, path, extra={"checkpoint_dir": FLAGS.checkpoint_dir, "exported": FLAGS.exported})
            print(f"Results ({metrics['num_images']} images, protocol {metrics['protocol']}): {path}")
            return
        logging.info("Evaluation protocol (the run's, overridden by the flags given): %s", eval_config.protocol())
        # Resolved once: after a fall-back past unreadable checkpoints the results name the one scored.
        scored_checkpoint = resolve_checkpoint(FLAGS.checkpoint_dir, FLAGS.checkpoint)
        with strategy.scope():
            model, _, _ = restore_model(
                FLAGS.checkpoint_dir, "best" if FLAGS.checkpoint == "best" else scored_checkpoint
            )
        dataset = build_distributed_eval_dataset(strategy, data_config, eval_config.eval_batch_size)
    except ValueError as error:
        cli_flags.config_error(error)
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
    if not is_chief(strategy):
        # Every worker took part; the chief (worker 0) writes the results.
        end_multi_worker_run(strategy)
        return
    print(format_metrics_table(metrics))
    path = results_json
    write_results(
        metrics,
        path,
        extra={
            "checkpoint_dir": FLAGS.checkpoint_dir,
            "checkpoint": FLAGS.checkpoint,
            "checkpoint_path": scored_checkpoint,
        },
    )
    print(f"Results ({metrics['num_images']} images, protocol {metrics['protocol']}): {path}")
    end_multi_worker_run(strategy)


def run():
    """`hfgd-evaluate` (installed with the package) and `python scripts/evaluate.py`."""
    cli_flags.run_command(main, __doc__)


if __name__ == "__main__":
    run()
