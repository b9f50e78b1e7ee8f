"""ExportConfig checks, protocols each format refuses by name, the export record, and calibration images."""

import json
import re

import numpy as np
import pytest

from hfgd_tf.data import DataConfig
from hfgd_tf.data.synthetic import write_synthetic_tfrecords
from hfgd_tf.evaluation import EvalConfig
from hfgd_tf.export import ExportConfig, check_protocol, export_model, load_exported, read_export_format
from hfgd_tf.export.calibration import calibration_images
from tests.export.parity import tiny_segmenter


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(format="tflite"), r"--format\) must be one of"),
        (dict(format="litert"), r"--format=litert needs a fixed input size"),
        (dict(format="litert", export_height=64), r"--export_height and --export_width must both be > 0"),
        (dict(format="openvino", quantize="int8"), r"--quantize=int8 is not available for --format=openvino"),
        (
            dict(format="saved_model", quantize="float16"),
            r"--quantize=float16 is not available for --format=saved_model",
        ),
        (
            dict(format="litert", export_height=8, export_width=8, quantize="int8", calibration_steps=0),
            r"--calibration_steps must be >= 1",
        ),
    ],
)
def test_bad_export_configs_name_the_flag(arguments, message):
    with pytest.raises(ValueError, match=message):
        ExportConfig(**arguments)


@pytest.mark.parametrize("format_name", ["onnx", "openvino"])
def test_single_pass_formats_refuse_multi_scale_and_flip_by_name(format_name):
    config = ExportConfig(format_name)
    check_protocol(config, EvalConfig())  # single scale, no flip: fine
    for protocol in (EvalConfig(eval_scales=(0.75, 1.0)), EvalConfig(flip=True)):
        with pytest.raises(
            ValueError, match=rf"--format={format_name} exports single-scale inference without flip.*--eval_scales="
        ):
            check_protocol(config, protocol)
    with pytest.raises(ValueError, match=rf"--format={format_name} cannot export sliding-window inference"):
        check_protocol(config, EvalConfig(sliding_window_height=32, sliding_window_width=32))
    # The SavedModel runs scales and flip inside, but no sliding window either.
    check_protocol(ExportConfig(), EvalConfig(eval_scales=(0.75, 1.0), flip=True))
    with pytest.raises(ValueError, match="--format=saved_model cannot export sliding-window"):
        check_protocol(ExportConfig(), EvalConfig(sliding_window_height=32, sliding_window_width=32))
    # Every format serves the prediction, not HFGD's guidance head.
    with pytest.raises(
        ValueError,
        match="--format=saved_model serves the prediction \\(--scored_output=logits\\), but --scored_output=logits_high",
    ):
        check_protocol(ExportConfig(), EvalConfig(scored_output="logits_high"))


def test_refusals_that_need_the_model(tmp_path):
    model = tiny_segmenter()
    with pytest.raises(ValueError, match="--quantize=int8 needs calibration images"):
        export_model(model, str(tmp_path / "a"), ExportConfig("onnx", quantize="int8"))
    with pytest.raises(ValueError, match="mixed_bfloat16 policy; this one is 'float32'"):
        export_model(model, str(tmp_path / "b"), ExportConfig(quantize="bfloat16"))
    with pytest.raises(ValueError, match="--format=litert exports single-scale"):
        export_model(
            model,
            str(tmp_path / "c"),
            ExportConfig("litert", export_height=8, export_width=8),
            eval_config=EvalConfig(flip=True),
        )
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.slow
def test_an_export_never_replaces_a_directory_that_is_not_an_export(tmp_path):
    """Exporting replaces its directory whole: a training run (or anything else) there is refused, intact."""
    model = tiny_segmenter()
    run = tmp_path / "run"
    run.mkdir()
    (run / "run_config.json").write_text("{}")
    (run / "ckpt-4.index").write_text("")
    with pytest.raises(ValueError, match=r"exists and is not an export \(it holds ckpt-4.index, run_config.json\)"):
        export_model(model, str(run), ExportConfig())
    assert sorted(p.name for p in run.iterdir()) == ["ckpt-4.index", "run_config.json"]
    with pytest.raises(ValueError, match="name a directory"):
        export_model(model, ".", ExportConfig())
    # An earlier export (and what an interrupted one left beside it) is replaced.
    first = export_model(model, str(tmp_path / "export"), ExportConfig())
    (tmp_path / ".export.old").mkdir()
    assert export_model(model, first, ExportConfig()) == first
    assert read_export_format(first)["format"] == "saved_model" and not (tmp_path / ".export.old").exists()


@pytest.mark.slow
def test_fixed_size_saved_model_records_its_size_and_refuses_others(tmp_path):
    model = tiny_segmenter()
    export_dir = export_model(model, str(tmp_path / "export"), ExportConfig(export_height=32, export_width=48))
    assert read_export_format(export_dir) == {
        "format": "saved_model",
        "quantize": "none",
        "input_size": [32, 48],
        "batch_size": None,
        "model_file": "saved_model.pb",
    }
    runtime = load_exported(export_dir)
    images = np.zeros((2, 32, 48, 3), np.uint8)
    assert runtime.predict(images)["class_ids"].shape == (2, 32, 48)
    with pytest.raises(ValueError, match=r"takes 32x48 images; received 16x16"):
        runtime.predict(np.zeros((1, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match=r"take uint8 images \[B, H, W, 3\]. Received: float32"):
        runtime.predict(images.astype(np.float32))


def test_a_malformed_export_record_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match="is not an export directory"):
        read_export_format(str(tmp_path))
    with pytest.raises(ValueError, match="is not a directory"):
        load_exported(str(tmp_path / "missing"))
    record = tmp_path / "assets" / "export.json"
    record.parent.mkdir()
    good = {"format": "litert", "quantize": "int8", "input_size": [8, 8], "batch_size": 1, "model_file": "model.tflite"}
    record.write_text(json.dumps(good))
    assert read_export_format(str(tmp_path)) == good
    for bad in (
        {**good, "format": "tflite"},
        {**good, "model_file": "model.onnx"},
        {**good, "input_size": [8]},
        {**good, "input_size": [0, 8]},
        {**good, "batch_size": True},
        {**good, "quantize": None},
        [],
    ):
        record.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=f"^'{re.escape(str(record))}' must hold.*export the run again"):
            read_export_format(str(tmp_path))


def test_calibration_images_are_the_first_training_records_at_the_export_size(tmp_path):
    # Not the shared synthetic_records: 3 records (refused below) of a non-square size unlike the export size.
    data_dir = write_synthetic_tfrecords(str(tmp_path / "data"), 3, 1, 40, 56)
    config = DataConfig("synthetic_streets", data_dir)
    images = list(calibration_images(config, 2, 32, 48)())
    assert [(i.shape, i.dtype) for i in images] == [((1, 32, 48, 3), np.uint8)] * 2
    again = list(calibration_images(config, 2, 32, 48)())
    np.testing.assert_array_equal(images[1], again[1])  # the same images for two exports
    assert not np.array_equal(images[0], images[1])
    assert list(calibration_images(config, 1, 0, 0)())[0].shape == (1, 40, 56, 3)  # any-size export: own size
    with pytest.raises(
        ValueError, match=r"--calibration_steps=5 asks for more images than the 3 records of the 'train' split"
    ):
        calibration_images(config, 5, 32, 48)
