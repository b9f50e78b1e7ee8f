"""The command line of the tiny `scripts/train.py` runs that the kill, resume and fault-injection tests start."""


def tiny_training_arguments(data_dir, checkpoint_dir, *extra, total_steps=12, epoch_steps=3, checkpoints_to_keep=2):
    """Flags of a demo-model run on 48x48 crops of `data_dir`'s records: `total_steps` steps of batch 2,
    a checkpoint every `epoch_steps`, no evaluation, each step logged; `extra` flags come last (they win)."""
    return [
        "--flagfile=experiments/demo.cfg",
        f"--data_dir={data_dir}",
        f"--checkpoint_dir={checkpoint_dir}",
        "--crop_height=48",
        "--crop_width=48",
        "--num_channels=16",
        "--batch_size=2",
        f"--train_epoch={total_steps // epoch_steps}",
        f"--epoch_steps={epoch_steps}",
        "--log_every_steps=1",
        "--noevaluate_every_epoch",
        "--shuffle_buffer=8",
        f"--max_checkpoints_to_keep={checkpoints_to_keep}",
        *extra,
    ]
