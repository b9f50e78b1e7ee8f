"""Unreadable checkpoints: training falls back to the newest readable one (and ends with the weights of an
uninterrupted run), run scripts' `restore_model` falls back for "latest" and refuses a named or best file
that cannot be read, and with nothing readable the error says what to do."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.train import checkpoint_recovery
from hfgd_tf.train.checkpoint_recovery import UnreadableCheckpointError
from hfgd_tf.train.checkpoints import resolve_checkpoint, restore_model
from tests.train.test_trainer import _trainer, _weights

pytestmark = pytest.mark.slow  # every test trains (tens of seconds each)


def truncate(path, keep=0.5):
    with open(path, "r+b") as handle:
        size = handle.seek(0, 2)
        handle.truncate(int(size * keep))


def _stop_after(trainer, epochs):
    """The trainer stops after `epochs` epochs (its LR schedule keeps the full run's length)."""
    trainer.train_config = dataclasses.replace(trainer.train_config, train_epoch=epochs)
    return trainer


@pytest.fixture(scope="module")
def straight_run(synthetic_records, tmp_path_factory):
    """An uninterrupted 8-step run (checkpoints every 2 steps)."""
    trainer = _trainer(synthetic_records, str(tmp_path_factory.mktemp("straight")), steps=8, epoch_steps=2)
    trainer.train()
    return trainer


def test_a_truncated_latest_checkpoint_falls_back_and_the_run_ends_as_an_uninterrupted_one(
    synthetic_records, straight_run, tmp_path, caplog
):
    run_dir = str(tmp_path)
    _stop_after(_trainer(synthetic_records, run_dir, steps=8, epoch_steps=2, max_checkpoints_to_keep=3), 3).train()
    assert tf.train.latest_checkpoint(run_dir).endswith("ckpt-6")
    truncate(os.path.join(run_dir, "ckpt-6.data-00000-of-00001"))

    path, unreadable = checkpoint_recovery.newest_readable_checkpoint(run_dir, "")
    assert path.endswith("ckpt-4") and [os.path.basename(u.path) for u in unreadable] == ["ckpt-6"]
    assert unreadable[0].reason.startswith("ckpt-6.data-00000-of-00001 (")
    message = checkpoint_recovery.fallback_message(path, unreadable, action="Resuming from")
    assert (
        "ckpt-6.data-00000-of-00001" in message and "Resuming from ckpt-4" in message and "2 steps are lost" in message
    )

    resumed = _trainer(synthetic_records, run_dir, steps=8, epoch_steps=2, max_checkpoints_to_keep=3)
    assert resumed.restore() == 4
    resumed.train()
    for a, b in zip(_weights(straight_run.model), _weights(resumed.model)):
        np.testing.assert_array_equal(a, b)
    assert int(resumed.optimizer.iterations) == 8
    # ckpt-6 was trained again and written whole over the truncated one.
    assert checkpoint_recovery.checkpoint_problem(os.path.join(run_dir, "ckpt-6")) is None


def test_after_a_fall_back_the_stop_messages_name_the_restored_checkpoint_not_the_unreadable_one(
    synthetic_records, tmp_path
):
    from hfgd_tf.train import NonFiniteLossError

    run_dir = str(tmp_path)
    _stop_after(_trainer(synthetic_records, run_dir, steps=8, epoch_steps=2, max_checkpoints_to_keep=3), 2).train()
    truncate(os.path.join(run_dir, "ckpt-4.data-00000-of-00001"))
    resumed = _trainer(synthetic_records, run_dir, steps=8, epoch_steps=2, max_checkpoints_to_keep=3)
    assert resumed.restore() == 2
    resumed.model.weights[0].assign(resumed.model.weights[0] * np.nan)
    with pytest.raises(NonFiniteLossError, match=r"The last good checkpoint is '.*ckpt-2'\."):
        resumed.save_checkpoint(3)


def test_a_latest_checkpoint_whose_files_are_missing_falls_back_instead_of_starting_afresh(synthetic_records, tmp_path):
    """`tf.train.latest_checkpoint` answers None when the newest checkpoint's index is missing: a resume
    would silently start again at step 0 and overwrite the older checkpoints."""
    run_dir = str(tmp_path)
    _stop_after(_trainer(synthetic_records, run_dir, steps=8, epoch_steps=2, max_checkpoints_to_keep=3), 2).train()
    os.remove(os.path.join(run_dir, "ckpt-4.index"))
    assert tf.train.latest_checkpoint(run_dir) is None
    resumed = _trainer(synthetic_records, run_dir, steps=8, epoch_steps=2, max_checkpoints_to_keep=3)
    assert resumed.restore() == 2


def test_no_readable_checkpoint_is_a_named_error_that_says_how_to_start_afresh(synthetic_records, tmp_path):
    run_dir = str(tmp_path)
    _stop_after(_trainer(synthetic_records, run_dir, steps=4, epoch_steps=2, max_checkpoints_to_keep=1), 1).train()
    truncate(os.path.join(run_dir, "ckpt-2.data-00000-of-00001"))
    resumed = _trainer(synthetic_records, run_dir, steps=4, epoch_steps=2)
    with pytest.raises(
        UnreadableCheckpointError,
        match=r"No readable checkpoint in .*ckpt-2 \(ckpt-2\.data-00000-of-00001 \(\d+ bytes\): .*delete its ckpt-\* files "
        r".*--norestore_checkpoint.*new --checkpoint_dir",
    ):
        resumed.train()
    # --norestore_checkpoint starts afresh in the same directory.
    fresh = _trainer(synthetic_records, run_dir, steps=4, epoch_steps=2, restore_checkpoint=False)
    fresh.train()
    assert checkpoint_recovery.checkpoint_problem(os.path.join(run_dir, "ckpt-4")) is None


def test_run_scripts_fall_back_for_latest_and_refuse_an_unreadable_named_or_best_file(synthetic_records, tmp_path):
    run_dir = str(tmp_path)
    trainer = _trainer(synthetic_records, run_dir, steps=4, epoch_steps=2, evaluate_every_epoch=True)
    _stop_after(trainer, 1).train()  # ckpt-2 and best/ (its weights)
    at_step_2 = _weights(trainer.model)
    _stop_after(_trainer(synthetic_records, run_dir, steps=4, epoch_steps=2), 2).train()  # ckpt-4
    truncate(os.path.join(run_dir, "ckpt-4.data-00000-of-00001"))

    assert resolve_checkpoint(run_dir, "latest") == os.path.join(run_dir, "ckpt-2")
    model, _, _ = restore_model(run_dir, "latest")
    for restored, trained in zip(_weights(model), at_step_2):
        np.testing.assert_array_equal(restored, trained)
    with pytest.raises(
        UnreadableCheckpointError,
        match=r"--checkpoint='ckpt-4': .*ckpt-4' cannot be read: "
        r"ckpt-4\.data-00000-of-00001 \(\d+ bytes\): .*--checkpoint=latest",
    ):
        restore_model(run_dir, "ckpt-4")

    truncate(os.path.join(run_dir, "best", "model.weights.h5"))
    with pytest.raises(
        UnreadableCheckpointError,
        match=r"--checkpoint=best: '.*best/model\.weights\.h5' cannot be read "
        r"\(\d+ bytes; .*--checkpoint=latest",
    ):
        restore_model(run_dir, "best")


def test_checkpoint_problem_names_a_damaged_index_and_a_flipped_byte(synthetic_records, tmp_path):
    run_dir = str(tmp_path)
    _trainer(synthetic_records, run_dir, steps=1).train()
    prefix = os.path.join(run_dir, "ckpt-1")
    assert checkpoint_recovery.checkpoint_problem(prefix) is None
    data = prefix + ".data-00000-of-00001"
    with open(data, "r+b") as handle:  # one byte of a tensor changed: the tensor's CRC32C no longer matches
        handle.seek(handle.seek(0, 2) // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert checkpoint_recovery.checkpoint_problem(prefix).startswith("ckpt-1.data-00000-of-00001 (")
    truncate(prefix + ".index", keep=0.3)
    assert checkpoint_recovery.checkpoint_problem(prefix).startswith("ckpt-1.index (")
