"""Pieces shared by the dataset modules: the sample record, label tables, layout checks."""

import dataclasses

import numpy as np
import tensorflow as tf

from hfgd_tf.data.dataset_info import IGNORE_LABEL

# Raw values that a table does not map are "invalid": the converter reports the file.
INVALID = -1


@dataclasses.dataclass(frozen=True)
class Sample:
    """One image/label pair of an official layout."""

    name: str
    image_path: str
    label_path: str


def label_table(mapping, ignore_values=(), size=256):
    """A lookup table raw value -> train id.

    Args:
        mapping: dict raw -> train id.
        ignore_values: raw values that become `IGNORE_LABEL`.
        size: number of raw values (256 for 8-bit PNGs).

    Returns:
        int32 array `[size]`; unlisted raw values are `INVALID`.
    """
    table = np.full(size, INVALID, np.int32)
    for raw, train_id in mapping.items():
        table[raw] = train_id
    for raw in ignore_values:
        table[raw] = IGNORE_LABEL
    return table


def identity_table(num_classes, ignore_values=(IGNORE_LABEL,)):
    return label_table({k: k for k in range(num_classes)}, ignore_values)


def require_dir(path, what):
    if not tf.io.gfile.isdir(path):
        raise ValueError(f"{what} directory not found: {path!r}")
    return path


def read_split_file(path):
    """Stems listed one per line (blank lines and # comments skipped)."""
    if not tf.io.gfile.exists(path):
        raise ValueError(f"Split file not found: {path!r}")
    with tf.io.gfile.GFile(path) as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]
