"""DatasetInfo: the one declaration of a dataset's classes, ignore label, colours and default crops.

Converters, pipelines, training and evaluation all read it, so the loss, the metric and the pad fill use
the same `ignore_label` (USER_NEEDS 1-2). Records written here store *train ids*: the raw-label remap is
applied once, at conversion time; records from the authors' converters hold raw labels and go through the
same table in the input pipeline (`DataConfig.label_format="raw"`).
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


def generic_palette(num_classes):
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
