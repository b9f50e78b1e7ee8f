"""TFDS builders (`hfgd_tf.data.tfds_builders`) and `data_source="tfds"` (`hfgd_tf.data.tfds_source`).

CamVid: the builder is built offline from ../shared/data/camvid into tmp_path and must give exactly the
TFRecord path's images, labels, augmented batches and evaluation numbers. TFDS's own
`cityscapes/semantic_segmentation` is built from tiny fake Cityscapes zips and its label ids must come
out as our Cityscapes train ids.
"""

import dataclasses
import os
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

# tensorflow-datasets is a dependency (setup.py): no importorskip, which would also turn an ImportError of
# our own module into a silent skip of every test here.
from hfgd_tf.data import (
    DataConfig,
    build_eval_dataset,
    build_train_dataset,
    tfds_builders,  # noqa: E402
)
from hfgd_tf.data.converter import ConvertOptions, convert_split, write_manifest
from hfgd_tf.data.datasets import camvid, cityscapes
from hfgd_tf.data.registry import get_dataset_spec
from tests.conftest import CAMVID_DIR


@pytest.fixture(scope="module")
def camvid_sources(tmp_path_factory):
    """CamVid built both ways: (TFRecord dir, TFDS data_dir)."""
    if not os.path.isdir(CAMVID_DIR):
        pytest.skip(f"CamVid not found at {CAMVID_DIR} (it lives in ../shared/data/camvid beside the project)")
    root = tmp_path_factory.mktemp("camvid_sources")
    records, tfds_dir = str(root / "records"), str(root / "tfds")
    spec = get_dataset_spec("camvid")
    options = ConvertOptions(progress=False)
    splits = {
        s: convert_split(spec.list_samples(CAMVID_DIR, s), records, s, camvid.INFO, camvid.LABEL_TABLE, options)
        for s in ("train", "val")
    }
    write_manifest(records, camvid.INFO, splits)
    tfds_builders.build("camvid", CAMVID_DIR, tfds_dir)
    return records, tfds_dir


def _configs(camvid_sources, **overrides):
    records, tfds_dir = camvid_sources
    tfrecord = DataConfig("camvid", records, **overrides)
    tfds = DataConfig("camvid", data_source="tfds", tfds_name="hfgd_camvid", tfds_data_dir=tfds_dir, **overrides)
    return tfrecord, tfds


@pytest.mark.slow
def test_camvid_builder_splits_features_and_metadata(camvid_sources):
    import tensorflow_datasets as tfds

    builder = tfds.builder("hfgd_camvid", data_dir=camvid_sources[1])
    assert {name: split.num_examples for name, split in builder.info.splits.items()} == {"train": 367, "val": 101}
    assert set(builder.info.features) == {"image", "segmentation_mask", "file_name"}
    assert builder.info.metadata["class_names"] == list(camvid.INFO.class_names)
    assert builder.info.metadata["ignore_label"] == 255
    first = next(iter(builder.as_dataset(split="val")))
    assert first["file_name"].numpy().decode() == get_dataset_spec("camvid").list_samples(CAMVID_DIR, "val")[0].name
    assert first["image"].shape == (360, 480, 3) and first["segmentation_mask"].shape == (360, 480, 1)


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "val"])
def test_camvid_tfds_images_and_labels_equal_the_tfrecord_path(camvid_sources, split):
    tfrecord, tfds = _configs(camvid_sources, eval_split=split)
    count = 0
    for (image_a, label_a), (image_b, label_b) in zip(
        build_eval_dataset(tfrecord, batch_size=16), build_eval_dataset(tfds, batch_size=16), strict=True
    ):
        np.testing.assert_array_equal(label_a.numpy(), label_b.numpy())
        assert tf.reduce_all(image_a == image_b)
        count += int(label_a.shape[0])
    assert count == {"train": 367, "val": 101}[split]


@pytest.mark.slow
def test_camvid_training_batches_are_the_same_augmented_batches(camvid_sources):
    tfrecord, tfds = _configs(camvid_sources, crop_height=96, crop_width=128, shuffle_buffer=64)
    for (image_a, label_a), (image_b, label_b) in zip(
        build_train_dataset(tfrecord, 4).take(3), build_train_dataset(tfds, 4, initial_step=0).take(3)
    ):
        np.testing.assert_array_equal(label_a.numpy(), label_b.numpy())
        np.testing.assert_array_equal(image_a.numpy(), image_b.numpy())
    # The resume skip lands on the same batch for both sources.
    resumed_a = next(iter(build_train_dataset(tfrecord, 4, initial_step=5)))[1].numpy()
    resumed_b = next(iter(build_train_dataset(tfds, 4, initial_step=5)))[1].numpy()
    np.testing.assert_array_equal(resumed_a, resumed_b)


@pytest.mark.slow
def test_camvid_evaluation_numbers_equal_between_sources(camvid_sources):
    from hfgd_tf.evaluation import EvalConfig
    from hfgd_tf.evaluation.evaluator import evaluate
    from hfgd_tf.models import build_model
    from tests.conftest import tiny_model_config

    model = build_model(tiny_model_config(num_classes=camvid.INFO.num_classes))
    results = []
    for config in _configs(camvid_sources):
        # Half-scale inference keeps this cheap; scoring is at the labels' full resolution either way.
        results.append(
            evaluate(model, build_eval_dataset(config, batch_size=4), 11, 255, EvalConfig(eval_scales=(0.5,)))
        )
    assert results[0]["num_images"] == results[1]["num_images"] == 101
    assert results[0]["confusion_matrix"] == results[1]["confusion_matrix"]
    assert results[0]["miou"] == results[1]["miou"]


def test_data_source_and_tfds_name_errors(tmp_path):
    with pytest.raises(ValueError, match="data_source must be one of"):
        DataConfig("camvid", data_source="tfdataset")
    unbuilt = DataConfig("camvid", data_source="tfds", tfds_data_dir=str(tmp_path))
    with pytest.raises(
        ValueError, match="not built in .*tfds_data_dir.*build_tfds.py --dataset=camvid --tfds_name=hfgd_camvid"
    ):
        next(iter(build_eval_dataset(unbuilt)))
    mismatched = DataConfig("cityscapes", data_source="tfds", tfds_name="hfgd_camvid", tfds_data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="holds the classes of dataset 'camvid', but --dataset='cityscapes'"):
        next(iter(build_eval_dataset(mismatched)))
    unknown = DataConfig("camvid", data_source="tfds", tfds_name="mnist", tfds_data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="--tfds_name='mnist' is not a dataset we can read"):
        next(iter(build_eval_dataset(unknown)))


def _save_png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)


def test_folder_builder_takes_classes_from_the_manual_dir(tmp_path):
    manual = tmp_path / "my_data"
    (manual / "images").mkdir(parents=True)
    (manual / "classes.txt").write_text("road 128 64 128\ncar 0 0 142\n")
    (manual / "train.txt").write_text("a\nb\n")
    (manual / "val.txt").write_text("c\n")
    rng = np.random.default_rng(0)
    expected = {}
    for stem in "abc":
        _save_png(str(manual / "images" / f"{stem}.png"), rng.integers(0, 255, (6, 8, 3)))
        ids = rng.integers(0, 2, (6, 8))
        ids[0, 0] = 255
        expected[stem] = ids
        _save_png(str(manual / "labels" / f"{stem}.png"), ids)  # single-channel train ids
    tfds_dir = str(tmp_path / "tfds")
    builder = tfds_builders.build("folder", str(manual), tfds_dir)
    assert builder.info.metadata["class_names"] == ["road", "car"]
    config = DataConfig("folder", data_source="tfds", tfds_name="hfgd_folder", tfds_data_dir=tfds_dir, eval_split="val")
    assert config.info.class_names == ("road", "car") and config.info.colormap == ((128, 64, 128), (0, 0, 142))
    ((_, label),) = list(build_eval_dataset(config))
    np.testing.assert_array_equal(label.numpy()[0], expected["c"])


def _fake_cityscapes_zips(manual_dir):
    """The two zips TFDS's cityscapes builder reads, with one 1024x2048 image per split (its fixed shape)."""
    rng = np.random.default_rng(0)
    label_ids = {}
    with (
        zipfile.ZipFile(manual_dir / "leftImg8bit_trainvaltest.zip", "w") as images,
        zipfile.ZipFile(manual_dir / "gtFine_trainvaltest.zip", "w") as labels,
    ):
        for split in ("train", "val", "test"):
            stem = f"aachen_000000_00001{len(label_ids)}"
            image = np.zeros((1024, 2048, 3), np.uint8)
            image[:, :1024] = rng.integers(0, 255, 3)
            ids = np.zeros((1024, 2048), np.uint8)
            # every label id 0..33 in blocks of 32 rows, so that the whole table is exercised
            for value in range(34):
                ids[value * 30 : (value + 1) * 30] = value
            label_ids[split] = ids
            for archive, member, array in (
                (images, f"leftImg8bit/{split}/aachen/{stem}_leftImg8bit.png", image),
                (labels, f"gtFine/{split}/aachen/{stem}_gtFine_labelIds.png", ids),
            ):
                path = manual_dir / "tmp.png"
                Image.fromarray(array).save(path)
                archive.write(path, member)
    return label_ids


@pytest.mark.slow
def test_tfds_cityscapes_semantic_segmentation_label_ids_become_train_ids(tmp_path):
    import tensorflow_datasets as tfds

    manual = tmp_path / "manual"
    manual.mkdir()
    label_ids = _fake_cityscapes_zips(manual)
    tfds_dir = str(tmp_path / "tfds")
    tfds.builder("cityscapes/semantic_segmentation", data_dir=tfds_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    config = DataConfig(
        "cityscapes", data_source="tfds", tfds_name="cityscapes/semantic_segmentation", tfds_data_dir=tfds_dir
    )  # eval_split "val" reads TFDS's "validation"
    ((image, label),) = list(build_eval_dataset(config))
    assert image.shape == (1, 1024, 2048, 3)
    np.testing.assert_array_equal(label.numpy()[0], cityscapes.LABEL_TABLE[label_ids["val"]])
    assert label.numpy()[0, 7 * 30, 0] == 0 and label.numpy()[0, 33 * 30, 0] == 18  # road, bicycle
    assert label.numpy()[0, 0, 0] == 255  # unlabeled
    batch = next(iter(build_train_dataset(dataclasses.replace(config, crop_height=64, crop_width=64), 1)))
    assert batch[1].shape == (1, 64, 64)
    assert set(np.unique(batch[1].numpy())) <= set(range(19)) | {255}
