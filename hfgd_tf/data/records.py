"""Checks, before anything is built or written, that `DataConfig.data_dir` holds records of the dataset.

`check_records` is what the scripts call first: for a TFDS source it checks the build and its splits; it names `data_dir` when it is missing, checks the shards
against the records' `manifest.json` (dataset name, class count, label format, no stale shards, each
shard's size, and on request its SHA-256) and, for
records without a manifest (e.g. written by the authors' own converters), reads the labels of a few
examples and refuses values that cannot belong to the dataset in the configured `label_format`.

`to_train_ids` is the in-pipeline remap for `label_format="raw"`: the dataset's own raw -> train-id table
(the one the converter applies, `hfgd_tf.data.registry`), so the authors' raw-label records train and
score with the same ids as records converted here.
"""

import os

import numpy as np
import tensorflow as tf

from hfgd_tf.data.datasets.common import INVALID
from hfgd_tf.data.registry import get_dataset_spec
from hfgd_tf.data.tfrecord import list_shards, read_manifest
from hfgd_tf.files import file_sha256

# Examples whose labels are read when the records have no manifest (spread over up to 4 shards).
NUM_SCANNED_EXAMPLES = 16


def to_train_ids(label, table, dataset):
    """Maps raw label values to train ids with a dataset's table (`label_format="raw"`).

    Args:
        label: int32 tensor `[H, W]` of raw values.
        table: int array `[N]` raw value -> train id (`IGNORE_LABEL` for ignored values, `INVALID`
            for values the dataset never uses).
        dataset: str. Named in the error.

    Returns:
        int32 tensor `[H, W]` of train ids. A value outside the table, or one the table marks invalid,
        fails the pipeline with a message naming the values (not a silent ignore).
    """
    table = tf.constant(np.asarray(table, np.int32))
    size = int(table.shape[0])
    inside = (label >= 0) & (label < size)
    ids = tf.where(inside, tf.gather(table, tf.clip_by_value(label, 0, size - 1)), INVALID)
    valid = tf.not_equal(ids, INVALID)
    ok = tf.reduce_all(valid)
    # The offending values are gathered only when there are some.
    bad_values = tf.cond(ok, lambda: tf.zeros([0], tf.int32), lambda: tf.unique(tf.boolean_mask(label, ~valid))[0])
    check = tf.debugging.Assert(
        ok, [f"Raw label values that dataset {dataset!r} does not have (label_format='raw'):", bad_values], summarize=16
    )
    with tf.control_dependencies([check]):
        return tf.identity(ids)


def _scan_label_values(files, compression, limit=NUM_SCANNED_EXAMPLES):
    """The distinct label values of the first examples of up to 4 shards spread over `files` (their
    images are parsed too, not decoded, so that an unreadable format fails here with the shard's name)."""
    picked = [files[i] for i in sorted(set(np.linspace(0, len(files) - 1, min(4, len(files))).astype(int)))]
    per_file = max(1, limit // len(picked))
    values, count = set(), 0
    for path in picked:
        try:
            for serialized in tf.data.TFRecordDataset(path, compression_type=compression).take(per_file):
                parsed = tf.io.parse_single_example(
                    serialized, {key: tf.io.FixedLenFeature([], tf.string) for key in ("image", "label")}
                )
                tf.io.parse_tensor(parsed["image"], tf.string)  # float32 images (old releases) fail here
                label = tf.io.parse_tensor(parsed["label"], tf.int32)
                values.update(np.unique(label.numpy()).tolist())
                count += 1
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
            raise ValueError(
                f"Cannot read {path!r} (compression={compression!r}; records need 'image' and 'label' features "
                f"holding tf.io.serialize_tensor of the JPEG/PNG bytes (a scalar string) and of an int32 [H, W] "
                f"label map; float32 images of older releases: reconvert with scripts/convert_tfrecord.py): "
                f"{error.message.splitlines()[0]}"
            ) from None
    return values, count


def _valid_values(table):
    return {raw for raw in range(len(table)) if table[raw] != INVALID}


def _check_scanned_labels(config, split, files, info, table):
    values, count = _scan_label_values(files, config.compression)
    train_ids = set(range(info.num_classes)) | {info.ignore_label}
    raw_values = _valid_values(table) if table is not None else None
    shown = sorted(values)[:20]
    if config.label_format == "train_ids":
        bad = sorted(values - train_ids)
        if bad:
            hint = (
                f" These look like the dataset's raw labels (as the authors' converters store them): "
                f"pass --label_format=raw to remap them with the {config.dataset} table."
                if raw_values is not None and values <= raw_values
                else ""
            )
            raise ValueError(
                f"The {split!r} records in {config.data_dir!r} hold label values {bad[:20]} that are not train ids of "
                f"{config.dataset!r} ({info.num_classes} classes, ignore {info.ignore_label}); values seen in "
                f"{count} examples: {shown}.{hint}"
            )
        if raw_values is not None and values <= raw_values and info.ignore_label not in values:
            raw_ignored = sorted(v for v in values if table[v] == info.ignore_label)
            if raw_ignored:
                # Train-id records of these datasets have ignored pixels in nearly every image; none in
                # all scanned examples while a value that raw labels use for ignored pixels is everywhere
                # is what the authors' raw records look like (Pascal Context 59: raw 0 = background).
                raise ValueError(
                    f"The {split!r} records in {config.data_dir!r} have no ignore label ({info.ignore_label}) in "
                    f"{count} examples but values {raw_ignored}, which {config.dataset}'s raw labels use for "
                    f"ignored pixels: they look like raw labels (the authors' converters); pass "
                    f"--label_format=raw. If they really are train ids, convert them with "
                    f"scripts/convert_tfrecord.py (its manifest.json records the label format)."
                )
    else:
        bad = sorted(values - raw_values)
        if bad:
            hint = " They look like train ids: drop --label_format=raw." if values <= train_ids else ""
            raise ValueError(
                f"The {split!r} records in {config.data_dir!r} hold label values {bad[:20]} that are not raw labels "
                f"of {config.dataset!r} (label_format='raw'); values seen in {count} examples: {shown}.{hint}"
            )


def _check_manifest(config, split, files, manifest, info, verify_checksums=False):
    where = f"{config.data_dir}/manifest.json"
    if config.dataset != "folder" and manifest.get("dataset") != config.dataset:
        raise ValueError(
            f"The records in {config.data_dir!r} are dataset {manifest.get('dataset')!r} "
            f"({manifest.get('num_classes')} classes, {where}) but --dataset={config.dataset!r}"
        )
    if manifest.get("num_classes", info.num_classes) != info.num_classes:
        raise ValueError(
            f"The records in {config.data_dir!r} have {manifest['num_classes']} classes ({where}) but dataset "
            f"{config.dataset!r} has {info.num_classes}"
        )
    stored = manifest.get("label_format", "train_ids")  # every converter here writes train ids
    if stored != config.label_format:
        raise ValueError(
            f"The records in {config.data_dir!r} hold {stored} labels ({where}) but --label_format="
            f"{config.label_format}: use --label_format={stored}"
        )
    entry = manifest.get("splits", {}).get(split)
    if entry is None or "shards" not in entry:
        raise ValueError(
            f"{where} does not list split {split!r} (it lists {sorted(manifest.get('splits', {}))}), yet "
            f"'{split}-*.tfrecord' shards are there: they were not written with this manifest. Reconvert "
            f"the split (scripts/convert_tfrecord.py --split={split} --overwrite)"
        )
    listed = {shard["file"] for shard in entry["shards"]}
    on_disk = {os.path.basename(path) for path in files}
    if listed != on_disk:
        raise ValueError(
            f"The {split!r} shards in {config.data_dir!r} do not match {where}: not listed there "
            f"{sorted(on_disk - listed)[:5]}, missing {sorted(listed - on_disk)[:5]} (stale shards of an earlier "
            f"conversion?). Reconvert the split with --overwrite"
        )
    _check_shard_contents(config, split, files, entry["shards"], where, verify_checksums)


def _check_shard_contents(config, split, files, listed, where, verify_checksums):
    """Each shard's size against the manifest (every start: one stat per shard), and with
    `verify_checksums` its SHA-256 (reads every byte: minutes for a large dataset on a remote store).

    A shard cut short (a partial copy, a full disk) would otherwise fail only when the pipeline reaches
    it, possibly hours into training, or (an uncompressed shard cut at a record boundary) not at all.
    Manifests written before sizes were recorded have no `bytes`: their shards are checked by checksum only.
    """
    by_name = {shard["file"]: shard for shard in listed}
    for path in files:
        shard = by_name[os.path.basename(path)]
        reconvert = (
            f"copy the shard again from where it came, or reconvert the split (scripts/convert_tfrecord.py "
            f"--split={split} --overwrite)"
        )
        if "bytes" in shard:
            size = tf.io.gfile.stat(path).length
            if size != shard["bytes"]:
                raise ValueError(
                    f"Shard {path!r} of split {split!r} is {size} bytes but {where} records {shard['bytes']} "
                    f"({'cut short' if size < shard['bytes'] else 'changed'} since the conversion): {reconvert}"
                )
        if verify_checksums and "sha256" in shard:
            digest = file_sha256(path)
            if digest != shard["sha256"]:
                raise ValueError(
                    f"Shard {path!r} of split {split!r} has SHA-256 {digest} but {where} records "
                    f"{shard['sha256']} (damaged or replaced since the conversion): {reconvert}"
                )


def check_records(config, splits, verify_checksums=False):
    """Checks `config.data_dir` for `splits` before a model is built or a run directory written.

    Args:
        config: `DataConfig`.
        splits: iterable of str. The shard prefixes that will be read.
        verify_checksums: bool. Also compare every shard's SHA-256 with the manifest (reads every
            byte; the shard list and sizes are always compared).

    Returns:
        dict split -> list of shard paths.

    Raises:
        ValueError: naming `data_dir`, the shard or manifest, and what was expected.
    """
    if config.data_source != "tfrecord":
        # A TFDS build: that it is built and holds the splits, here rather than inside the input pipeline
        # (a deep traceback after the model is built and the run directory written).
        from hfgd_tf.data import tfds_source

        builder = tfds_source.load_builder(config)
        for split in dict.fromkeys(splits):
            tfds_source.tfds_split(config, split, builder)
        return {}
    if not config.data_dir:
        raise ValueError(
            "--data_dir (DataConfig.data_dir) is not set: give the directory of '<split>-K.tfrecord' shards "
            "(scripts/convert_tfrecord.py writes them)"
        )
    if not tf.io.gfile.isdir(config.data_dir):
        raise ValueError(f"--data_dir {config.data_dir!r} (DataConfig.data_dir) does not exist or is not a directory")
    info = config.info
    manifest = read_manifest(config.data_dir)
    table = get_dataset_spec(config.dataset).label_table
    shards = {}
    for split in dict.fromkeys(splits):
        files = list_shards(config.data_dir, split)
        if manifest is not None:
            _check_manifest(config, split, files, manifest, info, verify_checksums)
        else:
            _check_scanned_labels(config, split, files, info, table)
        shards[split] = files
    return shards
