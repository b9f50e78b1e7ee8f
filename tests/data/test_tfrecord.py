import os

import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.data import tfrecord


def _example(seed, height=5, width=7):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    label = rng.integers(0, 4, (height, width)).astype(np.int32)
    label[0, 0] = 255
    return image, label


def test_round_trip_keeps_exact_pixels_and_labels(tmp_path):
    examples = [_example(seed) for seed in range(5)]
    with tfrecord.ShardWriter(str(tmp_path), "train", examples_per_shard=2) as writer:
        for image, label in examples:
            writer.write(tfrecord.make_example(tfrecord.encode_png(image), label))
    assert [os.path.basename(p) for p in writer.paths] == ["train-0.tfrecord", "train-1.tfrecord", "train-2.tfrecord"]
    files = tfrecord.list_shards(str(tmp_path), "train")
    records = tf.data.TFRecordDataset(files, compression_type="ZLIB").map(tfrecord.parse_example)
    for (image, label), (expected_image, expected_label) in zip(records, examples):
        np.testing.assert_array_equal(image.numpy(), expected_image)
        np.testing.assert_array_equal(label.numpy(), expected_label)


def test_records_use_the_authors_keys(tmp_path):
    image, label = _example(0)
    example = tfrecord.make_example(tfrecord.encode_png(image), label)
    features = example.features.feature
    assert set(features) == {"image", "label", "height", "width", "depth"}
    assert features["height"].int64_list.value == [5] and features["depth"].int64_list.value == [3]
    parsed_label = tf.io.parse_tensor(features["label"].bytes_list.value[0], tf.int32)
    np.testing.assert_array_equal(parsed_label.numpy(), label)


def test_a_failed_write_leaves_no_shard(tmp_path):
    image, label = _example(0)
    with pytest.raises(RuntimeError):
        with tfrecord.ShardWriter(str(tmp_path), "train", examples_per_shard=10) as writer:
            writer.write(tfrecord.make_example(tfrecord.encode_png(image), label))
            raise RuntimeError("converter crashed")
    assert os.listdir(tmp_path) == []


def test_missing_shards_are_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="val-"):
        tfrecord.list_shards(str(tmp_path), "val")
    with pytest.raises(ValueError, match="not found"):
        tfrecord.list_shards(os.path.join(tmp_path, "nope"), "val")


def _write_split(directory, examples, examples_per_shard=2, overwrite=False):
    with tfrecord.ShardWriter(str(directory), "train", examples_per_shard, overwrite=overwrite) as writer:
        for image, label in examples:
            writer.write(tfrecord.make_example(tfrecord.encode_png(image), label))
    return writer


def _read_labels(directory):
    files = tfrecord.list_shards(str(directory), "train")
    return [
        label.numpy()
        for _, label in tf.data.TFRecordDataset(files, compression_type="ZLIB").map(tfrecord.parse_example)
    ]


def test_rewriting_a_split_is_refused_and_leaves_it_as_it_was(tmp_path):
    _write_split(tmp_path, [_example(seed) for seed in range(5)])
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match=r"already holds 3 'train-\*.tfrecord' shard\(s\).*--overwrite"):
        _write_split(tmp_path, [_example(10)])
    assert sorted(os.listdir(tmp_path)) == before == ["train-0.tfrecord", "train-1.tfrecord", "train-2.tfrecord"]
    _write_split(tmp_path / "other", [_example(10)])  # another split directory is fine
    with tfrecord.ShardWriter(str(tmp_path), "val") as writer:  # so is another split in the same directory
        writer.write(tfrecord.make_example(tfrecord.encode_png(_example(11)[0]), _example(11)[1]))


def test_overwrite_replaces_the_whole_split_without_stale_shards(tmp_path):
    _write_split(tmp_path, [_example(seed) for seed in range(5)])
    new = [_example(seed) for seed in (20, 21)]
    writer = _write_split(tmp_path, new, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["train-0.tfrecord"]
    assert writer.paths == [os.path.join(str(tmp_path), "train-0.tfrecord")]
    labels = _read_labels(tmp_path)
    assert len(labels) == 2
    for label, (_, expected) in zip(labels, new):
        np.testing.assert_array_equal(label, expected)


def test_a_failed_overwrite_keeps_the_old_split(tmp_path):
    old = [_example(seed) for seed in range(3)]
    _write_split(tmp_path, old)
    with pytest.raises(RuntimeError):
        with tfrecord.ShardWriter(str(tmp_path), "train", 1, overwrite=True) as writer:
            writer.write(tfrecord.make_example(tfrecord.encode_png(_example(30)[0]), _example(30)[1]))
            writer.write(tfrecord.make_example(tfrecord.encode_png(_example(31)[0]), _example(31)[1]))
            raise RuntimeError("converter crashed")
    assert sorted(os.listdir(tmp_path)) == ["train-0.tfrecord", "train-1.tfrecord"]
    assert [label.tolist() for label in _read_labels(tmp_path)] == [label.tolist() for _, label in old]
