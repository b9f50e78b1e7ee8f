"""CamVid, SegNet 11-class version: `images/{split}/<stem>.jpg`, `labels/{split}/<stem>.png`.

Raw labels 0..10 are the classes, 11 is void (ignored).
"""

import os

import tensorflow as tf

from hfgd_tf.data.dataset_info import DatasetInfo
from hfgd_tf.data.datasets.common import Sample, label_table, require_dir

INFO = DatasetInfo(
    name="camvid",
    class_names=(
        "sky", "building", "pole", "road", "pavement", "tree",
        "sign_symbol", "fence", "car", "pedestrian", "bicyclist",
    ),
    colormap=(
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
        (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
    ),
    crop_size=(352, 480),
    eval_crop_size=(360, 480),
)
SPLITS = ("train", "val", "test")
LABEL_TABLE = label_table({k: k for k in range(11)}, ignore_values=(11,))


def list_samples(data_dir, split):
    image_dir = require_dir(os.path.join(data_dir, "images", split), f"CamVid {split} images")
    label_dir = os.path.join(data_dir, "labels", split)
    samples = []
    for name in sorted(tf.io.gfile.listdir(image_dir)):
        stem, extension = os.path.splitext(name)
        if extension.lower() in (".jpg", ".jpeg", ".png"):
            samples.append(Sample(stem, os.path.join(image_dir, name), os.path.join(label_dir, stem + ".png")))
    return samples
