"""Killing training with SIGKILL in the middle of a checkpoint save and rerunning the same command ends
with the weights of an uninterrupted run (default flags: no --op_determinism)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.train.checkpoints import restore_model
from tests.conftest import ROOT
from tests.train.tiny_runs import tiny_training_arguments

pytestmark = pytest.mark.slow

PAUSING_TRAIN = os.path.join(ROOT, "tests", "train", "train_pausing_in_checkpoint_save.py")


def _arguments(data_dir, checkpoint_dir):
    return tiny_training_arguments(data_dir, checkpoint_dir, checkpoints_to_keep=1)


def test_sigkill_during_a_checkpoint_save_then_resume_equals_an_uninterrupted_run(synthetic_records, tmp_path):
    straight_dir, killed_dir = str(tmp_path / "straight"), str(tmp_path / "killed")
    train = [sys.executable, "scripts/train.py"]
    subprocess.run(
        train + _arguments(synthetic_records, straight_dir), cwd=ROOT, check=True, capture_output=True, timeout=600
    )

    marker = str(tmp_path / "paused")
    environment = dict(os.environ, HFGD_TEST_PAUSE_AT="6", HFGD_TEST_SAVE_MARKER=marker)
    process = subprocess.Popen(
        [sys.executable, PAUSING_TRAIN] + _arguments(synthetic_records, killed_dir),
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not os.path.exists(marker) and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None and os.path.exists(marker), "training did not reach the save of ckpt-6"
    process.send_signal(signal.SIGKILL)
    process.wait()
    # Killed inside the save of ckpt-6 (with max 1 checkpoint kept): ckpt-3 is still the latest, intact.
    killed_at = tf.train.latest_checkpoint(killed_dir)
    assert killed_at and killed_at.endswith("ckpt-3"), killed_at
    assert os.path.isfile(killed_at + ".index")

    result = subprocess.run(
        train + _arguments(synthetic_records, killed_dir), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resumed from" in result.stderr and "ckpt-3 at step 3" in result.stderr
    straight, _, _ = restore_model(straight_dir, "latest")
    resumed, _, _ = restore_model(killed_dir, "latest")
    assert tf.train.latest_checkpoint(killed_dir).endswith("ckpt-12")
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)
