"""COCO-Stuff-164k: `images/{train2017,val2017}/<stem>.jpg` and the stuffthingmaps PNGs
`annotations/{train2017,val2017}/<stem>.png` (raw values 0..181 = COCO category id - 1, 255 unlabeled),
remapped to the standard 171 contiguous train ids (the 11 category ids COCO never uses are dropped).
`data_dir` is the folder holding `images/` and `annotations/`; split names are `train` and `val`.
"""

import os

import tensorflow as tf

from hfgd_tf.data.dataset_info import DatasetInfo, generic_palette
from hfgd_tf.data.datasets.common import Sample, label_table, require_dir

THING_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)
STUFF_NAMES = (
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard",
    "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard",
    "curtain", "desk-stuff", "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone",
    "floor-tile", "floor-wood", "flower", "fog", "food-other", "fruit", "furniture-other", "grass",
    "gravel", "ground-other", "hill", "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss",
    "mountain", "mud", "napkin", "net", "paper", "pavement", "pillow", "plant-other", "plastic",
    "platform", "playingfield", "railing", "railroad", "river", "road", "rock", "roof", "rug", "salad",
    "sand", "sea", "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs", "stone", "straw",
    "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable", "wall-brick",
    "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other",
    "waterdrops", "window-blind", "window-other", "wood",
)
# Raw (category id - 1) values of the 11 COCO thing ids that have no category: 12, 26, 29, 30, 45, 66,
# 68, 69, 71, 83 and 91.
UNUSED_RAW_VALUES = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)
USED_RAW_VALUES = tuple(v for v in range(182) if v not in UNUSED_RAW_VALUES)

INFO = DatasetInfo(
    name="coco_stuff_164k",
    class_names=THING_NAMES + STUFF_NAMES,
    colormap=generic_palette(171),
    crop_size=(513, 513),
    eval_crop_size=(640, 640),
)
SPLITS = ("train", "val")
LABEL_TABLE = label_table({raw: index for index, raw in enumerate(USED_RAW_VALUES)}, ignore_values=(255,))


def list_samples(data_dir, split):
    folder = f"{split}2017"
    image_dir = require_dir(os.path.join(data_dir, "images", folder), f"COCO-Stuff {folder} images")
    label_dir = os.path.join(data_dir, "annotations", folder)
    samples = []
    for name in sorted(tf.io.gfile.listdir(image_dir)):
        stem, extension = os.path.splitext(name)
        if extension.lower() == ".jpg":
            samples.append(Sample(stem, os.path.join(image_dir, name), os.path.join(label_dir, stem + ".png")))
    return samples
