"""export.py --format/--quantize, then evaluate.py and predict.py --exported, as a user runs them."""

import json
import os
import subprocess
import sys

import pytest

from hfgd_tf.data.synthetic import write_synthetic_tfrecords
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
pytest.importorskip(
    "ai_edge_litert", reason="LiteRT runtime (ai-edge-litert) not installed: pip install 'hfgd_tf[deploy]'"
)


def _run(script, *arguments, returncode=0):
    result = subprocess.run(
        [sys.executable, os.path.join("scripts", script), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == returncode, f"{script} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout if returncode == 0 else result.stderr


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run trained (briefly) with a multi-scale, flipped evaluation protocol, stored in its run_config.json."""
    directory = tmp_path_factory.mktemp("deploy")
    records = write_synthetic_tfrecords(str(directory / "records"), 4, 2, 48, 64, examples_per_shard=2)
    run_dir = str(directory / "run")
    _run(
        "train.py",
        "--dataset=synthetic_streets",
        f"--data_dir={records}",
        f"--checkpoint_dir={run_dir}",
        "--backbone=resnet_tiny",
        "--num_channels=16",
        "--cae_num_heads=4",
        "--batch_size=2",
        "--crop_height=32",
        "--crop_width=32",
        "--train_epoch=1",
        "--epoch_steps=2",
        "--strategy=one_device",
        "--shuffle_buffer=4",
        "--noevaluate_every_epoch",
        "--eval_scales=0.75,1.0",
        "--flip",
    )
    return run_dir


def test_an_int8_litert_export_is_scored_and_predicts_in_its_runtime(run_dir, tmp_path):
    refused = _run(
        "export.py",
        f"--checkpoint_dir={run_dir}",
        "--checkpoint=latest",
        "--format=onnx",
        "--eval_scales=0.75,1.0",
        returncode=2,
    )
    assert "--format=onnx exports single-scale inference without flip" in refused
    refused = _run("export.py", f"--checkpoint_dir={run_dir}", "--checkpoint=latest", "--format=litert", returncode=2)
    assert "--format=litert needs a fixed input size" in refused
    assert not os.path.exists(os.path.join(run_dir, "litert"))
    litert_int8 = (
        "--format=litert",
        "--quantize=int8",
        "--calibration_steps=3",
        "--export_height=48",
        "--export_width=64",
    )
    # The run's protocol (several scales, flip) is the export's default: a single-pass format refuses it, saying
    # where it came from and how to override it.
    refused = _run("export.py", f"--checkpoint_dir={run_dir}", "--checkpoint=latest", *litert_int8, returncode=2)
    assert "--format=litert exports single-scale inference without flip" in refused
    assert (
        f"the run's evaluation protocol ({os.path.join(run_dir, 'run_config.json')}: --eval_scales=0.75,1.0 --flip=true)"
        in refused
    )

    printed = _run(
        "export.py",
        f"--checkpoint_dir={run_dir}",
        "--checkpoint=latest",
        *litert_int8,
        "--eval_scales=1",
        "--noflip",
    )
    export_dir = os.path.join(run_dir, "litert_int8")
    assert f"litert export (int8): {export_dir}" in printed
    assert sorted(os.listdir(export_dir)) == ["assets", "model.tflite"]
    with open(os.path.join(export_dir, "assets", "source.json")) as handle:
        assert json.load(handle)["checkpoint_dir"] == os.path.realpath(run_dir)

    results = str(tmp_path / "eval.json")
    printed = _run(
        "evaluate.py", f"--checkpoint_dir={run_dir}", f"--exported={export_dir}", f"--results_json={results}"
    )
    assert "mIoU" in printed
    assert (
        f"the run evaluates at scales [0.75, 1.0] with flip; {export_dir} runs scales [1.0] without flip (baked in "
        "at export)"
    ) in printed
    with open(results) as handle:
        metrics = json.load(handle)
    assert metrics["num_images"] == 2 and 0 <= metrics["miou"] <= 1
    assert metrics["protocol"]["exported"] == {"format": "litert", "quantize": "int8", "input_size": [48, 64]}
    assert (metrics["protocol"]["scales"], metrics["protocol"]["flip"]) == ([1.0], False)
    assert metrics["exported"] == export_dir
    # Protocol flags the export cannot run are refused, naming the flag and what the export runs.
    refused = _run("evaluate.py", f"--checkpoint_dir={run_dir}", f"--exported={export_dir}", "--flip", returncode=2)
    assert (
        f"Invalid flags: --flip=true (command line or flagfile) asks for scales [0.75, 1.0] with flip, but "
        f"--exported='{export_dir}' supports scales [1.0] without flip only (baked in at export)"
    ) in refused
    refused = _run(
        "evaluate.py",
        f"--checkpoint_dir={run_dir}",
        f"--exported={export_dir}",
        "--sliding_window_height=32",
        "--sliding_window_width=32",
        returncode=2,
    )
    assert (
        "Invalid flags: --sliding_window_height=32 --sliding_window_width=32 (command line or flagfile) asks for "
        f"sliding-window inference, but --exported='{export_dir}' supports whole-image inference only"
    ) in refused
    assert not os.path.exists(os.path.join(run_dir, "eval_exported_litert_int8.json"))

    # predict.py takes any image size: the fixed-size export gets it resized.
    import numpy as np
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 50, 3)).astype(np.uint8)).save(images / "a.png")
    _run("predict.py", f"--exported={export_dir}", f"--input={images}", f"--output_dir={tmp_path / 'out'}")
    with Image.open(tmp_path / "out" / "a_label.png") as label:
        assert label.size == (50, 30)


def test_an_export_takes_the_runs_protocol_and_scores_as_evaluate_does(run_dir, tmp_path):
    export_dir = str(tmp_path / "saved_model")
    _run("export.py", f"--checkpoint_dir={run_dir}", "--checkpoint=latest", f"--export_dir={export_dir}")
    with open(os.path.join(export_dir, "assets", "inference.json")) as handle:
        assert json.load(handle) == {"eval_scales": [0.75, 1.0], "flip": True}
    scored = {}
    for name, flags in (("checkpoint", ()), ("exported", (f"--exported={export_dir}",))):
        results = str(tmp_path / f"{name}.json")
        _run("evaluate.py", f"--checkpoint_dir={run_dir}", "--checkpoint=latest", *flags, f"--results_json={results}")
        with open(results) as handle:
            scored[name] = json.load(handle)
    for metrics in scored.values():
        assert (metrics["protocol"]["scales"], metrics["protocol"]["flip"]) == ([0.75, 1.0], True)
    assert abs(scored["checkpoint"]["miou"] - scored["exported"]["miou"]) < 1e-3, scored


def test_evaluating_an_export_of_other_classes_is_refused_by_name(run_dir, tmp_path):
    from hfgd_tf.export import ExportConfig, export_model
    from tests.export.parity import CLASS_NAMES, COLORMAP, tiny_segmenter

    export_dir = export_model(tiny_segmenter(), str(tmp_path / "four_classes"), ExportConfig(), CLASS_NAMES, COLORMAP)
    refused = _run("evaluate.py", f"--checkpoint_dir={run_dir}", f"--exported={export_dir}", returncode=2)
    assert (
        f"Invalid flags: '{export_dir}' predicts 4 classes (its assets/labels.json names 4), but the dataset "
        "evaluated has 8"
    ) in refused
