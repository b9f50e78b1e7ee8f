"""Data flags are checked before a model is built or a run directory is written (train.py, evaluate.py)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _run(script, *arguments):
    return subprocess.run(
        [sys.executable, os.path.join("scripts", script), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("data_dir", ["", "nowhere"])
def test_train_without_records_fails_naming_data_dir_and_writes_nothing(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    arguments = ["--flagfile=experiments/demo.cfg", f"--checkpoint_dir={run_dir}"]
    if data_dir:
        arguments.append(f"--data_dir={tmp_path / data_dir}")
    result = _run("train.py", *arguments)
    assert result.returncode == 2, result.stderr[-2000:]
    expected = "is not set" if not data_dir else "does not exist or is not a directory"
    assert "Invalid flags: --data_dir" in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not run_dir.exists()


def test_evaluate_with_a_missing_eval_data_dir_fails_before_building_the_model(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # A run directory as training writes it (only run_config.json is read before the check).
    with open(run_dir / "run_config.json", "w") as handle:
        json.dump(
            {"model": {"num_classes": 8, "backbone": "resnet_tiny"}, "data": {"dataset": "synthetic_streets"}}, handle
        )
    result = _run("evaluate.py", f"--checkpoint_dir={run_dir}", f"--eval_data_dir={tmp_path / 'gone'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        "Invalid flags: --eval_data_dir" in result.stderr
        and "gone" in result.stderr
        and "does not exist" in result.stderr
    )
    assert sorted(os.listdir(run_dir)) == ["run_config.json"]
