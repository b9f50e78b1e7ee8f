"""Dataset registry: the one declaration of a dataset's classes, ignore label, colours and defaults.

Converters, pipelines, training and evaluation all read these entries, so the loss, the metric and the
pad fill use the same `ignore_label` (USER_NEEDS 1-2). Records store *train ids*: every raw-label
remap is applied once, at conversion time.
"""

import dataclasses

IGNORE_LABEL = 255


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset.

    Attributes:
        name: str. Registry key.
        class_names: tuple of str. Index = train id.
        colormap: tuple of (r, g, b). Colour per train id for visualisation.
        ignore_label: int. Label value excluded from loss and metric; also the label pad value.
        crop_size: (height, width). Default training crop.
        eval_crop_size: (height, width). Images are padded bottom/right to this for batched evaluation.
    """

    name: str
    class_names: tuple
    colormap: tuple
    ignore_label: int = IGNORE_LABEL
    crop_size: tuple = (513, 513)
    eval_crop_size: tuple = (513, 513)

    def __post_init__(self):
        if len(self.class_names) != len(self.colormap):
            raise ValueError(
                f"Dataset {self.name!r}: {len(self.class_names)} class names but {len(self.colormap)} colours"
            )
        if 0 <= self.ignore_label < len(self.class_names):
            raise ValueError(f"Dataset {self.name!r}: ignore_label {self.ignore_label} collides with a class id")

    @property
    def num_classes(self):
        return len(self.class_names)


def _palette(num_classes):
    """Distinct colours for datasets without an official palette (the PASCAL VOC bit-interleaving)."""
    colours = []
    for index in range(num_classes):
        r = g = b = 0
        value = index + 1
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colours.append((r, g, b))
    return tuple(colours)


SYNTHETIC_STREETS = DatasetInfo(
    name="synthetic_streets",
    class_names=("sky", "building", "road", "sidewalk", "vegetation", "car", "person", "pole"),
    colormap=(
        (70, 130, 180),
        (70, 70, 70),
        (128, 64, 128),
        (244, 35, 232),
        (107, 142, 35),
        (0, 0, 142),
        (220, 20, 60),
        (153, 153, 153),
    ),
    crop_size=(128, 128),
    eval_crop_size=(128, 160),
)

CAMVID = DatasetInfo(
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

CITYSCAPES = DatasetInfo(
    name="cityscapes",
    class_names=(
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
        "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
        "motorcycle", "bicycle",
    ),
    colormap=(
        (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
        (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
        (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
    ),
    crop_size=(769, 769),
    eval_crop_size=(1024, 2048),
)

# A static table: adding a dataset means adding its DatasetInfo here (no registration on import).
_REGISTRY = {info.name: info for info in (SYNTHETIC_STREETS, CAMVID, CITYSCAPES)}


def get_dataset_info(name):
    """Returns the `DatasetInfo` registered as `name`; the error lists the known names."""
    if name not in _REGISTRY:
        raise ValueError(f"Unknown dataset {name!r}. Known datasets: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def dataset_names():
    return tuple(sorted(_REGISTRY))


def generic_palette(num_classes):
    """A palette for a folder dataset with `num_classes` classes."""
    return _palette(num_classes)
