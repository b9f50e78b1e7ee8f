"""Records from elsewhere: the authors' raw-label records (`label_format="raw"`) and the start-of-run
checks of `check_records` (missing data_dir, manifest vs --dataset, stale shards, label scan)."""

import io
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from hfgd_tf.data.config import DataConfig
from hfgd_tf.data.pipeline import build_eval_dataset, build_train_dataset
from hfgd_tf.data.records import check_records

# Pascal Context 59 raw labels as the authors' converters store them: 0 = background, classes 1..59.
RAW_PASCAL = np.array(
    [
        [0, 0, 1, 1, 2, 2],
        [0, 59, 59, 1, 2, 3],
        [58, 59, 0, 0, 3, 3],
        [255, 0, 1, 59, 3, 0],
    ],
    np.int32,
)
# What training and evaluation must see: background -> ignore, raw k -> train id k - 1, 255 stays ignored.
PASCAL_TRAIN_IDS = np.where((RAW_PASCAL == 0) | (RAW_PASCAL == 255), 255, RAW_PASCAL - 1)


def _authors_example(image, label):
    """One example exactly as the authors' iDS converter writes it: JPEG (quality 100) bytes as a
    serialized scalar string, the label as a serialized int32 [H, W, 1] tensor, height/width/depth."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=100)
    height, width = label.shape

    def feature(**kind):
        return tf.train.Feature(**kind)

    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": feature(
                    bytes_list=tf.train.BytesList(
                        value=[tf.io.serialize_tensor(tf.constant(buffer.getvalue())).numpy()]
                    )
                ),
                "label": feature(
                    bytes_list=tf.train.BytesList(value=[tf.io.serialize_tensor(tf.constant(label[..., None])).numpy()])
                ),
                "height": feature(int64_list=tf.train.Int64List(value=[height])),
                "width": feature(int64_list=tf.train.Int64List(value=[width])),
                "depth": feature(int64_list=tf.train.Int64List(value=[3])),
            }
        )
    )


def _write_authors_records(directory, labels, splits=("train", "val")):
    """`<split>-0.tfrecord`, ZLIB, no manifest.json: the authors' record files."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(0)
    for split in splits:
        options = tf.io.TFRecordOptions(compression_type="ZLIB")
        with tf.io.TFRecordWriter(os.path.join(directory, f"{split}-0.tfrecord"), options) as writer:
            for label in labels:
                image = rng.integers(0, 256, label.shape + (3,), dtype=np.uint8)
                writer.write(_authors_example(image, np.asarray(label, np.int32)).SerializeToString())
    return str(directory)


def _config(data_dir, dataset="pascal_context", **overrides):
    height, width = RAW_PASCAL.shape
    values = dict(
        dataset=dataset,
        data_dir=data_dir,
        crop_height=height,
        crop_width=width,
        min_scale=1.0,
        max_scale=1.0,
        random_flip=False,
        random_brightness=False,
        shuffle_buffer=1,
    )
    values.update(overrides)
    return DataConfig(**values)


@pytest.fixture
def authors_pascal(tmp_path):
    return _write_authors_records(tmp_path / "authors", [RAW_PASCAL, RAW_PASCAL[::-1]])


def test_raw_records_are_remapped_to_train_ids_for_training_and_evaluation(authors_pascal):
    config = _config(authors_pascal, label_format="raw")
    assert set(check_records(config, ["train", "val"])) == {"train", "val"}
    eval_labels = [label.numpy()[0] for _, label in build_eval_dataset(config)]
    np.testing.assert_array_equal(eval_labels[0], PASCAL_TRAIN_IDS)
    np.testing.assert_array_equal(eval_labels[1], PASCAL_TRAIN_IDS[::-1])
    # Scale 1, crop = image, no flip: the training crop is the whole label map, in train ids.
    _, train_labels = next(iter(build_train_dataset(config, batch_size=2)))
    expected = {PASCAL_TRAIN_IDS.tobytes(), PASCAL_TRAIN_IDS[::-1].tobytes()}
    assert {label.tobytes() for label in train_labels.numpy()} == expected
    assert 58 in eval_labels[0] and 0 in eval_labels[0]  # raw 59 (wood) and raw 1 (aeroplane) survive


def test_raw_records_read_as_train_ids_are_refused_with_a_hint(authors_pascal):
    with pytest.raises(
        ValueError, match=r"label values \[59\] that are not train ids of 'pascal_context'.*--label_format=raw"
    ):
        check_records(_config(authors_pascal), ["train"])


def test_raw_records_without_an_out_of_range_value_are_refused(tmp_path):
    # No 59 and no 255 in the scanned labels: every value is a valid train id, but background (raw 0)
    # is everywhere and the ignore label nowhere, which is what raw Pascal Context records look like.
    data_dir = _write_authors_records(tmp_path / "authors", [np.minimum(RAW_PASCAL, 58) % 255])
    with pytest.raises(
        ValueError, match=r"no ignore label \(255\) in 1 examples but values \[0\].*pass --label_format=raw"
    ):
        check_records(_config(data_dir), ["train"])
    check_records(_config(data_dir, label_format="raw"), ["train"])


def test_train_id_records_read_as_raw_are_refused(tmp_path):
    label = np.array([[0, 1, 255], [10, 3, 2]], np.int32)  # camvid train ids: raw 255 is not a CamVid value
    data_dir = _write_authors_records(tmp_path / "ours", [label])
    with pytest.raises(
        ValueError, match=r"values \[255\] that are not raw labels of 'camvid'.*drop --label_format=raw"
    ):
        check_records(_config(data_dir, "camvid", label_format="raw"), ["train"])
    assert check_records(_config(data_dir, "camvid"), ["train"])


def test_a_raw_value_the_dataset_never_uses_fails_in_the_pipeline(tmp_path):
    label = np.array([[0, 11, 255], [181, 3, 2]], np.int32)  # COCO-Stuff: raw 11 is an unused category id
    data_dir = _write_authors_records(tmp_path / "coco", [label])
    config = _config(data_dir, "coco_stuff_164k", label_format="raw")
    with pytest.raises(ValueError, match=r"values \[11\] that are not raw labels of 'coco_stuff_164k'"):
        check_records(config, ["val"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="does not have"):
        list(build_eval_dataset(config))


def test_raw_format_needs_a_dataset_with_a_raw_table():
    with pytest.raises(ValueError, match="label_format='raw' needs a raw-label table.*'synthetic_streets'"):
        DataConfig(dataset="synthetic_streets", label_format="raw")
    with pytest.raises(ValueError, match=r"label_format must be one of \('train_ids', 'raw'\). Received: 'ids'"):
        DataConfig(dataset="camvid", label_format="ids")


def _copy(source, destination):
    shutil.copytree(source, destination)
    return str(destination)


def _edit_manifest(data_dir, **changes):
    path = os.path.join(data_dir, "manifest.json")
    with open(path) as handle:
        manifest = json.load(handle)
    manifest.update(changes)
    with open(path, "w") as handle:
        json.dump(manifest, handle)


def test_manifest_must_match_the_dataset(synthetic_records, tmp_path):
    assert check_records(_config(synthetic_records, "synthetic_streets"), ["train", "val"])["train"][-1].endswith(
        "train-1.tfrecord"
    )
    with pytest.raises(ValueError, match=r"are dataset 'synthetic_streets' \(8 classes.*--dataset='camvid'"):
        check_records(_config(synthetic_records, "camvid"), ["train"])
    data_dir = _copy(synthetic_records, tmp_path / "edited")
    _edit_manifest(data_dir, dataset="camvid", num_classes=11)
    assert check_records(_config(data_dir, "camvid"), ["train"])
    with pytest.raises(
        ValueError, match="hold train_ids labels .* but --label_format=raw: use --label_format=train_ids"
    ):
        check_records(_config(data_dir, "camvid", label_format="raw"), ["train"])
    _edit_manifest(data_dir, num_classes=9)
    with pytest.raises(ValueError, match="have 9 classes .* but dataset 'camvid' has 11"):
        check_records(_config(data_dir, "camvid"), ["train"])


def test_stale_shards_next_to_a_manifest_are_refused(synthetic_records, tmp_path):
    data_dir = _copy(synthetic_records, tmp_path / "stale")
    shutil.copy(os.path.join(data_dir, "train-0.tfrecord"), os.path.join(data_dir, "train-7.tfrecord"))
    with pytest.raises(ValueError, match=r"not listed there \['train-7.tfrecord'\].*--overwrite"):
        check_records(_config(data_dir, "synthetic_streets"), ["train"])
    shutil.copy(os.path.join(data_dir, "val-0.tfrecord"), os.path.join(data_dir, "test-0.tfrecord"))
    with pytest.raises(ValueError, match="does not list split 'test'"):
        check_records(_config(data_dir, "synthetic_streets"), ["test"])


def test_missing_or_nonexistent_data_dir_names_the_flag(tmp_path):
    with pytest.raises(ValueError, match=r"^--data_dir \(DataConfig.data_dir\) is not set"):
        check_records(_config(""), ["train"])
    with pytest.raises(ValueError, match=r"^--data_dir '.*nowhere' \(DataConfig.data_dir\) does not exist"):
        check_records(_config(str(tmp_path / "nowhere")), ["train"])
    with pytest.raises(ValueError, match="No 'train-\\*.tfrecord' shards"):
        check_records(_config(str(tmp_path)), ["train"])


def test_wrong_compression_or_float_images_name_the_shard(authors_pascal, tmp_path):
    with pytest.raises(ValueError, match=r"Cannot read '.*train-0.tfrecord' \(compression=''"):
        check_records(_config(authors_pascal, label_format="raw", compression=""), ["train"])
    # Older releases of the authors' converter stored the image as a float32 tensor.
    example = _authors_example(np.zeros((4, 6, 3), np.uint8), RAW_PASCAL)
    example.features.feature["image"].bytes_list.value[0] = tf.io.serialize_tensor(tf.zeros([4, 6, 3])).numpy()
    os.makedirs(tmp_path / "old")
    with tf.io.TFRecordWriter(str(tmp_path / "old" / "train-0.tfrecord"), "ZLIB") as writer:
        writer.write(example.SerializeToString())
    with pytest.raises(
        ValueError, match=r"Cannot read '.*train-0.tfrecord'.*float32 images of older releases: reconvert"
    ):
        check_records(_config(str(tmp_path / "old"), label_format="raw"), ["train"])


def test_an_unbuilt_tfds_source_is_refused_at_start_with_the_build_command(tmp_path):
    # Checked before the model is built (train.py/evaluate.py call check_records first), not inside
    # the input pipeline after the run directory is written.
    config = DataConfig("camvid", data_source="tfds", tfds_data_dir=str(tmp_path))
    with pytest.raises(
        ValueError, match=r"not built in .*\(--tfds_data_dir\)\. Build it first: python scripts/build_tfds.py"
    ):
        check_records(config, ["train", "val"])


def test_a_truncated_or_changed_shard_is_named_at_start(synthetic_records, tmp_path):
    data_dir = _copy(synthetic_records, tmp_path / "truncated")
    shard = os.path.join(data_dir, "train-1.tfrecord")
    size = os.path.getsize(shard)
    with open(shard, "r+b") as handle:
        handle.truncate(size - 10)
    with pytest.raises(
        ValueError,
        match=rf"^Shard '.*train-1\.tfrecord' of split 'train' is {size - 10} bytes but .*manifest\.json records "
        rf"{size} \(cut short since the conversion\).*--split=train --overwrite",
    ):
        check_records(_config(data_dir, "synthetic_streets"), ["train"])
    assert check_records(_config(data_dir, "synthetic_streets"), ["val"])  # other splits are unaffected


def test_verify_checksums_names_a_shard_changed_in_place(synthetic_records, tmp_path):
    data_dir = _copy(synthetic_records, tmp_path / "flipped")
    shard = os.path.join(data_dir, "val-0.tfrecord")
    with open(shard, "r+b") as handle:  # same size, one byte different: only the checksum sees it
        handle.seek(40)
        byte = handle.read(1)
        handle.seek(40)
        handle.write(bytes([byte[0] ^ 0xFF]))
    config = _config(data_dir, "synthetic_streets")
    assert check_records(config, ["val"])
    with pytest.raises(
        ValueError,
        match=r"^Shard '.*val-0\.tfrecord' of split 'val' has SHA-256 [0-9a-f]{64} but .*records "
        r"[0-9a-f]{64} \(damaged or replaced",
    ):
        check_records(config, ["val"], verify_checksums=True)
    assert check_records(config, ["train"], verify_checksums=True)


def test_a_manifest_without_sizes_is_still_accepted(synthetic_records, tmp_path):
    """Records converted before sizes were recorded."""
    data_dir = _copy(synthetic_records, tmp_path / "old")
    with open(os.path.join(data_dir, "manifest.json")) as handle:
        splits = json.load(handle)["splits"]
    for entry in splits.values():
        for shard in entry["shards"]:
            del shard["bytes"]
    _edit_manifest(data_dir, splits=splits)
    assert check_records(_config(data_dir, "synthetic_streets"), ["train"], verify_checksums=True)
