"""Any image/label folder (the authors' raw layout): `images/<stem>.{jpg,jpeg,png}`, `labels/<stem>.png`,
`classes.txt` and split lists `<split>.txt` (stems, one per line; without one, every image is in the split).

`classes.txt` has one class per line, `name` or `name r g b`, in train-id order. Labels are either
single-channel train ids (255 = ignore) or, when every class has a colour, RGB images coloured with those
colours (black, if no class uses it, is ignored). Converted records carry the class names and colours in
their manifest, which is where training reads them (`DataConfig(dataset="folder", data_dir=records)`).
"""

import os

import numpy as np
import tensorflow as tf

from hfgd_tf.data.dataset_info import IGNORE_LABEL, DatasetInfo, generic_palette
from hfgd_tf.data.datasets.common import INVALID, Sample, identity_table, read_split_file, require_dir
from hfgd_tf.data.tfrecord import read_manifest

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
IGNORE_COLOUR = (0, 0, 0)


def read_classes(data_dir):
    """Returns `(class_names, colours or None)` from `classes.txt`."""
    path = os.path.join(data_dir, "classes.txt")
    if not tf.io.gfile.exists(path):
        raise ValueError(f"Folder dataset needs {path!r}: one class per line, 'name' or 'name r g b'")
    names, colours = [], []
    with tf.io.gfile.GFile(path) as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) not in (1, 4):
                raise ValueError(f"{path}:{number}: expected 'name' or 'name r g b'. Received: {line.strip()!r}")
            names.append(parts[0])
            if len(parts) == 4:
                colours.append(tuple(int(v) for v in parts[1:]))
    if not names:
        raise ValueError(f"{path!r} lists no classes")
    if colours and len(colours) != len(names):
        raise ValueError(f"{path!r}: give a colour for every class or for none")
    return tuple(names), tuple(colours) if colours else None


def info_from_classes(data_dir):
    names, colours = read_classes(data_dir)
    return DatasetInfo(name="folder", class_names=names, colormap=colours or generic_palette(len(names)))


def info_from_manifest(records_dir):
    """The DatasetInfo of converted folder records (from their manifest.json)."""
    manifest = read_manifest(records_dir)
    if manifest is None:
        path = os.path.join(records_dir, "manifest.json")
        raise ValueError(
            f"dataset='folder' needs {path!r} (written by scripts/convert_tfrecord.py) to know its classes"
        )
    names = tuple(manifest["class_names"])
    colours = tuple(tuple(c) for c in manifest.get("colormap") or generic_palette(len(names)))
    return DatasetInfo(name="folder", class_names=names, colormap=colours)


def label_converter(data_dir):
    """Returns `label_array -> train ids` for this folder (ids pass through; RGB goes through the palette)."""
    names, colours = read_classes(data_dir)
    table = identity_table(len(names))

    def convert(label):
        if label.ndim == 2:
            return table[label]
        if colours is None:
            raise ValueError("RGB label found but classes.txt gives no colours")
        codes = (label[..., 0].astype(np.int64) << 16) | (label[..., 1].astype(np.int64) << 8) | label[..., 2]
        result = np.full(codes.shape, INVALID, np.int32)
        if IGNORE_COLOUR not in colours:
            result[codes == 0] = IGNORE_LABEL
        for index, (r, g, b) in enumerate(colours):
            result[codes == ((r << 16) | (g << 8) | b)] = index
        return result

    return convert


def list_samples(data_dir, split):
    image_dir = require_dir(os.path.join(data_dir, "images"), "Folder dataset images")
    label_dir = os.path.join(data_dir, "labels")
    split_file = os.path.join(data_dir, f"{split}.txt")
    by_stem = {
        os.path.splitext(n)[0]: n for n in sorted(tf.io.gfile.listdir(image_dir)) if n.lower().endswith(IMAGE_SUFFIXES)
    }
    stems = read_split_file(split_file) if tf.io.gfile.exists(split_file) else sorted(by_stem)
    samples = []
    for stem in stems:
        image_name = by_stem.get(stem, stem + ".jpg")
        samples.append(Sample(stem, os.path.join(image_dir, image_name), os.path.join(label_dir, stem + ".png")))
    return samples
