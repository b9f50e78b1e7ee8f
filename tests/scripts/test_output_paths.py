"""Every script checks its output flags before any work: an output path under a regular file (or a file
where a directory is wanted, and the reverse) is refused naming the flag, with no traceback."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _cases(blocker, directory):
    under_file = os.path.join(blocker, "out")
    return {
        "convert_tfrecord": (
            ["convert_tfrecord.py", "--dataset=synthetic_streets", f"--output_dir={under_file}"],
            "output_dir",
        ),
        "build_tfds": (
            ["build_tfds.py", "--dataset=camvid", f"--manual_dir={directory}", f"--tfds_data_dir={under_file}"],
            "tfds_data_dir",
        ),
        "convert_weights": (
            [
                "convert_weights.py",
                f"--source={blocker}",
                "--format=timm",
                "--backbone=resnet50",
                f"--output={under_file}/x.weights.h5",
            ],
            "output",
        ),
        "evaluate": (
            ["evaluate.py", f"--checkpoint_dir={directory}", f"--results_json={under_file}.json"],
            "results_json",
        ),
        "export": (["export.py", f"--checkpoint_dir={directory}", f"--export_dir={blocker}"], "export_dir"),
        "predict": (
            ["predict.py", f"--checkpoint_dir={directory}", f"--input={blocker}", f"--output_dir={under_file}"],
            "output_dir",
        ),
        "train": (["train.py", "--flagfile=experiments/demo.cfg", f"--checkpoint_dir={under_file}"], "checkpoint_dir"),
    }


@pytest.mark.parametrize("script", sorted(_cases("", "")))
def test_an_unwritable_output_path_is_refused_before_any_work(script, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    arguments, flag = _cases(str(blocker), str(tmp_path))[script]
    result = subprocess.run(
        [sys.executable, os.path.join("scripts", arguments[0])] + arguments[1:],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"Invalid flags: --{flag}=" in result.stderr and f"{str(blocker)!r}" in result.stderr, result.stderr[-3000:]
    assert sorted(os.listdir(tmp_path)) == ["a_file"]  # nothing was created
