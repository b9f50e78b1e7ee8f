"""Pascal Context on VOC2010: `JPEGImages/<stem>.jpg`, `SegmentationClassContext/<stem>.png` (the 60-label
PNGs made from the Detail API's `trainval_merged.json`: 0 = background, 1..59 = classes) and the split
lists `ImageSets/SegmentationContext/{train,val}.txt`. `data_dir` is the `VOC2010` folder.

Two variants, as in the literature and the authors' code:
- `pascal_context` (59 classes): background is ignored and the classes shift by -1 (raw 1 -> 0).
- `pascal_context_60` (60 classes): background is class 0; only 255 is ignored.
"""

import os

from hfgd_tf.data.dataset_info import DatasetInfo, generic_palette
from hfgd_tf.data.datasets.common import Sample, label_table, read_split_file, require_dir

CLASS_NAMES_59 = (
    "aeroplane",
    "bag",
    "bed",
    "bedclothes",
    "bench",
    "bicycle",
    "bird",
    "boat",
    "book",
    "bottle",
    "building",
    "bus",
    "cabinet",
    "car",
    "cat",
    "ceiling",
    "chair",
    "cloth",
    "computer",
    "cow",
    "cup",
    "curtain",
    "dog",
    "door",
    "fence",
    "floor",
    "flower",
    "food",
    "grass",
    "ground",
    "horse",
    "keyboard",
    "light",
    "motorbike",
    "mountain",
    "mouse",
    "person",
    "plate",
    "platform",
    "pottedplant",
    "road",
    "rock",
    "sheep",
    "shelves",
    "sidewalk",
    "sign",
    "sky",
    "snow",
    "sofa",
    "table",
    "track",
    "train",
    "tree",
    "truck",
    "tvmonitor",
    "wall",
    "water",
    "window",
    "wood",
)
INFO = DatasetInfo(
    name="pascal_context",
    class_names=CLASS_NAMES_59,
    colormap=generic_palette(59),
    crop_size=(513, 513),
    eval_crop_size=(513, 513),
)
INFO_60 = DatasetInfo(
    name="pascal_context_60",
    class_names=("background",) + CLASS_NAMES_59,
    colormap=generic_palette(60),
    crop_size=(513, 513),
    eval_crop_size=(513, 513),
)
SPLITS = ("train", "val")
LABEL_TABLE = label_table({raw: raw - 1 for raw in range(1, 60)}, ignore_values=(0, 255))
LABEL_TABLE_60 = label_table({raw: raw for raw in range(60)}, ignore_values=(255,))


def list_samples(data_dir, split):
    image_dir = require_dir(os.path.join(data_dir, "JPEGImages"), "Pascal Context (VOC2010) JPEGImages")
    label_dir = os.path.join(data_dir, "SegmentationClassContext")
    stems = read_split_file(os.path.join(data_dir, "ImageSets", "SegmentationContext", f"{split}.txt"))
    return [Sample(s, os.path.join(image_dir, s + ".jpg"), os.path.join(label_dir, s + ".png")) for s in stems]
