"""Trains a segmenter: `python scripts/train.py --flagfile=experiments/<experiment>.cfg`.

Rerunning the same command resumes from the last checkpoint in --checkpoint_dir.
"""

import sys

from absl import flags, logging

from hfgd_tf.cli import flags as cli_flags

cli_flags.define_all()
cli_flags.define_cluster_flags()
cli_flags.define_verify_records_flag()
FLAGS = flags.FLAGS


def main(argv):
    from hfgd_tf.data.records import check_records

    cli_flags.apply_authors_runtime_flags()  # before TF sets up its devices
    try:
        model_config = cli_flags.model_config_from_flags()
        data_config = cli_flags.data_config_from_flags()
        optimizer_config = cli_flags.optimizer_config_from_flags()
        train_config = cli_flags.train_config_from_flags()
        eval_config = cli_flags.eval_config_from_flags()
        cli_flags.check_writable_directory("checkpoint_dir", train_config.checkpoint_dir)
        cli_flags.configure_workers_from_flags(train_config.strategy)
        # A multi-worker strategy must exist before any TensorFlow op runs (collectives are set up then).
        from hfgd_tf.train.distribute import create_strategy

        strategy = create_strategy(train_config.strategy, train_config.tpu)
        # The records are checked before a model is built or anything is written to --checkpoint_dir.
        splits = [data_config.train_split] + ([data_config.eval_split] if train_config.evaluate_every_epoch else [])
        check_records(data_config, splits, verify_checksums=FLAGS.verify_records)
    except ValueError as error:
        cli_flags.config_error(error)

    from hfgd_tf.train import NonFiniteLossError, Trainer
    from hfgd_tf.train.checkpoints import CheckpointSaveError
    from hfgd_tf.train.preemption import PREEMPTED_EXIT_CODE

    logging.set_verbosity(logging.INFO)
    try:
        trainer = Trainer(model_config, data_config, optimizer_config, train_config, eval_config, strategy=strategy)
    except ValueError as error:
        cli_flags.config_error(error)
    from hfgd_tf.train.distribute import end_multi_worker_run

    try:
        metrics = trainer.train()
    except NonFiniteLossError as error:
        sys.stderr.write(f"Training stopped: {error}\n")
        # Every worker stops at the same step (the health counters are reduced across workers): they can
        # meet and end together, so the chief does not report the others as crashed.
        end_multi_worker_run(strategy, exit_code=1)
        sys.exit(1)
    except (ValueError, CheckpointSaveError) as error:
        # A corrupt record (named with its shard), an unreadable checkpoint or a failed save (e.g. a full
        # disk): a message, no traceback. Possibly on one worker only, so no meeting with the others.
        sys.stderr.write(f"Training stopped: {error}\n")
        sys.exit(1)
    if trainer.preempted:
        # A scheduler that reruns the same command resumes from the checkpoint just saved.
        sys.stderr.write(
            f"Preempted (SIGTERM): saved a checkpoint in {train_config.checkpoint_dir}; rerun the same command to "
            f"resume. Exit status {PREEMPTED_EXIT_CODE}.\n"
        )
        end_multi_worker_run(strategy, exit_code=PREEMPTED_EXIT_CODE)  # every worker stopped at the same step
        sys.exit(PREEMPTED_EXIT_CODE)
    if trainer.is_chief:  # the run directory is the chief's (the other workers wrote a temporary one)
        print(f"Checkpoints and TensorBoard logs: {train_config.checkpoint_dir}")
        if metrics is not None:
            print(f"Final mIoU: {100 * metrics['miou']:.2f}%")
    end_multi_worker_run(strategy)


def run():
    """`hfgd-train` (installed with the package) and `python scripts/train.py`."""
    cli_flags.run_command(main, __doc__)


if __name__ == "__main__":
    run()
