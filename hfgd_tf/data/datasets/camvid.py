"""CamVid, SegNet 11-class version.

Two layouts are read: `images/{split}/<stem>.jpg` with `labels/{split}/<stem>.png`, and the layout of the
SegNet tutorial's `CamVid/` folder as downloaded (`{split}/<stem>.png` with `{split}annot/<stem>.png`).
Raw labels 0..10 are the classes, 11 is void (ignored).
"""

import os

import tensorflow as tf

from hfgd_tf.data.dataset_info import DatasetInfo
from hfgd_tf.data.datasets.common import Sample, label_table, require_dir

INFO = DatasetInfo(
    name="camvid",
    class_names=(
        "sky",
        "building",
        "pole",
        "road",
        "pavement",
        "tree",
        "sign_symbol",
        "fence",
        "car",
        "pedestrian",
        "bicyclist",
    ),
    colormap=(
        (128, 128, 128),
        (128, 0, 0),
        (192, 192, 128),
        (128, 64, 128),
        (60, 40, 222),
        (128, 128, 0),
        (192, 128, 128),
        (64, 64, 128),
        (64, 0, 128),
        (64, 64, 0),
        (0, 128, 192),
    ),
    crop_size=(352, 480),
    eval_crop_size=(360, 480),
)
SPLITS = ("train", "val", "test")
LABEL_TABLE = label_table({k: k for k in range(11)}, ignore_values=(11,))


def list_samples(data_dir, split):
    image_dir, label_dir = os.path.join(data_dir, "images", split), os.path.join(data_dir, "labels", split)
    segnet_images, segnet_labels = os.path.join(data_dir, split), os.path.join(data_dir, f"{split}annot")
    if not tf.io.gfile.isdir(image_dir) and tf.io.gfile.isdir(segnet_images) and tf.io.gfile.isdir(segnet_labels):
        image_dir, label_dir = segnet_images, segnet_labels
    require_dir(
        image_dir,
        f"CamVid {split} images ({os.path.join(data_dir, 'images', split)!r} or, in the SegNet tutorial's "
        f"layout, {segnet_images!r} beside {segnet_labels!r}):",
    )
    samples = []
    for name in sorted(tf.io.gfile.listdir(image_dir)):
        stem, extension = os.path.splitext(name)
        if extension.lower() in (".jpg", ".jpeg", ".png"):
            samples.append(Sample(stem, os.path.join(image_dir, name), os.path.join(label_dir, stem + ".png")))
    return samples
