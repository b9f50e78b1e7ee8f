"""DataConfig: where the records are and how to read and augment them."""

import dataclasses
import functools

from hfgd_tf.data.registry import dataset_names, get_dataset_info, get_dataset_spec

LABEL_FORMATS = ("train_ids", "raw")

DATA_SOURCES = ("tfrecord", "tfds")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Input pipeline settings (names follow the authors' flags).

    Attributes:
        dataset: str. Registry name (`hfgd_tf.data.registry`); "folder" takes its classes from the
            records' manifest.json.
        data_dir: str. Directory with `<split>-K.tfrecord` shards.
        train_split, eval_split: str. Shard prefixes.
        crop_height, crop_width: int. Training crop; 0 takes the dataset default.
        eval_crop_height, eval_crop_width: int. Evaluation images are padded bottom/right to this size
            (ignore label in the padding) so they batch; 0 means no padding (eval batch must be 1 unless
            all images share a size).
        min_scale, max_scale, scale_step: float. Random scale range; step 0 draws continuously.
        random_brightness: bool. Brightness delta in +-brightness_max_delta with probability 0.5.
        brightness_max_delta: float. Largest brightness change, in pixel values (0-255).
        photo_metric_distortion: bool. Contrast and saturation in [0.5, 1.5], each with probability 0.5.
        random_flip: bool. Horizontal flip with probability 0.5.
        shuffle_buffer: int. Examples in the shuffle buffer.
        num_parallel_calls: int. Parallel decode/augment calls; -1 is AUTOTUNE.
        deterministic: bool. Keep element order fixed under parallelism (needed for exact resume).
        seed: int. Seed of shuffling and augmentation.
        compression: str. "ZLIB" (authors' default) or "" for uncompressed shards.
        label_format: str. What the records' labels hold: "train_ids" (records written by
            scripts/convert_tfrecord.py) or "raw" (the dataset's raw label values, as the authors'
            converters store them, e.g. Pascal Context 59 with 0 = background and classes 1..59); "raw"
            applies the dataset's raw -> train-id table (the converter's) in the pipeline, for training
            and evaluation.
        data_source: str. "tfrecord" (shards in data_dir) or "tfds" (a built TensorFlow Datasets
            dataset, see hfgd_tf.data.tfds_source; same decoding into train ids and same augmentation).
        tfds_name: str. TFDS dataset for data_source="tfds": one of our builders (hfgd_camvid,
            hfgd_cityscapes, hfgd_pascal_context, hfgd_pascal_context60, hfgd_coco_stuff164k, hfgd_folder)
            or TFDS's cityscapes/semantic_segmentation; "" takes our builder of `dataset`.
        tfds_data_dir: str. TFDS data_dir the dataset was built into; "" is TFDS's default.
    """

    dataset: str
    data_dir: str = ""
    train_split: str = "train"
    eval_split: str = "val"
    crop_height: int = 0
    crop_width: int = 0
    eval_crop_height: int = 0
    eval_crop_width: int = 0
    min_scale: float = 0.5
    max_scale: float = 2.0
    scale_step: float = 0.25
    random_brightness: bool = True
    brightness_max_delta: float = 32.0
    photo_metric_distortion: bool = False
    random_flip: bool = True
    shuffle_buffer: int = 1000
    num_parallel_calls: int = -1
    deterministic: bool = True
    seed: int = 0
    compression: str = "ZLIB"
    label_format: str = "train_ids"
    data_source: str = "tfrecord"
    tfds_name: str = ""
    tfds_data_dir: str = ""

    def __post_init__(self):
        info = get_dataset_spec(self.dataset).info  # None for "folder": its classes live in the records
        if self.crop_height == 0 and self.crop_width == 0:
            crop = info.crop_size if info is not None else (513, 513)
            object.__setattr__(self, "crop_height", crop[0])
            object.__setattr__(self, "crop_width", crop[1])
        for name in ("crop_height", "crop_width"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"DataConfig.{name} must be >= 1 (or both 0 for the default). Received: {getattr(self, name)}"
                )
        for name in ("eval_crop_height", "eval_crop_width"):
            if getattr(self, name) < 0:
                raise ValueError(f"DataConfig.{name} must be >= 0. Received: {getattr(self, name)}")
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(
                f"DataConfig needs 0 < min_scale <= max_scale. Received: min_scale={self.min_scale}, max_scale={self.max_scale}"
            )
        if self.scale_step < 0:
            raise ValueError(f"DataConfig.scale_step must be >= 0. Received: scale_step={self.scale_step}")
        if self.compression not in ("ZLIB", "GZIP", ""):
            raise ValueError(f"DataConfig.compression must be 'ZLIB', 'GZIP' or ''. Received: {self.compression!r}")
        if self.label_format not in LABEL_FORMATS:
            raise ValueError(f"DataConfig.label_format must be one of {LABEL_FORMATS}. Received: {self.label_format!r}")
        if self.label_format == "raw" and get_dataset_spec(self.dataset).label_table is None:
            with_tables = [n for n in dataset_names() if get_dataset_spec(n).label_table is not None]
            raise ValueError(
                f"DataConfig.label_format='raw' needs a raw-label table, which dataset {self.dataset!r} does not "
                f"have (its records hold train ids). Datasets with one: {with_tables}"
            )
        if self.data_source not in DATA_SOURCES:
            raise ValueError(f"DataConfig.data_source must be one of {DATA_SOURCES}. Received: {self.data_source!r}")
        if self.label_format == "raw" and self.data_source == "tfds":
            raise ValueError(
                "DataConfig.label_format='raw' applies to TFRecords written by the authors' converters; TFDS "
                "builds hold train ids already. Use label_format='train_ids' with data_source='tfds'."
            )
        if self.shuffle_buffer < 1:
            raise ValueError(f"DataConfig.shuffle_buffer must be >= 1. Received: {self.shuffle_buffer}")

    @functools.cached_property
    def info(self):
        """The `DatasetInfo` (a folder dataset's comes from `data_dir`/manifest.json, or from the TFDS
        metadata with data_source="tfds"; read once)."""
        if self.dataset == "folder" and self.data_source == "tfds":
            from hfgd_tf.data import tfds_source

            return tfds_source.dataset_info(self)
        return get_dataset_info(self.dataset, self.data_dir)
