"""The scripts start without TensorFlow's CUDA probe output on machines without an NVIDIA driver."""

import glob
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

IMPORT_AND_RUN = "import hfgd_tf.cli.flags, tensorflow as tf; print(int(tf.constant(1) + 1))"


@pytest.mark.slow
@pytest.mark.skipif(
    bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.isdir("/proc/driver/nvidia"), reason="NVIDIA driver present"
)
def test_no_cuda_probe_messages_unless_asked_for():
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "HFGD_TF_SHOW_TF_STARTUP")}
    quiet = subprocess.run([sys.executable, "-c", IMPORT_AND_RUN], cwd=ROOT, capture_output=True, text=True, env=env)
    assert quiet.returncode == 0 and quiet.stdout.strip() == "2", quiet.stderr[-2000:]
    assert "cuda" not in quiet.stderr.lower() and "cuInit" not in quiet.stderr, quiet.stderr
    shown = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_RUN],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(env, HFGD_TF_SHOW_TF_STARTUP="1"),
    )
    assert "cuda" in shown.stderr.lower()  # what the quiet start hides (this machine has no GPU driver)
