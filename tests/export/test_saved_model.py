"""Export parity: the SavedModel, loaded in a process that never imports hfgd_tf, predicts what Keras does."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.evaluation import EvalConfig, predict_logits
from hfgd_tf.export import export_saved_model, read_export_inference, read_export_labels, read_export_source
from hfgd_tf.models import build_model
from tests.conftest import random_images, tiny_model_config

SIZES = [(2, 64, 96), (1, 57, 41), (3, 32, 128)]


@pytest.mark.slow
def test_fresh_process_with_only_tensorflow_gets_the_keras_labels(tmp_path):
    model = build_model(tiny_model_config())
    # Make BN statistics non-trivial so that inference mode matters.
    for _ in range(2):
        model(random_images(batch=2, seed=3), training=True)
    export_dir = str(tmp_path / "saved_model")
    export_saved_model(model, export_dir, ["a", "b", "c", "d"], [(0, 0, 0), (1, 1, 1), (2, 2, 2), (3, 3, 3)])
    inputs = {
        f"{b}x{h}x{w}": np.random.default_rng(b * h).integers(0, 256, (b, h, w, 3)).astype(np.uint8)
        for b, h, w in SIZES
    }
    np.savez(tmp_path / "inputs.npz", **inputs)
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, tensorflow as tf
        serve = tf.saved_model.load({export_dir!r}).signatures["serving_default"]
        inputs = np.load({str(tmp_path / "inputs.npz")!r})
        outputs = {{}}
        for key in inputs.files:
            result = serve(images=tf.constant(inputs[key]))
            outputs[key] = result["class_ids"].numpy()
            outputs[key + "_probabilities"] = result["probabilities"].numpy()
        np.savez({str(tmp_path / "outputs.npz")!r}, **outputs)
        assert "hfgd_tf" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": ""})
    outputs = np.load(tmp_path / "outputs.npz")
    for key, images in inputs.items():
        logits = predict_logits(model, tf.constant(images, tf.float32))
        expected = tf.argmax(logits, -1).numpy()
        assert outputs[key].shape == images.shape[:3] and outputs[key].dtype == np.int32
        np.testing.assert_array_equal(outputs[key], expected)
        np.testing.assert_allclose(outputs[key + "_probabilities"], tf.nn.softmax(logits).numpy(), atol=1e-5)
    names, colours = read_export_labels(export_dir)
    assert names == ["a", "b", "c", "d"] and colours[3] == (3, 3, 3)


@pytest.mark.slow
def test_export_bakes_in_scales_and_flip(tmp_path):
    model = build_model(tiny_model_config())
    config = EvalConfig(eval_scales=(0.75, 1.0), flip=True)
    export_dir = export_saved_model(model, str(tmp_path / "ms"), eval_config=config)
    images = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3)).astype(np.uint8)
    served = tf.saved_model.load(export_dir).signatures["serving_default"](images=tf.constant(images))
    expected = tf.argmax(predict_logits(model, tf.constant(images, tf.float32), config), -1).numpy()
    np.testing.assert_array_equal(served["class_ids"].numpy(), expected)
    assert read_export_inference(export_dir) == {"eval_scales": [0.75, 1.0], "flip": True}
    plain = export_saved_model(model, str(tmp_path / "plain"))
    assert read_export_inference(plain) == {"eval_scales": [1.0], "flip": False}


def test_a_malformed_inference_record_is_an_error_naming_the_file(tmp_path):
    record = tmp_path / "assets" / "inference.json"
    record.parent.mkdir()
    assert read_export_inference(str(tmp_path)) is None  # an export written before the record
    for text in (
        "{not json",
        "[1.0]",
        '{"eval_scales": [1.0]}',
        '{"eval_scales": "1.0", "flip": false}',
        '{"eval_scales": [1.0], "flip": "yes"}',
        '{"eval_scales": [], "flip": false}',
        '{"eval_scales": [true], "flip": false}',
        '{"eval_scales": [0, 1.0], "flip": false}',
        "\udcff",
        "null",
    ):
        record.write_bytes(text.encode("utf-8", "surrogateescape"))
        with pytest.raises(
            ValueError, match=f"^'{re.escape(str(record))}' (is not JSON|must hold).*export the run again"
        ):
            read_export_inference(str(tmp_path))


def test_a_malformed_labels_record_is_an_error_naming_the_file(tmp_path):
    record = tmp_path / "assets" / "labels.json"
    record.parent.mkdir()
    assert read_export_labels(str(tmp_path)) == ([], [])  # an export without labels
    record.write_text('{"class_names": ["road", "sky"], "colormap": [[0, 0, 0], [255, 10, 3]]}')
    assert read_export_labels(str(tmp_path)) == (["road", "sky"], [(0, 0, 0), (255, 10, 3)])
    for text in (
        "{not json",
        "null",
        "[]",
        '{"colormap": []}',
        '{"class_names": "road", "colormap": []}',
        '{"class_names": [1], "colormap": []}',
        '{"class_names": [], "colormap": [[0, 0]]}',
        '{"class_names": [], "colormap": [[0, 0, 256]]}',
        '{"class_names": [], "colormap": [[0, 0, -1]]}',
        '{"class_names": [], "colormap": [[0, 0, 1.5]]}',
        '{"class_names": [], "colormap": [[true, 0, 0]]}',
        '{"class_names": [], "colormap": "red"}',
        '{"class_names": [], "colormap": [' + ", ".join(["[0, 0, 0]"] * 257) + "]}",
        "\udcff",
    ):
        record.write_bytes(text.encode("utf-8", "surrogateescape"))
        with pytest.raises(
            ValueError, match=f"^'{re.escape(str(record))}' (is not JSON|must hold).*export the run again"
        ):
            read_export_labels(str(tmp_path))


@pytest.mark.slow
def test_re_export_replaces_the_old_export(tmp_path):
    model = build_model(tiny_model_config())
    export_dir = str(tmp_path / "export")
    source = {"checkpoint_dir": "/runs/a", "checkpoint": "ckpt-3"}
    export_saved_model(model, export_dir, ["x"], [(1, 2, 3)], source=source)
    assert read_export_source(export_dir) == source
    export_saved_model(model, export_dir, ["y"], [(4, 5, 6)])
    assert read_export_labels(export_dir)[0] == ["y"]
    assert read_export_source(export_dir) is None  # not the replaced export's source
    assert sorted(os.listdir(tmp_path)) == ["export"]
    with open(os.path.join(export_dir, "assets", "labels.json")) as handle:
        assert json.load(handle)["colormap"] == [[4, 5, 6]]
