"""Fault injection, the way a user meets faults: seeded SIGKILLs of `scripts/train.py` (between steps and
inside a checkpoint save) resume to the uninterrupted run's weights; a truncated latest checkpoint falls
back with a warning and still ends at those weights; a shard damaged in place is named when training meets
it, with the last checkpoint intact (and at start with --verify_records); a save that fails with "no space
left on device" (a patched file layer) stops with a named error and the previous checkpoint restores."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.data.synthetic import write_synthetic_tfrecords
from hfgd_tf.train import checkpoints
from hfgd_tf.train.checkpoint_recovery import checkpoint_problem
from hfgd_tf.train.checkpoints import CheckpointSaveError, restore_model
from tests.conftest import ROOT
from tests.train.test_trainer import _trainer, _weights
from tests.train.tiny_runs import tiny_training_arguments

pytestmark = pytest.mark.slow

SEED = 31  # the kill moments are drawn from it, so that a failure reproduces
HERE = os.path.join(ROOT, "tests", "train")
TRAIN = [sys.executable, "scripts/train.py"]
PAUSING_TRAIN = [sys.executable, os.path.join(HERE, "train_pausing_in_checkpoint_save.py")]
SLOW_TRAIN = [sys.executable, os.path.join(HERE, "train_with_slow_steps.py")]
TOTAL_STEPS, EPOCH_STEPS = 12, 3


def _arguments(data_dir, checkpoint_dir, *extra):
    return tiny_training_arguments(data_dir, checkpoint_dir, *extra, total_steps=TOTAL_STEPS, epoch_steps=EPOCH_STEPS)


def _run(command, **kwargs):
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, **kwargs)


def _assert_same_weights(expected_dir, run_dir):
    # The tolerance of the other kill-and-resume tests: without --op_determinism, oneDNN may sum in
    # another order after a restart.
    expected, _, _ = restore_model(expected_dir, "latest")
    resumed, _, _ = restore_model(run_dir, "latest")
    assert tf.train.latest_checkpoint(run_dir).endswith(f"ckpt-{TOTAL_STEPS}")
    for a, b in zip(expected.weights, resumed.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    # Not the shared synthetic_records: where the damaged shard is met (after ckpt-3) was set for 12 records in 3 shards.
    return write_synthetic_tfrecords(str(tmp_path_factory.mktemp("data")), 12, 2, 64, 64, examples_per_shard=4)


@pytest.fixture(scope="module")
def straight_dir(data_dir, tmp_path_factory):
    """An uninterrupted run of the same command."""
    run_dir = str(tmp_path_factory.mktemp("straight"))
    result = _run(TRAIN + _arguments(data_dir, run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def _wait_for(predicate, process, what, seconds=600):
    deadline = time.time() + seconds
    while time.time() < deadline and not predicate() and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None and predicate(), f"training did not reach {what}"


def test_seeded_kills_between_steps_and_inside_a_save_resume_to_the_uninterrupted_weights(
    data_dir, straight_dir, tmp_path
):
    rng = np.random.default_rng(SEED)
    run_dir = str(tmp_path / "killed")
    # 1. SIGKILL inside the save of a seeded checkpoint (files written, the state file not yet updated).
    pause_at = int(rng.choice([EPOCH_STEPS, 2 * EPOCH_STEPS]))
    marker = str(tmp_path / "paused")
    environment = dict(os.environ, HFGD_TEST_PAUSE_AT=str(pause_at), HFGD_TEST_SAVE_MARKER=marker)
    process = subprocess.Popen(
        PAUSING_TRAIN + _arguments(data_dir, run_dir),
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(lambda: os.path.exists(marker), process, f"the save of ckpt-{pause_at}")
    process.send_signal(signal.SIGKILL)
    process.wait()
    committed = tf.train.latest_checkpoint(run_dir)
    assert (committed or "").endswith(f"ckpt-{pause_at - EPOCH_STEPS}") or (
        committed is None and pause_at == EPOCH_STEPS
    )

    # 2. SIGKILL between two steps, at a seeded step after the resume point.
    kill_at = int(rng.integers(pause_at - EPOCH_STEPS + 1, TOTAL_STEPS))
    log = str(tmp_path / "slow.log")
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            SLOW_TRAIN + _arguments(data_dir, run_dir),
            cwd=ROOT,
            env=dict(os.environ, HFGD_TEST_STEP_SECONDS="0.5"),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )

        def reached():
            with open(log) as handle:
                return f"step {kill_at}/{TOTAL_STEPS}" in handle.read()

        _wait_for(reached, process, f"step {kill_at}")
        process.send_signal(signal.SIGKILL)
        process.wait()

    # 3. The same command again runs to the end.
    result = _run(TRAIN + _arguments(data_dir, run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resumed from" in result.stderr or kill_at < EPOCH_STEPS
    _assert_same_weights(straight_dir, run_dir)


def test_a_truncated_latest_checkpoint_falls_back_with_a_warning_and_ends_at_the_uninterrupted_weights(
    data_dir, straight_dir, tmp_path
):
    run_dir = str(tmp_path / "copy")
    shutil.copytree(straight_dir, run_dir)
    data = os.path.join(run_dir, f"ckpt-{TOTAL_STEPS}.data-00000-of-00001")
    with open(data, "r+b") as handle:
        handle.truncate(os.path.getsize(data) // 3)
    latest = os.path.join(run_dir, f"ckpt-{TOTAL_STEPS}")

    # evaluate.py: a named unreadable checkpoint is refused by name, no traceback.
    result = _run(
        [sys.executable, "scripts/evaluate.py", f"--checkpoint_dir={run_dir}", f"--checkpoint=ckpt-{TOTAL_STEPS}"]
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert (
        f"--checkpoint='ckpt-{TOTAL_STEPS}': '{latest}' cannot be read: ckpt-{TOTAL_STEPS}.data-00000-of-00001 ("
        in result.stderr
    )
    # evaluate.py --checkpoint=latest scores the newest readable one and its results say which.
    results = str(tmp_path / "eval.json")
    result = _run(
        [
            sys.executable,
            "scripts/evaluate.py",
            f"--checkpoint_dir={run_dir}",
            "--checkpoint=latest",
            "--max_eval_batches=1",
            f"--results_json={results}",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fallback = os.path.join(run_dir, f"ckpt-{TOTAL_STEPS - EPOCH_STEPS}")
    assert f"Using ckpt-{TOTAL_STEPS - EPOCH_STEPS}" in result.stderr, result.stderr[-3000:]
    with open(results) as handle:
        recorded = json.load(handle)
    assert (recorded["checkpoint"], recorded["checkpoint_path"]) == ("latest", fallback)

    result = _run(TRAIN + _arguments(data_dir, run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    warning = f"Unreadable checkpoint skipped: {latest} (ckpt-{TOTAL_STEPS}.data-00000-of-00001 ("
    assert (
        warning in result.stderr
        and f"Resuming from ckpt-{TOTAL_STEPS - EPOCH_STEPS}, the newest readable one: {EPOCH_STEPS} steps are lost"
        in result.stderr
    ), result.stderr[-3000:]
    assert checkpoint_problem(latest) is None  # trained again and written whole
    _assert_same_weights(straight_dir, run_dir)


def test_a_shard_damaged_in_place_is_named_when_met_and_the_last_checkpoint_stays_intact(data_dir, tmp_path):
    damaged = str(tmp_path / "data")
    shutil.copytree(data_dir, damaged)
    run_dir = str(tmp_path / "run")
    result = _run(TRAIN + _arguments(damaged, run_dir, "--train_epoch=1"))
    assert result.returncode == 0, result.stderr[-3000:]
    before, _, _ = restore_model(run_dir, "latest")
    shard = os.path.join(damaged, "train-1.tfrecord")
    with open(shard, "r+b") as handle:  # same size, so the start-up size check passes
        middle = os.path.getsize(shard) // 2
        handle.seek(middle)
        handle.write(bytes(b ^ 0xFF for b in handle.read(64)))
        assert os.path.getsize(shard) == handle.seek(0, 2)

    result = _run(TRAIN + _arguments(damaged, run_dir))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"Training stopped: Corrupt record in training shard '{shard}' (split 'train')" in result.stderr
    assert f"Resumed from {run_dir}/ckpt-{EPOCH_STEPS}" in result.stderr  # met after the start, mid-training
    assert tf.train.latest_checkpoint(run_dir).endswith(f"ckpt-{EPOCH_STEPS}")
    after, _, _ = restore_model(run_dir, "latest")
    for a, b in zip(before.weights, after.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)

    # --verify_records names it at start, before anything is built.
    result = _run(TRAIN + _arguments(damaged, run_dir, "--verify_records"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"Invalid flags: Shard '{shard}' of split 'train' has SHA-256 " in result.stderr


def _no_space_in_tensor_data(monkeypatch, step):
    """The bundle writer's tensor data write fails as TensorFlow reports ENOSPC."""
    from tensorflow.python.ops import io_ops

    save_v2 = io_ops.save_v2

    def failing_save_v2(prefix, *args, **kwargs):
        if f"ckpt-{step}" in prefix.numpy().decode():
            raise tf.errors.ResourceExhaustedError(None, None, f"{prefix.numpy().decode()}: No space left on device")
        return save_v2(prefix, *args, **kwargs)

    monkeypatch.setattr(io_ops, "save_v2", failing_save_v2)


def _no_space_in_state_file(monkeypatch, step):
    """The tensors are written, then the `checkpoint` state file that would name them fails."""
    from tensorflow.python.checkpoint import checkpoint_management

    write = checkpoint_management.file_io.atomic_write_string_to_file

    def failing_write(filename, contents, *args, **kwargs):
        if f"ckpt-{step}" in str(contents):
            raise tf.errors.ResourceExhaustedError(None, None, f"{filename}: No space left on device")
        return write(filename, contents, *args, **kwargs)

    monkeypatch.setattr(checkpoint_management.file_io, "atomic_write_string_to_file", failing_write)


@pytest.mark.parametrize(
    "fault", [_no_space_in_tensor_data, _no_space_in_state_file], ids=["tensor_data", "state_file"]
)
def test_no_space_left_during_a_save_stops_with_a_named_error_and_the_previous_checkpoint_restores(
    data_dir, tmp_path, monkeypatch, fault
):
    run_dir = str(tmp_path)
    trainer = _trainer(data_dir, run_dir, steps=4, epoch_steps=2)
    saved = {}
    save_checkpoint = trainer.save_checkpoint

    def remember(step):  # the weights each successful save wrote
        path = save_checkpoint(step)
        saved[step] = _weights(trainer.model)
        return path

    trainer.save_checkpoint = remember
    fault(monkeypatch, step=4)
    with pytest.raises(
        CheckpointSaveError,
        match=rf"^Saving checkpoint ckpt-4 in '{run_dir}' failed \(ResourceExhaustedError: .*No space left on device\)\. "
        rf"Training stopped; the previous checkpoint '{run_dir}/ckpt-2' stays the latest one and a rerun of the same "
        "command resumes from it",
    ):
        trainer.train()
    monkeypatch.undo()
    assert sorted(saved) == [2]
    assert tf.train.latest_checkpoint(run_dir) == os.path.join(run_dir, "ckpt-2")
    model, _, _ = checkpoints.restore_model(run_dir, "latest")
    for restored, expected in zip(_weights(model), saved[2]):
        np.testing.assert_array_equal(restored, expected)
