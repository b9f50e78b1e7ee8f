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

TINY = [
    "--study_backbone=resnet_tiny",
    "--study_num_channels=16",
    "--study_crop_height=224",
    "--study_crop_width=224",
    "--study_batch_size=2",
    "--study_scratch_steps=2",
    "--study_pretrain_steps=2",
    "--study_finetune_steps=2",
    "--study_epoch_steps=2",
]


def _camvid(root):
    """3 train sequences of 4 frames and 2 val frames in the SegNet layout, 48x64, labels 0-11 (11: void)."""
    rng = np.random.default_rng(0)
    frames = {
        "train": [f"{sequence}_{i:05d}" for sequence in ("0001TP", "0006R0", "0016E5") for i in range(1, 5)],
        "val": ["0016E5_00010", "0016E5_00011"],
    }
    for split, names in frames.items():
        for directory in ("images", "labels"):
            (root / directory / split).mkdir(parents=True)
        for name in names:
            Image.fromarray(rng.integers(0, 255, (48, 64, 3), np.uint8)).save(root / "images" / split / f"{name}.png")
            Image.fromarray(rng.integers(0, 12, (48, 64), np.uint8)).save(root / "labels" / split / f"{name}.png")
    return root


def _run(tmp_path, *arguments):
    command = [
        sys.executable,
        os.path.join("experiments", "camvid_study", "run.py"),
        f"--work_dir={tmp_path / 'work'}",
        f"--results_dir={tmp_path / 'results'}",
        f"--camvid_dir={tmp_path / 'camvid'}",
        *TINY,
        *arguments,
    ]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)


def test_a_tiny_study_runs_its_new_rows_and_writes_its_page(tmp_path):
    _camvid(tmp_path / "camvid")
    rows = "--rows=A2_pretrain,D_upsampler_only"
    plan = _run(tmp_path, "--plan", "--position_encoding=normalized", rows)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert (
        "2 runs to do: A2_pretrain seed 0, D_upsampler_only seed 0" in plan.stdout and "Planned: about " in plan.stdout
    )
    assert "does not exist yet: a new study" in plan.stdout and not (tmp_path / "results").exists()
    # Nothing to report from a directory that does not exist (a mistyped --results_dir), nor first-study rows to run.
    missing = _run(tmp_path, "--report_only", "--position_encoding=normalized")
    assert missing.returncode != 0 and "--results_dir" in missing.stderr and "does not exist" in missing.stderr
    legacy = _run(tmp_path, "--plan", "--position_encoding=normalized", "--rows=B_sfpn")
    assert legacy.returncode != 0 and "a first-study row, never run again" in legacy.stderr
    done = _run(tmp_path, "--position_encoding=normalized", rows)
    assert done.returncode == 0, done.stderr[-3000:]
    results = {path.stem: json.loads(path.read_text()) for path in (tmp_path / "results").glob("*.json")}
    assert sorted(results) == ["A2_pretrain__seed0", "D_upsampler_only__seed0"]
    pretrain, diagnostic = results["A2_pretrain__seed0"], results["D_upsampler_only__seed0"]
    assert list(pretrain["scores"]) == ["logits"]  # the high-level model: no separate guidance head
    assert diagnostic["steps"] == 2 and diagnostic["settings"]["backbone"] == "resnet_tiny"
    assert diagnostic["model_config"]["cae_position_encoding"] == "normalized"
    assert diagnostic["train_config"]["init_weights_path"]  # the whole pretrained model
    assert diagnostic["pretrained_backbone_sha256"] == pretrain["pretrained_backbone_sha256"]
    for head in ("logits", "logits_high"):
        for mode in ("whole", "sliding"):
            assert 0 <= diagnostic["scores"][head][mode]["miou"] <= 1, (head, mode)
    assert diagnostic["miou"] == diagnostic["scores"]["logits"]["whole"]["miou"]
    series = diagnostic["diagnostic"]
    assert [point["step"] for point in series] == [0, 2]  # before training, and at its one epoch's end
    assert all(0 <= point["agreement"] <= 1 and point["kernel_norm"] > 0 for point in series)
    # Frozen backbone, high-level loss weighted 0: only weight decay moves the kernels, by much less than 1%.
    assert series[1]["kernel_norm"] == pytest.approx(series[0]["kernel_norm"], rel=1e-2)
    page = (tmp_path / "results" / "results.md").read_text()  # beside its JSONs, not over docs/results.md
    assert "| `D_upsampler_only` | Only the upsampler trains, on the converged high-level model | 1/1 |" in page
    assert "`D_upsampler_only` seed 0 over training:" in page
    # Another setting than the finished runs': their results no longer stand for the plan.
    changed = _run(tmp_path, "--plan", "--position_encoding=normalized", "--study_crop_height=256")
    assert changed.returncode != 0 and "settings.crop_height: 224 then, 256 now" in changed.stderr
    assert "Traceback" not in changed.stderr
    # The hand-written reading: a first line that is not the stamp is refused naming the file; --stamp_reading
    # marks it as written with the finished runs and puts it on the page.
    reading = tmp_path / "results" / "reading.md"
    reading.write_text("The upsampler adds little here.\n")
    refused = _run(tmp_path, "--report_only", "--position_encoding=normalized")
    assert refused.returncode != 0 and f"{reading}: the reading's first line must be" in refused.stderr
    assert "Traceback" not in refused.stderr
    stamped = _run(tmp_path, "--stamp_reading", "--position_encoding=normalized")
    assert stamped.returncode == 0, stamped.stderr[-3000:]
    assert reading.read_text() == (
        "<!-- written with the results of: A2_pretrain seed 0, D_upsampler_only seed 0 -->\n"
        "The upsampler adds little here.\n"
    )
    page = (tmp_path / "results" / "results.md").read_text()
    assert (
        "## Reading (written by hand)\n\nWritten with all 2 finished runs.\n\nThe upsampler adds little here.\n" in page
    )
