"""Every file the package reads or writes goes through tf.io.gfile: a whole run on TF's in-memory
filesystem (`ram://`, standing in for gs://): folder conversion, records, manifest, training with
checkpoints and side files, resume, evaluation results, the best weights and a SavedModel export."""

import io
import os
import uuid

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from hfgd_tf.data import DataConfig
from hfgd_tf.data.converter import ConvertOptions, convert_split, write_manifest
from hfgd_tf.data.datasets import folder
from hfgd_tf.data.synthetic import write_synthetic_tfrecords
from hfgd_tf.data.tfrecord import list_shards, read_manifest
from hfgd_tf.evaluation import EvalConfig, write_results
from hfgd_tf.export import export_saved_model, read_export_labels, save_prediction_pngs
from hfgd_tf.files import read_json
from hfgd_tf.train import OptimizerConfig, TrainConfig, Trainer
from hfgd_tf.train.checkpoints import restore_model
from tests.conftest import tiny_model_config


def _ram(name):
    return f"ram://{uuid.uuid4().hex}/{name}"


@pytest.fixture(autouse=True)
def no_local_ram_directory(tmp_path, monkeypatch):
    """os.makedirs("ram://x") would quietly create ./ram:/x: run in an empty directory and check it stays empty."""
    monkeypatch.chdir(tmp_path)
    yield
    assert not os.path.exists(os.path.join(tmp_path, "ram:")), "a ram:// path was written through the local filesystem"


def _write_png(path, array):
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buffer, format="PNG")
    with tf.io.gfile.GFile(path, "wb") as handle:
        handle.write(buffer.getvalue())


def test_folder_conversion_reads_and_writes_through_gfile():
    root, out = _ram("folder"), _ram("records")
    tf.io.gfile.makedirs(root + "/images")
    tf.io.gfile.makedirs(root + "/labels")
    with tf.io.gfile.GFile(root + "/classes.txt", "w") as handle:
        handle.write("c0\nc1\nc2\n")
    ids = np.array([[0, 1, 2, 255], [2, 1, 0, 0]])
    for stem in ("a", "b"):
        _write_png(f"{root}/images/{stem}.png", np.full((2, 4, 3), 100))
        _write_png(f"{root}/labels/{stem}.png", ids)
    info = folder.info_from_classes(root)
    samples = folder.list_samples(root, "all")
    result = convert_split(
        samples, out, "all", info, folder.label_converter(root), ConvertOptions(examples_per_shard=1, progress=False)
    )
    write_manifest(out, info, {"all": result})
    assert result["num_examples"] == 2 and result["class_pixels"] == [6, 4, 4]
    assert [p.rsplit("/", 1)[1] for p in list_shards(out, "all")] == ["all-0.tfrecord", "all-1.tfrecord"]
    assert read_manifest(out)["splits"]["all"]["num_examples"] == 2
    # No staging folder left behind.
    assert sorted(tf.io.gfile.listdir(out)) == ["all-0.tfrecord", "all-1.tfrecord", "manifest.json"]


@pytest.mark.slow
def test_train_resume_evaluate_and_export_on_ram_filesystem():
    data_dir, run = _ram("data"), _ram("run")
    write_synthetic_tfrecords(data_dir, 4, 2, 32, 32, examples_per_shard=2)  # on ram://, not synthetic_records

    def trainer(epochs):
        return Trainer(
            tiny_model_config(num_classes=8),
            DataConfig("synthetic_streets", data_dir, crop_height=32, crop_width=32, shuffle_buffer=4),
            OptimizerConfig(initial_lr=0.01),
            TrainConfig(checkpoint_dir=run, batch_size=2, train_epoch=epochs, epoch_steps=1, strategy="one_device"),
            EvalConfig(eval_batch_size=2),
        )

    first = trainer(1)
    first.train()  # 1 step, a checkpoint, an evaluation: best weights and metrics
    assert {"run_config.json", "checkpoint", "ckpt-1.index"} <= set(tf.io.gfile.listdir(run))
    assert tf.io.gfile.exists(run + "/best/model.weights.h5")
    assert read_json(run + "/best/metrics.json")["step"] == 1
    resumed = trainer(2)
    assert resumed.restore() == 1
    resumed.train()
    assert tf.train.latest_checkpoint(run).endswith("ckpt-2")
    model, _, data_config = restore_model(run, "latest")
    best, _, _ = restore_model(run, "best")
    np.testing.assert_array_equal(model.weights[0].numpy(), resumed.model.weights[0].numpy())
    assert best.weights[0].shape == model.weights[0].shape
    write_results({"miou": 0.5}, run + "/eval_latest.json")
    assert read_json(run + "/eval_latest.json") == {"miou": 0.5}


@pytest.mark.slow
def test_saved_model_export_replaces_an_export_and_predictions_write_on_ram_filesystem():
    from hfgd_tf.data.datasets.synthetic_streets import INFO
    from hfgd_tf.models import build_model

    model, export = build_model(tiny_model_config(num_classes=8)), _ram("export")
    # A SavedModel with its labels asset, on ram:// too (TF's SavedModel writer supports it).
    export_saved_model(model, export, class_names=INFO.class_names, colormap=INFO.colormap)
    export_saved_model(model, export, class_names=INFO.class_names)  # replaces the previous export
    assert read_export_labels(export) == (list(INFO.class_names), [])
    assert [n.rstrip("/") for n in tf.io.gfile.listdir(export.rsplit("/", 1)[0])] == ["export"]  # no leftovers
    serving = tf.saved_model.load(export).signatures["serving_default"]
    class_ids = serving(images=tf.zeros([1, 32, 32, 3], tf.uint8))["class_ids"]
    assert class_ids.shape == (1, 32, 32)
    written = save_prediction_pngs(
        _ram("pred") + "/x", np.zeros((32, 32, 3), np.uint8), class_ids[0].numpy(), INFO.colormap
    )
    with tf.io.gfile.GFile(written["label"], "rb") as handle, Image.open(handle) as image:
        assert image.size == (32, 32)
