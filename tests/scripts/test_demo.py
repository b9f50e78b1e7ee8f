"""The user-facing path through the scripts: demo (train -> eval -> export -> predict), then the
separate evaluate / export / predict scripts on its run directory, and seed reproducibility."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

TINY_DEMO = [
    "--flagfile=experiments/demo.cfg",
    "--num_train_images=16",
    "--num_val_images=4",
    "--image_height=64",
    "--image_width=80",
    "--crop_height=48",
    "--crop_width=48",
    "--num_channels=16",
    "--batch_size=2",
    "--train_epoch=1",
    "--epoch_steps=6",
    "--log_every_steps=3",
    "--op_determinism",
]


def _run(script, *arguments, check=True):
    result = subprocess.run(
        [sys.executable, os.path.join("scripts", script), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{script} failed ({result.returncode}):\n{result.stdout}\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    first = str(tmp_path_factory.mktemp("demo_a"))
    second = str(tmp_path_factory.mktemp("demo_b"))
    outputs = [_run("demo.py", *TINY_DEMO, f"--output_dir={d}").stdout for d in (first, second)]
    return first, second, outputs


def test_demo_writes_every_artifact_and_says_where(demo_runs):
    first, _, outputs = demo_runs
    for name in (
        "saved_model",
        "eval_results.json",
        "prediction_color.png",
        "prediction_panel.png",
        "run/run_config.json",
    ):
        assert os.path.exists(os.path.join(first, name)), name
        assert os.path.join(first, name.split("/")[0]) in outputs[0]
    with open(os.path.join(first, "eval_results.json")) as handle:
        results = json.load(handle)
    assert results["protocol"]["scales"] == [1.0] and results["num_images"] == 4
    with open(os.path.join(first, "saved_model", "assets", "source.json")) as handle:
        source = json.load(handle)
    assert source == {
        "checkpoint_dir": os.path.realpath(os.path.join(first, "run")),
        "checkpoint": os.path.realpath(os.path.join(first, "run", "best", "model.weights.h5")),
    }
    assert "mIoU (synthetic val" in outputs[0]


def test_same_seed_gives_the_same_labels(demo_runs):
    first, second, _ = demo_runs
    labels = [np.asarray(Image.open(os.path.join(d, "prediction_label.png"))) for d in (first, second)]
    np.testing.assert_array_equal(labels[0], labels[1])
    with open(os.path.join(first, "eval_results.json")) as a, open(os.path.join(second, "eval_results.json")) as b:
        assert json.load(a)["confusion_matrix"] == json.load(b)["confusion_matrix"]


def test_evaluate_export_predict_scripts_on_the_run_directory(demo_runs, tmp_path):
    run_dir = os.path.join(demo_runs[0], "run")
    results = str(tmp_path / "eval.json")
    output = _run(
        "evaluate.py", f"--checkpoint_dir={run_dir}", "--checkpoint=latest", "--flip", f"--results_json={results}"
    ).stdout
    assert "mIoU" in output
    with open(results) as handle:
        assert json.load(handle)["protocol"]["flip"] is True

    export_dir = str(tmp_path / "exported")
    _run("export.py", f"--checkpoint_dir={run_dir}", f"--export_dir={export_dir}")
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    Image.open(os.path.join(demo_runs[0], "prediction_overlay.png")).save(image_dir / "scene.png")
    predicted = _run(
        "predict.py", f"--saved_model={export_dir}", f"--input={image_dir}", f"--output_dir={tmp_path / 'out'}"
    )
    for name in os.listdir(tmp_path / "out"):  # every file written is named
        assert str(tmp_path / "out" / name) in predicted.stdout, (name, predicted.stdout)
    _run(
        "predict.py",
        f"--checkpoint_dir={run_dir}",
        f"--input={image_dir / 'scene.png'}",
        f"--output_dir={tmp_path / 'out2'}",
    )
    with open(os.path.join(export_dir, "assets", "source.json")) as handle:
        source = json.load(handle)
    assert source["checkpoint_dir"] == os.path.realpath(run_dir)
    assert source["checkpoint"] == os.path.realpath(
        os.path.join(run_dir, "best", "model.weights.h5")
    )  # --checkpoint=best
    # An experiment flagfile sets --checkpoint_dir: beside --saved_model it is accepted for the run the
    # export came from (and the flagfile's model flags are checked against that run), refused for another.
    both = _run(
        "predict.py",
        f"--saved_model={export_dir}",
        f"--checkpoint_dir={run_dir}",
        "--num_channels=16",
        "--eval_scales=1",
        "--flip=false",
        f"--input={image_dir}",
        f"--output_dir={tmp_path / 'out3'}",
    )
    assert f"exported from {run_dir}" in both.stdout
    other_run = _run(
        "predict.py",
        f"--saved_model={export_dir}",
        f"--checkpoint_dir={tmp_path}",
        f"--input={image_dir}",
        f"--output_dir={tmp_path / 'out4'}",
        check=False,
    )
    assert other_run.returncode == 2 and "Traceback" not in other_run.stderr
    assert (
        f"was exported from '{os.path.realpath(run_dir)}', not from --checkpoint_dir='{tmp_path}'" in other_run.stderr
    )
    corrupt = tmp_path / "corrupt_export"
    shutil.copytree(export_dir, corrupt)
    (corrupt / "assets" / "source.json").write_text("{not json")
    corrupt_run = _run(
        "predict.py",
        f"--saved_model={corrupt}",
        f"--checkpoint_dir={run_dir}",
        f"--input={image_dir}",
        f"--output_dir={tmp_path / 'out6'}",
        check=False,
    )
    assert corrupt_run.returncode == 2 and "Traceback" not in corrupt_run.stderr
    assert "source.json' is not JSON" in corrupt_run.stderr and not (tmp_path / "out6").exists()
    shutil.copy(export_dir + "/assets/source.json", corrupt / "assets" / "source.json")
    (corrupt / "assets" / "labels.json").write_text('{"class_names": [], "colormap": [[0, 0, 300]]}')
    corrupt_labels = _run(
        "predict.py",
        f"--saved_model={corrupt}",
        f"--input={image_dir}",
        f"--output_dir={tmp_path / 'out7'}",
        check=False,
    )
    assert corrupt_labels.returncode == 2 and "Traceback" not in corrupt_labels.stderr
    assert "labels.json' must hold" in corrupt_labels.stderr and not (tmp_path / "out7").exists()
    wrong_flag = _run(
        "predict.py",
        f"--saved_model={export_dir}",
        f"--checkpoint_dir={run_dir}",
        "--num_channels=32",
        f"--input={image_dir}",
        f"--output_dir={tmp_path / 'out5'}",
        check=False,
    )
    assert (
        wrong_flag.returncode == 2 and "--num_channels=32 differs from the run's num_channels=16" in wrong_flag.stderr
    )
    # The export predicts at the scales and flip baked into it: flags asking for another protocol are refused,
    # not ignored (the export was written without --flip, with scale 1).
    other_protocol = _run(
        "predict.py",
        f"--saved_model={export_dir}",
        "--flip",
        f"--input={image_dir}",
        f"--output_dir={tmp_path / 'out7'}",
        check=False,
    )
    assert other_protocol.returncode == 2 and "Traceback" not in other_protocol.stderr
    assert (
        f"Invalid flags: --flip=true (command line or flagfile) asks for scales [1.0] with flip, but "
        f"--saved_model='{export_dir}' supports scales [1.0] without flip only (baked in at export)"
    ) in other_protocol.stderr
    assert not (tmp_path / "out7").exists()
    # An export with multi-scale and flip: the same scales in another order are that protocol; a flagfile's
    # single-scale values (as experiments/base.cfg sets them) are not.
    multi_scale = str(tmp_path / "exported_multi_scale")
    _run("export.py", f"--checkpoint_dir={run_dir}", f"--export_dir={multi_scale}", "--eval_scales=0.75,1", "--flip")
    _run(
        "predict.py",
        f"--saved_model={multi_scale}",
        "--eval_scales=1,0.75",
        "--flip",
        f"--input={image_dir}",
        f"--output_dir={tmp_path / 'out10'}",
    )
    flagfile = tmp_path / "single_scale.cfg"
    flagfile.write_text("--eval_scales=1.0\n--flip=false\n")
    from_flagfile = _run(
        "predict.py",
        f"--flagfile={flagfile}",
        f"--saved_model={multi_scale}",
        f"--input={image_dir}",
        f"--output_dir={tmp_path / 'out11'}",
        check=False,
    )
    assert (
        from_flagfile.returncode == 2
        and (
            "Invalid flags: --eval_scales=1.0 --flip=false (command line or flagfile) asks for scales [1.0] without flip, "
            f"but --saved_model='{multi_scale}' supports scales [0.75, 1.0] with flip only (baked in at export)"
        )
        in from_flagfile.stderr
    )
    windows = _run(
        "predict.py",
        f"--saved_model={export_dir}",
        "--sliding_window_height=32",
        "--sliding_window_width=32",
        f"--input={image_dir}",
        f"--output_dir={tmp_path / 'out8'}",
        check=False,
    )
    assert (
        windows.returncode == 2
        and (
            "Invalid flags: --sliding_window_height=32 --sliding_window_width=32 (command line or flagfile) asks for "
            f"sliding-window inference, but --saved_model='{export_dir}' supports whole-image inference only"
        )
        in windows.stderr
    )
    unrecorded = tmp_path / "export_without_protocol"
    shutil.copytree(export_dir, unrecorded)
    os.remove(unrecorded / "assets" / "inference.json")
    old_export = _run(
        "predict.py",
        f"--saved_model={unrecorded}",
        "--eval_scales=0.5,1",
        f"--input={image_dir}",
        f"--output_dir={tmp_path / 'out9'}",
        check=False,
    )
    assert old_export.returncode == 2 and "does not record the scales and flip baked into it" in old_export.stderr
    from_saved_model = np.asarray(Image.open(tmp_path / "out" / "scene_label.png"))
    from_checkpoint = np.asarray(Image.open(tmp_path / "out2" / "scene_label.png"))
    assert from_saved_model.shape == (64, 80)
    np.testing.assert_array_equal(from_saved_model, from_checkpoint)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out3" / "scene_label.png")), from_saved_model)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--output_stride=3"], "output_stride"),
        (["--no_such_flag=1"], "no_such_flag"),
        (["--backbone=resnet9000"], "backbone"),
        (["--mixed_precision=float8"], "mixed_precision"),
        (["--eval_scales=1.0,big"], "--eval_scales must be a comma-separated list of numbers"),
        (
            ["--checkpoint_dir={file}/run"],
            "--checkpoint_dir='{file}/run' cannot be written as a directory: '{file}' (on the way to it) is a file",
        ),
    ],
)
def test_bad_flags_fail_at_start_with_a_message_naming_them(arguments, message, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    arguments = [a.format(file=a_file) for a in arguments]
    result = _run(
        "train.py", "--flagfile=experiments/demo.cfg", f"--checkpoint_dir={tmp_path}", *arguments, check=False
    )
    assert result.returncode != 0
    assert message.format(file=a_file) in result.stderr
    assert "Traceback" not in result.stderr


def test_run_scripts_refuse_unwritable_outputs_and_bad_scales_at_start(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    Image.new("RGB", (8, 8)).save(tmp_path / "image.png")
    cases = [
        ("evaluate.py", ["--eval_scales=0.5,x"], "--eval_scales must be a comma-separated list of numbers"),
        (
            "export.py",
            [f"--export_dir={a_file}/exports/x"],
            f"--export_dir='{a_file}/exports/x' cannot be written as a directory: '{a_file}' (on the way to it) is a file",
        ),
        (
            "predict.py",
            [f"--input={tmp_path / 'image.png'}", f"--output_dir={a_file}/out"],
            f"--output_dir='{a_file}/out' cannot be written as a directory: '{a_file}' (on the way to it) is a file",
        ),
    ]
    for script, arguments, message in cases:
        result = _run(script, f"--checkpoint_dir={tmp_path}", *arguments, check=False)
        assert result.returncode == 2, (script, result.stderr[-2000:])
        assert message in result.stderr, (script, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, script


def test_demo_reports_a_trainer_config_error_without_a_traceback(tmp_path):
    # A keras-cv preset saved as the published ones are needs --input_normalization=zero_one (the Trainer's check).
    import keras_cv
    from keras_cv.src.utils.preset_utils import save_to_preset

    save_to_preset(
        keras_cv.models.ResNetBackbone(
            stackwise_filters=[8, 8, 16, 16],
            stackwise_blocks=[1, 1, 1, 1],
            stackwise_strides=[1, 2, 2, 2],
            block_type="block",
            include_rescaling=True,
        ),
        str(tmp_path / "preset"),
    )
    result = _run(
        "demo.py",
        *TINY_DEMO,
        "--backbone=keras_cv:ResNetBackbone",
        f"--backbone_preset_dir={tmp_path / 'preset'}",
        f"--output_dir={tmp_path / 'out'}",
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        "Invalid flags: --backbone_preset_dir=" in result.stderr
        and "give --input_normalization=zero_one" in result.stderr
    )


def test_evaluate_defaults_to_the_protocol_stored_with_the_run(demo_runs, tmp_path):
    import shutil

    run_dir = str(tmp_path / "run")
    shutil.copytree(os.path.join(demo_runs[0], "run"), run_dir)
    config_path = os.path.join(run_dir, "run_config.json")
    with open(config_path) as handle:
        run_config = json.load(handle)
    run_config["eval"].update(eval_scales=[0.75, 1.0], flip=True, sliding_window_height=40, sliding_window_width=48)
    with open(config_path, "w") as handle:
        json.dump(run_config, handle)
    stored, overridden = str(tmp_path / "stored.json"), str(tmp_path / "overridden.json")
    _run("evaluate.py", f"--checkpoint_dir={run_dir}", "--checkpoint=latest", f"--results_json={stored}")
    _run(
        "evaluate.py", f"--checkpoint_dir={run_dir}", "--checkpoint=latest", "--noflip", f"--results_json={overridden}"
    )
    with open(stored) as handle:
        protocol = json.load(handle)["protocol"]
    assert protocol["scales"] == [0.75, 1.0] and protocol["flip"] is True and protocol["sliding_window"] == [40, 48]
    with open(overridden) as handle:
        protocol = json.load(handle)["protocol"]
    assert protocol["scales"] == [0.75, 1.0] and protocol["flip"] is False and protocol["sliding_window"] == [40, 48]


def test_flag_reference_is_up_to_date():
    result = subprocess.run(
        [sys.executable, "tools/flag_reference.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
