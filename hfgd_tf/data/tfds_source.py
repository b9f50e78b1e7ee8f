"""`--data_source=tfds`: prepared TensorFlow Datasets as the input of `hfgd_tf.data.pipeline`.

Two kinds of TFDS datasets are read:
- our builders (`hfgd_tf.data.tfds_builders`, e.g. `hfgd_camvid`): features `image` and `segmentation_mask`
  (train ids already);
- TFDS's own `cityscapes/semantic_segmentation` (features `image_left` and `segmentation_label`, which holds
  Cityscapes *label ids*): its labels go through the Cityscapes converter's label-id -> train-id table.

The elements are read with the image and label still encoded (`tfds.decode.SkipDecoding`), so shuffling
and the resume skip work on small strings, as with TFRecord shards; `decoder(config)` decodes them into
the `(image float32 [H, W, 3], label int32 [H, W])` pairs that the pipeline's augmentation takes. Nothing
is downloaded: the dataset must have been built into `tfds_data_dir` (see `tfds_builders`).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from hfgd_tf.data.dataset_info import DatasetInfo
from hfgd_tf.data.datasets import cityscapes
from hfgd_tf.data.datasets.common import INVALID


@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """How to read one TFDS dataset.

    Attributes:
        dataset: str. Our registry name whose classes the labels are.
        image_key, label_key: str. Feature names of the image and the label.
        label_table: int32 array or None. raw label value -> train id; None when labels are train ids.
        split_aliases: dict. Our split name -> the TFDS split name (`val` -> `validation`).
    """

    dataset: str
    image_key: str
    label_key: str
    label_table: np.ndarray = None
    split_aliases: dict = dataclasses.field(default_factory=dict)


# TFDS's own segmentation datasets that we read (name -> how).
EXTERNAL_SOURCES = {
    "cityscapes/semantic_segmentation": TfdsSource(
        "cityscapes", "image_left", "segmentation_label", cityscapes.LABEL_TABLE, {"val": "validation"}
    ),
}


def _our_source(dataset):
    from hfgd_tf.data import tfds_builders

    return TfdsSource(dataset, tfds_builders.FEATURE_IMAGE, tfds_builders.FEATURE_MASK)


def tfds_name(config):
    """The TFDS name to read: `config.tfds_name`, or our builder of `config.dataset`."""
    from hfgd_tf.data import tfds_builders

    return config.tfds_name or tfds_builders.tfds_name_for(config.dataset)


def source_for(config):
    """The `TfdsSource` of `config` (checks that the TFDS dataset holds `config.dataset`'s classes)."""
    from hfgd_tf.data import tfds_builders

    name = tfds_name(config)
    if name in EXTERNAL_SOURCES:
        source = EXTERNAL_SOURCES[name]
    else:
        builder_name = name.split("/")[0].split(":")[0]
        by_name = {b.name: dataset for dataset, b in tfds_builders.BUILDERS.items()}
        if builder_name not in by_name:
            raise ValueError(
                f"--tfds_name={name!r} is not a dataset we can read. Use one of our builders "
                f"{sorted(by_name)} or {sorted(EXTERNAL_SOURCES)}"
            )
        source = _our_source(by_name[builder_name])
    if source.dataset != config.dataset:
        raise ValueError(
            f"--tfds_name={name!r} holds the classes of dataset {source.dataset!r}, but --dataset={config.dataset!r}"
        )
    return source


def load_builder(config):
    """The prepared `tfds.core.DatasetBuilder` of `config` (never downloads or prepares).

    Raises:
        ValueError: the dataset has not been built into `config.tfds_data_dir`.
    """
    import tensorflow_datasets as tfds

    from hfgd_tf.data import tfds_builders  # noqa: F401  (registers our builders with TFDS)

    name = tfds_name(config)
    source_for(config)
    try:
        builder = tfds.builder(name, data_dir=config.tfds_data_dir or None)
    except Exception as error:  # TFDS raises several types (DatasetNotFoundError, registration errors)
        raise ValueError(f"--tfds_name={name!r}: TFDS cannot find this dataset ({error})") from error
    if not builder.info.splits:
        where = config.tfds_data_dir or "the default TFDS data_dir (~/tensorflow_datasets)"
        command = (
            f"python scripts/build_tfds.py --dataset={config.dataset} --tfds_name={name} "
            f"--manual_dir=<the downloaded dataset> --tfds_data_dir={config.tfds_data_dir or '<dir>'}"
        )
        raise ValueError(f"TFDS dataset {name!r} is not built in {where} (--tfds_data_dir). Build it first: {command}")
    return builder


def tfds_split(config, split, builder=None):
    """Our split name mapped to the TFDS split that holds it (e.g. `val` -> `validation`)."""
    builder = builder or load_builder(config)
    available = list(builder.info.splits)
    resolved = source_for(config).split_aliases.get(split, split) if split not in available else split
    if resolved not in available:
        raise ValueError(
            f"Split {split!r} (--train_split/--eval_split) is not in TFDS dataset {tfds_name(config)!r}; "
            f"its splits are {available}"
        )
    return resolved


def read_encoded(config, split, shuffle_files):
    """The split's examples with image and label still encoded (dicts of scalar strings)."""
    import tensorflow_datasets as tfds

    builder = load_builder(config)
    source = source_for(config)
    dataset = builder.as_dataset(
        split=tfds_split(config, split, builder),
        shuffle_files=shuffle_files,
        decoders={source.image_key: tfds.decode.SkipDecoding(), source.label_key: tfds.decode.SkipDecoding()},
        # Training shuffles the shard files (as the TFRecord path does) of datasets written in order.
        read_config=tfds.ReadConfig(shuffle_seed=config.seed, try_autocache=False, enable_ordering_guard=False),
    )
    return dataset.map(lambda example: {"image": example[source.image_key], "label": example[source.label_key]})


def to_train_ids(label, table, dataset):
    """Maps raw label values to train ids with a converter table (int32 `[256]`); unmapped values fail."""
    train_ids = tf.gather(tf.constant(table, tf.int32), label)
    check = tf.debugging.assert_none_equal(
        train_ids, tf.constant(INVALID, tf.int32), message=f"A {dataset} label holds a value outside its label table"
    )
    with tf.control_dependencies([check]):
        return tf.identity(train_ids)


def decoder(config):
    """`element -> (image float32 [H, W, 3] in [0, 255], label int32 [H, W] train ids)`."""
    table = source_for(config).label_table
    dataset = config.dataset

    def decode(element):
        image = tf.io.decode_image(element["image"], channels=3, expand_animations=False)
        image = tf.ensure_shape(image, [None, None, 3])
        label = tf.io.decode_png(element["label"], channels=1)[..., 0]
        label = tf.cast(label, tf.int32)
        if table is not None:
            label = to_train_ids(label, table, dataset)
        return tf.cast(image, tf.float32), label

    return decode


def dataset_info(config):
    """The `DatasetInfo` of a folder dataset built with `hfgd_folder` (from the builder's metadata)."""
    metadata = load_builder(config).info.metadata or {}
    if "class_names" not in metadata:
        raise ValueError(f"TFDS dataset {tfds_name(config)!r} has no class names in its metadata")
    return DatasetInfo(
        name=metadata.get("dataset", config.dataset),
        class_names=tuple(metadata["class_names"]),
        colormap=tuple(tuple(c) for c in metadata["colormap"]),
        ignore_label=metadata.get("ignore_label", 255),
    )
