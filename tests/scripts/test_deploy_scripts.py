"""export.py --format/--quantize, then evaluate.py and predict.py --exported, as a user runs them."""

import json
import os
import subprocess
import sys

import pytest

from hfgd_tf.data.synthetic import write_synthetic_tfrecords
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
pytest.importorskip("ai_edge_litert", reason="LiteRT runtime (ai-edge-litert) not installed: pip install 'hfgd_tf[deploy]'")


def _run(script, *arguments, returncode=0):
    result = subprocess.run(
        [sys.executable, os.path.join("scripts", script), *arguments], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == returncode, f"{script} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout if returncode == 0 else result.stderr


def test_an_int8_litert_export_is_scored_and_predicts_in_its_runtime(tmp_path):
    # Not the shared synthetic_records: non-square 48x64 images, the size of the fixed-size export below.
    records = write_synthetic_tfrecords(str(tmp_path / "records"), 4, 2, 48, 64, examples_per_shard=2)
    run_dir = str(tmp_path / "run")
    _run(
        "train.py", "--dataset=synthetic_streets", f"--data_dir={records}", f"--checkpoint_dir={run_dir}",
        "--backbone=resnet_tiny", "--num_channels=16", "--cae_num_heads=4", "--batch_size=2", "--crop_height=32",
        "--crop_width=32", "--train_epoch=1", "--epoch_steps=2", "--strategy=one_device", "--shuffle_buffer=4",
        "--noevaluate_every_epoch",
    )
    refused = _run("export.py", f"--checkpoint_dir={run_dir}", "--checkpoint=latest", "--format=onnx", "--eval_scales=0.75,1.0", returncode=2)
    assert "--format=onnx exports single-scale inference without flip" in refused
    refused = _run("export.py", f"--checkpoint_dir={run_dir}", "--checkpoint=latest", "--format=litert", returncode=2)
    assert "--format=litert needs a fixed input size" in refused
    assert not os.path.exists(os.path.join(run_dir, "litert"))

    printed = _run(
        "export.py", f"--checkpoint_dir={run_dir}", "--checkpoint=latest", "--format=litert", "--quantize=int8",
        "--calibration_steps=3", "--export_height=48", "--export_width=64",
    )
    export_dir = os.path.join(run_dir, "litert_int8")
    assert f"litert export (int8): {export_dir}" in printed
    assert sorted(os.listdir(export_dir)) == ["assets", "model.tflite"]
    with open(os.path.join(export_dir, "assets", "source.json")) as handle:
        assert json.load(handle)["checkpoint_dir"] == os.path.realpath(run_dir)

    results = str(tmp_path / "eval.json")
    assert "mIoU" in _run("evaluate.py", f"--checkpoint_dir={run_dir}", f"--exported={export_dir}", f"--results_json={results}")
    with open(results) as handle:
        metrics = json.load(handle)
    assert metrics["num_images"] == 2 and 0 <= metrics["miou"] <= 1
    assert metrics["protocol"]["exported"] == {"format": "litert", "quantize": "int8", "input_size": [48, 64]}
    assert metrics["exported"] == export_dir

    # predict.py takes any image size: the fixed-size export gets it resized.
    import numpy as np
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 50, 3)).astype(np.uint8)).save(images / "a.png")
    _run("predict.py", f"--exported={export_dir}", f"--input={images}", f"--output_dir={tmp_path / 'out'}")
    with Image.open(tmp_path / "out" / "a_label.png") as label:
        assert label.size == (50, 30)
