"""Killing training with SIGKILL and rerunning the same command ends with the weights of an uninterrupted run."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.data.synthetic import write_synthetic_tfrecords
from hfgd_tf.train.checkpoints import restore_model
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _command(data_dir, checkpoint_dir):
    return [
        sys.executable, "scripts/train.py", "--flagfile=experiments/demo.cfg", f"--data_dir={data_dir}",
        f"--checkpoint_dir={checkpoint_dir}", "--crop_height=48", "--crop_width=48", "--num_channels=16",
        "--batch_size=2", "--train_epoch=4", "--epoch_steps=3", "--log_every_steps=1", "--noevaluate_every_epoch",
        "--op_determinism", "--shuffle_buffer=8",
    ]


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path):
    data_dir = write_synthetic_tfrecords(str(tmp_path / "data"), 12, 2, 64, 64, examples_per_shard=6)
    straight_dir, killed_dir = str(tmp_path / "straight"), str(tmp_path / "killed")
    subprocess.run(_command(data_dir, straight_dir), cwd=ROOT, check=True, capture_output=True, timeout=600)

    process = subprocess.Popen(_command(data_dir, killed_dir), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (tf.train.latest_checkpoint(killed_dir) or "").endswith("ckpt-6"):
        if process.poll() is not None:
            break
        time.sleep(0.05)
    assert process.poll() is None, "training finished before it could be killed; make the run longer"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = tf.train.latest_checkpoint(killed_dir)
    assert killed_at and not killed_at.endswith("ckpt-12"), killed_at

    result = subprocess.run(_command(data_dir, killed_dir), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resumed from" in result.stderr
    straight, _, _ = restore_model(straight_dir, "latest")
    resumed, _, _ = restore_model(killed_dir, "latest")
    assert tf.train.latest_checkpoint(killed_dir).endswith("ckpt-12")
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)
