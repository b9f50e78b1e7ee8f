"""Converting an official dataset layout into sharded TFRecords (iDS format) with a manifest.

For every sample: the image file's bytes are stored as they are (JPEG or PNG, no re-encoding, so the
records hold exactly the released pixels), the label is decoded, checked and remapped to train ids by
the dataset's table. Encoding runs in a thread pool (PIL decoding releases the GIL); shards are written
in sample order, under temporary names renamed when complete. Problems (missing label, unreadable or
corrupt image, size mismatch, label values outside the classes) name the file and either stop the
conversion or are skipped and reported, per `on_error`.
"""

import concurrent.futures
import dataclasses
import io
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from hfgd_tf.data import tfrecord
from hfgd_tf.data.dataset_info import IGNORE_LABEL
from hfgd_tf.data.datasets.common import INVALID
from hfgd_tf.files import file_sha256, write_json_atomic

ON_ERROR = ("stop", "skip")


class ConversionError(ValueError):
    """A sample that cannot be converted; the message names the file."""


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """How to convert.

    Attributes:
        examples_per_shard: int. Examples per `<split>-K.tfrecord` file.
        num_workers: int. Threads that read, check and encode samples.
        on_error: str. "stop" raises at the first bad sample; "skip" leaves it out and reports it.
        compression: str. "ZLIB" (authors' default), "GZIP" or "".
        progress: bool. Show a progress bar.
        overwrite: bool. Replace a split that the output directory already holds (its old shards are
            removed once the new ones are complete); by default such a split is refused, since a
            shorter reconversion would leave stale `<split>-K` shards behind.
    """

    examples_per_shard: int = 500
    num_workers: int = 4
    on_error: str = "stop"
    compression: str = "ZLIB"
    progress: bool = True
    overwrite: bool = False

    def __post_init__(self):
        if self.on_error not in ON_ERROR:
            raise ValueError(f"ConvertOptions.on_error must be one of {ON_ERROR}. Received: {self.on_error!r}")
        if self.examples_per_shard < 1 or self.num_workers < 1:
            raise ValueError("ConvertOptions.examples_per_shard and num_workers must be >= 1")


def _read_image(path):
    if not tf.io.gfile.exists(path):
        raise ConversionError(f"Image file not found: {path}")
    with tf.io.gfile.GFile(path, "rb") as handle:
        data = handle.read()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format
            image.load()  # decodes fully: truncated or corrupt files fail here
            size = image.size
    except (OSError, SyntaxError) as error:
        raise ConversionError(f"Corrupt or unreadable image {path}: {error}") from error
    if image_format not in ("JPEG", "PNG"):
        # Only JPEG/PNG bytes are stored as they are; anything else is re-encoded losslessly.
        with Image.open(io.BytesIO(data)) as image:
            data = tfrecord.encode_png(np.asarray(image.convert("RGB")))
    return data, size


def _read_label(path, label_fn, num_classes):
    if not tf.io.gfile.exists(path):
        raise ConversionError(f"Label file not found for image: {path}")
    try:
        # PIL reads from the gfile handle, so that the dataset may live on gs:// too.
        with tf.io.gfile.GFile(path, "rb") as handle, Image.open(handle) as image:
            raw = np.asarray(image if image.mode in ("L", "P", "RGB", "I;16", "I") else image.convert("L"))
    except (OSError, SyntaxError) as error:
        raise ConversionError(f"Corrupt or unreadable label {path}: {error}") from error
    try:
        label = np.asarray(label_fn(raw), np.int32)
    except (IndexError, ValueError) as error:
        raise ConversionError(f"Label {path} cannot be mapped to train ids: {error}") from error
    invalid = (label == INVALID) | ((label != IGNORE_LABEL) & ((label < 0) | (label >= num_classes)))
    if invalid.any():
        values = sorted(set(np.unique(raw[invalid] if raw.ndim == 2 else label[invalid]).tolist()))[:10]
        raise ConversionError(
            f"Label {path} has values outside the {num_classes} classes (and ignore): raw values {values}"
        )
    return label, (raw.shape[1], raw.shape[0])


def _encode(sample, label_fn, num_classes):
    """Returns `(serialized example, per-class pixel counts)` or raises ConversionError."""
    image_bytes, image_size = _read_image(sample.image_path)
    label, label_size = _read_label(sample.label_path, label_fn, num_classes)
    if image_size != label_size:
        raise ConversionError(
            f"Image {sample.image_path} is {image_size[0]}x{image_size[1]} but its label {sample.label_path} is "
            f"{label_size[0]}x{label_size[1]} (width x height)"
        )
    return tfrecord.make_example(image_bytes, label).SerializeToString(), class_pixel_counts(label, num_classes)


def class_pixel_counts(label, num_classes):
    """Pixels per train id in a label map, ignore label excluded: int64 `[num_classes]`."""
    return np.bincount(label[label != IGNORE_LABEL].ravel(), minlength=num_classes)


def _table_fn(table):
    def apply(raw):
        if raw.ndim != 2:
            raise ValueError(f"expected a single-channel label, got shape {raw.shape}")
        if raw.max(initial=0) >= len(table):
            raise ValueError(f"raw value {int(raw.max())} beyond the table")
        return table[raw]

    return apply


def shard_entries(paths):
    """The manifest's record of finished shards: name, size in bytes and SHA-256 of each.

    `check_records` compares the sizes at every start (one stat per shard) and the checksums on request.
    """
    return [{"file": os.path.basename(p), "bytes": tf.io.gfile.stat(p).length, "sha256": file_sha256(p)} for p in paths]


def convert_split(samples, output_dir, split, info, label_fn, options):
    """Converts one split; returns its manifest entry (counts, shards with checksums, skipped files).

    Args:
        samples: list of `Sample`.
        output_dir: str.
        split: str. Shard prefix.
        info: `DatasetInfo`.
        label_fn: callable raw label array -> train-id array, or a lookup table array.
        options: `ConvertOptions`.
    """
    if not samples:
        raise ConversionError(f"No samples found for split {split!r}")
    if isinstance(label_fn, np.ndarray):
        label_fn = _table_fn(label_fn)
    skipped, class_pixels = [], np.zeros(info.num_classes, np.int64)
    start = time.time()
    bar = None
    if options.progress:
        import tqdm  # a dependency of tensorflow-datasets, and ours

        bar = tqdm.tqdm(total=len(samples), desc=f"{info.name}/{split}", unit="img")
    writer = tfrecord.ShardWriter(output_dir, split, options.examples_per_shard, options.compression, options.overwrite)
    with writer:
        with concurrent.futures.ThreadPoolExecutor(options.num_workers) as pool:
            # Bounded look-ahead keeps memory flat while preserving sample order in the shards.
            window = options.num_workers * 4
            futures = [pool.submit(_encode, s, label_fn, info.num_classes) for s in samples[:window]]
            for index, sample in enumerate(samples):
                if index + window < len(samples):
                    futures.append(pool.submit(_encode, samples[index + window], label_fn, info.num_classes))
                try:
                    serialized, counts = futures[index].result()
                except ConversionError as error:
                    if options.on_error == "stop":
                        for future in futures[index:]:
                            if future is not None:
                                future.cancel()
                        # The writer drops its staged shards: a stopped split leaves none, and the old
                        # shards of an overwritten split stay as they were.
                        raise
                    skipped.append({"name": sample.name, "reason": str(error)})
                    logging.warning("Skipped %s", error)
                else:
                    writer.write_serialized(serialized)
                    class_pixels += counts
                futures[index] = None
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    return {
        "num_examples": writer.num_examples,
        "num_skipped": len(skipped),
        "skipped": skipped,
        "shards": shard_entries(writer.paths),
        "class_pixels": class_pixels.tolist(),
        "seconds": round(time.time() - start, 2),
    }


def write_manifest(output_dir, info, splits, source=None):
    """Writes `manifest.json` (atomically) and returns its path.

    Splits that an earlier manifest of the same dataset lists and that were not converted this time
    keep their entries, so converting `--split=val` alone does not orphan the train shards.
    """
    previous = tfrecord.read_manifest(output_dir)
    if (
        previous is not None
        and previous.get("dataset") == info.name
        and previous.get("class_names") == list(info.class_names)
    ):
        splits = {**previous.get("splits", {}), **splits}
    manifest = {
        "dataset": info.name,
        "num_classes": info.num_classes,
        "class_names": list(info.class_names),
        "colormap": [list(c) for c in info.colormap],
        "ignore_label": info.ignore_label,
        "label_format": "train_ids",
        "format": {
            "keys": sorted(tfrecord.FEATURES),
            "image": "tf.io.serialize_tensor(scalar string of the JPEG/PNG file bytes)",
            "label": "tf.io.serialize_tensor(int32 [H, W] train ids)",
        },
        "source": source,
        "splits": splits,
    }
    return write_json_atomic(os.path.join(output_dir, "manifest.json"), manifest)


def class_weights_from_manifest(manifest, split="train", method="inverse_log"):
    """Per-class loss weights from the pixel counts a conversion recorded (USER_NEEDS 7).

    `inverse_log` (ENet): 1 / ln(1.02 + frequency); `median` (median frequency balancing):
    median(freq) / freq. Classes with no pixels get weight 0.
    """
    counts = np.asarray(manifest["splits"][split]["class_pixels"], np.float64)
    frequency = counts / max(counts.sum(), 1.0)
    if method == "inverse_log":
        weights = 1.0 / np.log(1.02 + frequency)
    elif method == "median":
        with np.errstate(divide="ignore"):
            weights = np.median(frequency[frequency > 0]) / frequency
    else:
        raise ValueError(f"method must be 'inverse_log' or 'median'. Received: {method!r}")
    return np.where(counts > 0, weights, 0.0)
