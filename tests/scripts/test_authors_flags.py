"""The authors' flag names: aliases and translations into our configs, unsupported flags failing
with what to use, and a flagfile written with their names training and evaluating the demo model."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

# Parses argv with train.py's flags and prints the configs (or the error) as JSON: no training.
CONFIGS = textwrap.dedent(
    """
    import dataclasses, json, sys
    from hfgd_tf.cli import flags as cli_flags
    from absl import flags
    cli_flags.define_all()
    FLAGS = flags.FLAGS
    results = []
    for line in sys.argv[1:]:
        FLAGS.unparse_flags()
        FLAGS(["train.py"] + line.split())
        try:
            configs = {
                "model": cli_flags.model_config_from_flags(),
                "data": cli_flags.data_config_from_flags(),
                "optimizer": cli_flags.optimizer_config_from_flags(),
                "train": cli_flags.train_config_from_flags(),
                "eval": cli_flags.eval_config_from_flags(),
            }
            results.append({k: dataclasses.asdict(v) for k, v in configs.items()})
        except ValueError as error:
            results.append({"error": str(error)})
    print(json.dumps(results))
    """
)


def _configs(*lines):
    result = subprocess.run(
        [sys.executable, "-c", CONFIGS, *lines], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


THEIRS = (
    "--checkpoint_dir=/tmp/unused --mode=train --train_datasets=camvid --camvid_path=/records/camvid "
    "--cityscapes_path=/records/cityscapes --use_tfrecord=True --compress=False --shuffle=7 "
    "--backbone=resnet50 --resnet50_weights_path=/w/r50.weights.h5 --swin_tiny_weights_path=/w/swin.h5 "
    "--global_norm_method=group_norm --bn_epsilon=1e-5 --aux_loss=False --aux_loss_rate=0.4 "
    "--gpu_batch_size=4 --eval_gpu_batch_size=2 --train_epoch=3 --epoch_steps=10 --random_seed=3 --tpu_name= "
    "--optimizer=adamw --adamw_weight_decay=0.05 --initial_lr=0.001 --end_lr=0.0001 --decay_strategy=cosine "
    "--sgd_momentum_rate=0.8 --scale_rates=0.75,1.0,1.25 --flip=True --sliding_window_crop_height=33 "
    "--sliding_window_crop_width=44 --mixed_precision=False --max_checkpoints_to_keep=2 --restore_checkpoint=False "
    "--gpu_memory_growth=True --soft_device_placement=True --initial_epoch=0 --trainval=False"
)


@pytest.mark.slow
def test_their_names_become_our_config_fields(parsed):
    configs = parsed[THEIRS]
    model, data, optimizer, train, evaluation = (configs[k] for k in ("model", "data", "optimizer", "train", "eval"))
    assert (data["dataset"], data["data_dir"], data["compression"], data["shuffle_buffer"], data["seed"]) == (
        "camvid",
        "/records/camvid",
        "",
        7,
        3,
    )
    assert (model["num_classes"], model["backbone_weights_path"], model["norm_method"], model["bn_epsilon"]) == (
        11,
        "/w/r50.weights.h5",
        "group_norm",
        1e-5,
    )
    assert (train["batch_size"], train["train_epoch"], train["epoch_steps"], train["seed"], train["tpu"]) == (
        4,
        3,
        10,
        3,
        "",
    )
    assert (train["mixed_precision"], train["max_checkpoints_to_keep"], train["restore_checkpoint"]) == (
        "none",
        2,
        False,
    )
    assert (optimizer["optimizer"], optimizer["weight_decay"], optimizer["initial_lr"], optimizer["end_lr"]) == (
        "adamw",
        0.05,
        0.001,
        0.0001,
    )
    assert (optimizer["decay_strategy"], optimizer["sgd_momentum_rate"]) == ("cosine", 0.8)
    assert evaluation == {
        "eval_scales": [0.75, 1.0, 1.25],
        "flip": True,
        "sliding_window_height": 33,
        "sliding_window_width": 44,
        "scored_output": "logits",
        "eval_batch_size": 2,
    }


UNSUPPORTED = {
    "--aux_loss=True": "--aux_loss=True (the authors' flag) is not supported: HFGD has no auxiliary head; its high-level branch loss is weighted by --high_loss_weight",
    "--use_tfrecord=False": "--use_tfrecord=False (the authors' flag) is not supported: convert the raw folders with scripts/convert_tfrecord.py",
    "--tensorboard_dir=/tb": "--tensorboard_dir=/tb (the authors' flag) is not supported: TensorBoard logs go to <--checkpoint_dir>/logs",
    "--initial_epoch=2": "--initial_epoch=2 (the authors' flag) is not supported: rerun the same command",
    "--trainval=True": "--trainval=True (the authors' flag) is not supported: convert train and val into one split",
    "--backbone_bn_momentum=0.9": "--backbone_bn_momentum=0.9 (the authors' flag) is not supported: --bn_momentum",
    "--mode=val": "--mode=val: each mode is its own script here; use scripts/evaluate.py",
    "--train_datasets=camvid,cityscapes": "--train_datasets=camvid,cityscapes: give one dataset of",
    "--val_datasets=cityscapes": "--val_datasets=cityscapes: evaluation uses --dataset=synthetic_streets's --eval_split",
    "--dataset=camvid --train_datasets=cityscapes": "--train_datasets=cityscapes conflicts with --dataset=camvid",
    "--data_dir=/a --synthetic_streets_path=/b": "--synthetic_streets_path conflicts with --data_dir=/a",
}


ACCEPTED = "--checkpoint_dir=/x --aux_loss=False --aux_loss_rate=0.3 --bn_momentum=0.9 --backbone_bn_momentum=0.9"


@pytest.fixture(scope="module")
def parsed():
    """Every command line of this module parsed in one process (TF imports once)."""
    lines = [THEIRS, ACCEPTED] + [f"--checkpoint_dir=/tmp/unused {flag}" for flag in UNSUPPORTED]
    return dict(zip(lines, _configs(*lines)))


@pytest.mark.slow
def test_unsupported_flags_fail_naming_the_flag_and_what_to_use(parsed):
    for flag, expected in UNSUPPORTED.items():
        result = parsed[f"--checkpoint_dir=/tmp/unused {flag}"]
        assert expected in result.get("error", ""), (flag, result.get("error"))
    # Their harmless values are accepted: a head that is off, the backbone momentum equal to ours.
    accepted = parsed[ACCEPTED]
    assert "error" not in accepted and accepted["model"]["bn_momentum"] == 0.9


class _Example:
    """A docstring whose list of names continues on the next line.

    Attributes:
        alpha_1, beta,
        gamma: int. Shared text
            on two lines.
        delta: str. Own text.
    """


def test_the_help_texts_are_the_right_ones():
    from hfgd_tf.cli import flags as cli_flags
    from hfgd_tf.models.config import ModelConfig

    helps = cli_flags._field_help(ModelConfig)
    assert helps["output_stride"] == (
        "int. Output stride of the upsampler's logits: 8, 4 or 2. Not the authors' `output_stride` (their "
        "backbone's, set by dilation), which is `backbone_output_stride` here."
    )
    assert (
        helps["os2_num_channels"]
        == "int. Width of the OS2 stage of the upsampler; 0 means max(8, upsampler width // 4) ([ours])."
    )
    for switch, start in (
        ("stop_gradient_backbone", "bool. Stop the gradient of the backbone features entering the upsampler"),
        ("stop_gradient_guidance", "bool. Stop the gradient of the guidance H"),
        ("stop_gradient_class_kernels", "bool. Stop the gradient of the shared class kernels"),
        ("share_class_kernels", "bool. The upsampler classifies with the high-level branch's class kernels"),
    ):
        assert helps[switch].startswith(start) and helps[switch].endswith("Default on."), switch
    assert cli_flags._field_help(_Example) == {
        "alpha_1": "int. Shared text on two lines.",
        "beta": "int. Shared text on two lines.",
        "gamma": "int. Shared text on two lines.",
        "delta": "str. Own text.",
    }


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


@pytest.mark.slow
def test_a_flagfile_with_their_names_trains_and_evaluates_the_demo_model(synthetic_records, tmp_path):
    records = synthetic_records
    run_dir = tmp_path / "run"
    train_cfg = tmp_path / "train.cfg"
    train_cfg.write_text(
        "\n".join(
            [
                "--mode=train",
                "--train_datasets=synthetic_streets",
                f"--synthetic_streets_path={records}",
                "--use_tfrecord=True",
                "--compress=True",
                f"--checkpoint_dir={run_dir}",
                "--backbone=resnet_tiny",
                "--num_channels=16",
                "--cae_num_heads=4",
                "--global_norm_method=batch_norm",
                "--gpu_batch_size=2",
                "--eval_gpu_batch_size=1",
                "--crop_height=32",
                "--crop_width=32",
                "--train_epoch=1",
                "--epoch_steps=2",
                "--initial_lr=0.01",
                "--end_lr=0",
                "--decay_strategy=poly",
                "--sgd_momentum_rate=0.9",
                "--random_seed=1",
                "--mixed_precision=False",
                "--restore_checkpoint=True",
                "--max_checkpoints_to_keep=1",
                "--strategy=one_device",
                "--shuffle=8",
                "--evaluate_every_epoch=false",
            ]
        )
    )
    _run("train.py", f"--flagfile={train_cfg}")
    assert (run_dir / "ckpt-2.index").exists()  # train_epoch * epoch_steps = 2 steps
    with open(run_dir / "run_config.json") as handle:
        run_config = json.load(handle)
    assert (run_config["train"]["batch_size"], run_config["train"]["seed"], run_config["data"]["data_dir"]) == (
        2,
        1,
        records,
    )
    assert run_config["model"]["norm_method"] == "batch_norm" and run_config["data"]["shuffle_buffer"] == 8
    eval_cfg = tmp_path / "eval.cfg"
    results = tmp_path / "eval.json"
    eval_cfg.write_text(
        "\n".join(
            [
                "--mode=val",
                f"--checkpoint_dir={run_dir}",
                "--checkpoint=latest",
                "--eval_gpu_batch_size=1",
                "--scale_rates=0.75,1.0",
                "--sliding_window_crop_height=32",
                "--sliding_window_crop_width=32",
                f"--results_json={results}",
            ]
        )
    )
    assert "mIoU" in _run("evaluate.py", f"--flagfile={eval_cfg}")
    with open(results) as handle:
        metrics = json.load(handle)
    assert metrics["num_images"] == 4
    assert metrics["protocol"]["scales"] == [0.75, 1.0]
    assert metrics["protocol"]["sliding_window"] == [32, 32]

    # Their workflow: the training flagfile serves evaluation too. Training-only flags (optimizer,
    # augmentation) may differ; a model or data flag that differs from the run is an error, not ignored.
    shared = tmp_path / "shared.json"
    output = _run(  # the flagfile's --mode=train included
        "evaluate.py",
        f"--flagfile={train_cfg}",
        "--checkpoint=latest",
        "--initial_lr=0.5",
        "--crop_height=64",
        f"--results_json={shared}",
    )
    assert "mIoU" in output
    with open(shared) as handle:
        assert json.load(handle)["num_images"] == 4
    error = _run("evaluate.py", f"--flagfile={train_cfg}", "--mode=val", "--num_channels=32", returncode=2)
    assert "1 model/data flag given here disagrees with" in error and "run_config.json: --num_channels=32" in error
    assert "--num_channels=32 differs from the run's num_channels=16." in error
    error = _run("evaluate.py", f"--flagfile={train_cfg}", "--synthetic_streets_path=/elsewhere", returncode=2)
    assert (
        "--synthetic_streets_path=/elsewhere differs from the run's data_dir=" in error and "--eval_data_dir" in error
    )


# Parses each argv with evaluate.py's flags and checks it against a run_config.json written by the test.
RUN_CHECK = textwrap.dedent(
    """
    import json, sys
    from hfgd_tf.cli import flags as cli_flags
    from absl import flags
    flags.DEFINE_string("eval_data_dir", "", "as evaluate.py")
    cli_flags.define_run_flags(mode="val")
    FLAGS = flags.FLAGS
    results = []
    for line in sys.argv[2:]:
        FLAGS.unparse_flags()
        FLAGS(["evaluate.py", "--checkpoint_dir=" + sys.argv[1]] + line.split())
        try:
            cli_flags.check_flags_match_run(sys.argv[1])
            results.append("ok")
        except ValueError as error:
            results.append(str(error))
    print(json.dumps(results))
    """
)


@pytest.mark.slow
def test_run_scripts_check_model_and_data_flags_against_the_run(tmp_path):
    import dataclasses

    from hfgd_tf.data import DataConfig
    from hfgd_tf.models import ModelConfig

    # A folder dataset whose records (and manifest) are no longer where training read them.
    model = ModelConfig(
        num_classes=5, backbone="resnet_tiny", num_channels=16, cae_num_heads=4, backbone_kwargs='{"a": 1, "b": [2, 3]}'
    )
    data = DataConfig("folder", str(tmp_path / "moved_records"))
    (tmp_path / "run_config.json").write_text(
        json.dumps({"model": dataclasses.asdict(model), "data": dataclasses.asdict(data)})
    )
    lines = {
        # The run's own flags (no --num_classes: the folder's manifest is gone; the run's count is used).
        f"--dataset=folder --data_dir={tmp_path / 'moved_records'} --backbone=resnet_tiny --num_channels=16 --cae_num_heads=4": "ok",
        # The same JSON spaced differently; training-only fields and stop-gradients may differ.
        '--backbone_kwargs={"b":[2,3],"a":1} --crop_height=99 --stop_gradient_backbone=false --drop_path_rate=0.5': "ok",
        "--mode=train --optimizer=adamw --mixed_precision=true": "ok",
        "--num_channels=32 --cae_num_heads=4": "--num_channels=32 differs from the run's num_channels=16",
        # Every differing flag in one message, in field order.
        "--num_channels=32 --cae_num_heads=2 --eval_split=test": (
            "3 model/data flags given here disagree with " + str(tmp_path / "run_config.json") + ": --num_channels=32 "
            "differs from the run's num_channels=16; --cae_num_heads=2 differs from the run's cae_num_heads=4; "
            "--eval_split=test differs from the run's eval_split=val."
        ),
        "--num_classes=6": "--num_classes=6 differs from the run's num_classes=5",
        '--backbone_kwargs={"a":2,"b":[2,3]}': '--backbone_kwargs={"a":2,"b":[2,3]} differs',
        "--backbone_preset_dir=/presets/other": "--backbone_preset_dir=/presets/other differs",
        "--train_datasets=camvid": "--train_datasets=camvid (i.e. dataset=camvid) differs from the run's dataset=folder",
        "--eval_split=test": "--eval_split=test differs from the run's eval_split=val",
        "--mode=test_dir": "--mode=test_dir: each mode is its own script here",
        "--compress=false": "--compress=False (i.e. compression=) differs from the run's compression=ZLIB",
    }
    result = subprocess.run(
        [sys.executable, "-c", RUN_CHECK, str(tmp_path), *lines], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for (line, expected), outcome in zip(lines.items(), json.loads(result.stdout.splitlines()[-1])):
        assert (outcome == "ok") if expected == "ok" else expected in outcome, (line, outcome)


@pytest.mark.slow
def test_predict_from_a_saved_model_still_checks_the_authors_flags(tmp_path):
    error = _run(
        "predict.py",
        f"--saved_model={tmp_path}",
        f"--input={tmp_path}",
        f"--output_dir={tmp_path / 'out'}",
        "--aux_loss=true",
        returncode=2,
    )
    assert "--aux_loss=True (the authors' flag) is not supported" in error
