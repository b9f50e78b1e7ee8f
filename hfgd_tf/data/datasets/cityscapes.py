"""Cityscapes fine annotations: `leftImg8bit/{split}/<city>/<stem>_leftImg8bit.png` and
`gtFine/{split}/<city>/<stem>_gtFine_labelIds.png`, label ids remapped to the 19 train ids.
"""

import os

import tensorflow as tf

from hfgd_tf.data.dataset_info import DatasetInfo
from hfgd_tf.data.datasets.common import Sample, label_table, require_dir

INFO = DatasetInfo(
    name="cityscapes",
    class_names=(
        "road",
        "sidewalk",
        "building",
        "wall",
        "fence",
        "pole",
        "traffic light",
        "traffic sign",
        "vegetation",
        "terrain",
        "sky",
        "person",
        "rider",
        "car",
        "truck",
        "bus",
        "train",
        "motorcycle",
        "bicycle",
    ),
    colormap=(
        (128, 64, 128),
        (244, 35, 232),
        (70, 70, 70),
        (102, 102, 156),
        (190, 153, 153),
        (153, 153, 153),
        (250, 170, 30),
        (220, 220, 0),
        (107, 142, 35),
        (152, 251, 152),
        (70, 130, 180),
        (220, 20, 60),
        (255, 0, 0),
        (0, 0, 142),
        (0, 0, 70),
        (0, 60, 100),
        (0, 80, 100),
        (0, 0, 230),
        (119, 11, 32),
    ),
    crop_size=(769, 769),
    eval_crop_size=(1024, 2048),
)
SPLITS = ("train", "val", "test")
# cityscapesScripts labels.py: labelId -> trainId; every other id of 0..33 (and -1 plate) is ignored.
_LABEL_ID_TO_TRAIN_ID = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}
LABEL_TABLE = label_table(
    _LABEL_ID_TO_TRAIN_ID, ignore_values=[i for i in range(34) if i not in _LABEL_ID_TO_TRAIN_ID] + [255]
)


def list_samples(data_dir, split):
    image_root = require_dir(os.path.join(data_dir, "leftImg8bit", split), f"Cityscapes {split} leftImg8bit")
    label_root = os.path.join(data_dir, "gtFine", split)
    samples = []
    for city in sorted(c.rstrip("/") for c in tf.io.gfile.listdir(image_root)):
        city_dir = os.path.join(image_root, city)
        if not tf.io.gfile.isdir(city_dir):
            continue
        for name in sorted(tf.io.gfile.listdir(city_dir)):
            if not name.endswith("_leftImg8bit.png"):
                continue
            stem = name[: -len("_leftImg8bit.png")]
            samples.append(
                Sample(
                    stem, os.path.join(city_dir, name), os.path.join(label_root, city, stem + "_gtFine_labelIds.png")
                )
            )
    return samples
