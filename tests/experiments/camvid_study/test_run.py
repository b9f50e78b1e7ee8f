"""experiments/camvid_study/run.py end to end at a tiny size on a made-up CamVid: runs, resumes, writes the page."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

TINY = ["--study_backbone=resnet_tiny", "--study_num_channels=16", "--study_crop_height=32", "--study_crop_width=32",
        "--study_batch_size=2", "--study_scratch_steps=2", "--study_pretrain_steps=2", "--study_finetune_steps=2",
        "--study_epoch_steps=1"]


def _camvid(root):
    """3 train sequences of 4 frames and 2 val frames in the SegNet layout, 48x64, labels 0-11 (11: void)."""
    rng = np.random.default_rng(0)
    frames = {"train": [f"{sequence}_{i:05d}" for sequence in ("0001TP", "0006R0", "0016E5") for i in range(1, 5)],
              "val": ["0016E5_00010", "0016E5_00011"]}
    for split, names in frames.items():
        for directory in ("images", "labels"):
            (root / directory / split).mkdir(parents=True)
        for name in names:
            Image.fromarray(rng.integers(0, 255, (48, 64, 3), np.uint8)).save(root / "images" / split / f"{name}.png")
            Image.fromarray(rng.integers(0, 12, (48, 64), np.uint8)).save(root / "labels" / split / f"{name}.png")
    return root


def _run(tmp_path, *arguments):
    command = [sys.executable, os.path.join("experiments", "camvid_study", "run.py"), f"--work_dir={tmp_path / 'work'}",
               f"--results_dir={tmp_path / 'results'}", f"--camvid_dir={tmp_path / 'camvid'}", *TINY, *arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_a_tiny_study_runs_resumes_and_writes_its_page(tmp_path):
    _camvid(tmp_path / "camvid")
    done = _run(tmp_path, "--rows=B_hfgd", "--max_runs=1")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "results" / "B_hfgd__seed0.json").read_text())
    assert result["steps"] == 2 and result["settings"]["backbone"] == "resnet_tiny" and 0 <= result["miou"] <= 1
    assert "Stopped after --max_runs=1; 2 runs left" in done.stdout
    page = (tmp_path / "results" / "results.md").read_text()  # beside its JSONs, not over docs/results.md
    assert "| `B_hfgd` | HFGD full (OS4) | 1/3 |" in page
    plan = _run(tmp_path, "--plan")
    assert plan.returncode == 0 and "B_hfgd seed 1" in plan.stdout and "B_hfgd seed 0" not in plan.stdout
    # Another setting than the finished run's: its result no longer stands for the plan.
    changed = _run(tmp_path, "--plan", "--study_crop_height=64")
    assert changed.returncode != 0 and "settings.crop_height: 32 then, 64 now" in changed.stderr
    assert "Traceback" not in changed.stderr
