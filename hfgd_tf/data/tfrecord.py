"""TFRecord examples in the authors' iDS format, and shard writing that never leaves half a shard.

An example has the features `image` (bytes), `label` (bytes), `height`, `width`, `depth` (int64). Each
bytes value is a `tf.io.serialize_tensor`: `image` of a scalar string holding the PNG/JPEG file bytes,
`label` of an int32 `[H, W]` tensor of train ids. Files are `<split>-<k>.tfrecord`, ZLIB-compressed
by default, so records written by the authors' converters read here too.
"""

import io
import json
import os
import uuid

import numpy as np
import tensorflow as tf
from PIL import Image

COMPRESSION = "ZLIB"
FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.string),
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
    "depth": tf.io.FixedLenFeature([], tf.int64),
}


def encode_png(image):
    """PNG bytes of a uint8 `[H, W, 3]` or `[H, W]` array (lossless, so records keep exact pixels)."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_example(encoded_image, label):
    """Builds a `tf.train.Example`.

    Args:
        encoded_image: bytes. The PNG or JPEG file of the image.
        label: int array `[H, W]` of train ids (ignore label included).

    Returns:
        `tf.train.Example`.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must be [H, W]. Received shape {label.shape}")
    height, width = label.shape
    image_bytes = tf.io.serialize_tensor(tf.constant(encoded_image)).numpy()
    label_bytes = tf.io.serialize_tensor(tf.constant(label.astype(np.int32))).numpy()

    def int_feature(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    def bytes_feature(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": bytes_feature(image_bytes),
                "label": bytes_feature(label_bytes),
                "height": int_feature(height),
                "width": int_feature(width),
                "depth": int_feature(3),
            }
        )
    )


def parse_example(serialized):
    """Parses one serialized example into `(image uint8 [H, W, 3], label int32 [H, W])`."""
    parsed = tf.io.parse_single_example(serialized, FEATURES)
    encoded = tf.io.parse_tensor(parsed["image"], tf.string)
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    label = tf.io.parse_tensor(parsed["label"], tf.int32)
    label = tf.reshape(label, [parsed["height"], parsed["width"]])
    image = tf.ensure_shape(image, [None, None, 3])
    return image, label


def shard_path(output_dir, split, index):
    return os.path.join(output_dir, f"{split}-{index}.tfrecord")


class ShardWriter:
    """Writes examples into consecutive shards of `examples_per_shard` examples each, as one whole split.

    Shards are written into a hidden staging folder inside `output_dir` and moved into place only when
    the writer closes without an error, so a crash never leaves a file that looks like a valid shard.
    A split is written whole: if `output_dir` already holds `<split>-*.tfrecord` shards, the writer
    refuses (a shorter reconversion would otherwise leave stale `<split>-K` files that are then read
    with the new ones), unless `overwrite=True`, which removes the old shards of that split when the new
    ones are complete. Use as a context manager; `paths` lists the finished shards.
    """

    def __init__(self, output_dir, split, examples_per_shard=1000, compression=COMPRESSION, overwrite=False):
        if examples_per_shard < 1:
            raise ValueError(f"examples_per_shard must be >= 1. Received: {examples_per_shard}")
        if not overwrite:
            check_split_is_empty(output_dir, split)
        self.output_dir, self.split = output_dir, split
        self.examples_per_shard, self.compression = examples_per_shard, compression
        self.paths, self.num_examples = [], 0
        # tf.io.gfile throughout, so that `output_dir` may be gs://... (or ram:// in tests).
        self._staging = os.path.join(output_dir, f".{split}-{uuid.uuid4().hex}.partial")
        tf.io.gfile.makedirs(self._staging)
        self._writer, self._count = None, 0

    def _open(self):
        options = tf.io.TFRecordOptions(compression_type=self.compression or "")
        self._writer = tf.io.TFRecordWriter(shard_path(self._staging, self.split, len(self.paths)), options)
        self._count = 0

    def _close(self):
        self._writer.close()
        self.paths.append(shard_path(self._staging, self.split, len(self.paths)))
        self._writer = None

    def write(self, example):
        self.write_serialized(example.SerializeToString())

    def write_serialized(self, serialized):
        if self._writer is None:
            self._open()
        self._writer.write(serialized)
        self._count += 1
        self.num_examples += 1
        if self._count >= self.examples_per_shard:
            self._close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is not None:
            if self._writer is not None:
                self._writer.close()
            if tf.io.gfile.exists(self._staging):
                tf.io.gfile.rmtree(self._staging)
            return
        if self._writer is not None:
            self._close()
        # Old shards of the split go first, then the new ones move in (renames within one directory).
        for path in _split_shard_names(self.output_dir, self.split):
            tf.io.gfile.remove(os.path.join(self.output_dir, path))
        final = []
        for path in self.paths:
            target = os.path.join(self.output_dir, os.path.basename(path))
            tf.io.gfile.rename(path, target, overwrite=True)
            final.append(target)
        self.paths = final
        if tf.io.gfile.exists(self._staging):
            tf.io.gfile.rmtree(self._staging)


def _split_shard_names(data_dir, split):
    """Names of the files `list_shards` reads for `split` (unsorted); [] for a missing directory."""
    if not tf.io.gfile.isdir(data_dir):
        return []
    prefix = f"{split}-"
    # gfile lists subdirectories of object stores with a trailing "/".
    return [n for n in tf.io.gfile.listdir(data_dir) if n.startswith(prefix) and n.endswith(".tfrecord")]


def check_split_is_empty(output_dir, split):
    """Raises a ValueError when `output_dir` already holds shards of `split` (see `ShardWriter`)."""
    existing = sorted(_split_shard_names(output_dir, split))
    if existing:
        raise ValueError(
            f"{output_dir!r} already holds {len(existing)} '{split}-*.tfrecord' shard(s) ({existing[:5]}); "
            f"writing {split!r} again there would mix old and new shards. Remove them, choose another output "
            f"directory, or replace the split whole with --overwrite"
        )


def list_shards(data_dir, split):
    """Sorted shard paths of `split` in `data_dir`; a clear error when there are none."""
    if not tf.io.gfile.isdir(data_dir):
        raise ValueError(f"TFRecord directory not found: {data_dir!r}")
    prefix = f"{split}-"
    names = _split_shard_names(data_dir, split)
    if not names:
        raise ValueError(
            f"No '{split}-*.tfrecord' shards in {data_dir!r} (found: {sorted(tf.io.gfile.listdir(data_dir))[:10]})"
        )

    def shard_index(name):
        stem = name[len(prefix) : -len(".tfrecord")]
        return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)

    return [os.path.join(data_dir, n) for n in sorted(names, key=shard_index)]


def read_manifest(data_dir):
    """Returns the manifest dict of `data_dir`, or None when there is none."""
    path = os.path.join(data_dir, "manifest.json")
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.loads(handle.read())
