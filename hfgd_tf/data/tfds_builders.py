"""TensorFlow Datasets builders for the datasets of `hfgd_tf.data.registry` (they need a manual download).

One `GeneratorBasedBuilder` per dataset reads the official layout from TFDS's `manual_dir` through the
dataset module's `list_samples` and remaps labels with the converter's table and checks (the label tables
and class names live only in `hfgd_tf/data/datasets/<name>.py`; nothing is copied here):

| builder (`tfds_name`)      | dataset module (layout)                 | classes |
| ---                        | ---                                     | ---     |
| `hfgd_camvid`              | `datasets/camvid.py`                    | 11      |
| `hfgd_cityscapes`          | `datasets/cityscapes.py` (label ids -> 19 train ids) | 19 |
| `hfgd_pascal_context`      | `datasets/pascal_context.py` (59, background ignored) | 59 |
| `hfgd_pascal_context60`    | `datasets/pascal_context.py` (60, background a class) | 60 |
| `hfgd_coco_stuff164k`      | `datasets/coco_stuff.py` (182 raw ids -> 171) | 171 |
| `hfgd_folder`              | `datasets/folder.py` (`classes.txt`, ids or RGB labels) | from `classes.txt` |

Features: `image` (uint8 `[H, W, 3]`, the released JPEG/PNG bytes stored as they are), `segmentation_mask`
(uint8 `[H, W, 1]` train ids, 255 = ignore, PNG), `file_name` (the sample's stem). `info.metadata` holds
`dataset`, `class_names`, `colormap`, `ignore_label`. Examples keep the layout's order (shuffling at write
time is disabled), so an evaluation pass reads them in the same order as the TFRecord shards.

Build with `scripts/build_tfds.py` (what `tfds build` does; the `tfds` CLI of tensorflow-datasets 4.9.10
fails to start without apache-beam), `build()` below, or `download_and_prepare` in Python:

    python scripts/build_tfds.py --dataset=camvid --manual_dir=../shared/data/camvid --tfds_data_dir=tfds_data

Importing this module registers the builders in TFDS's global registry (TFDS does that for every
`DatasetBuilder` subclass); the pipeline imports it only for `--data_source=tfds`.
"""

import numpy as np
import tensorflow_datasets as tfds

from hfgd_tf.data import converter, tfrecord
from hfgd_tf.data.datasets import folder
from hfgd_tf.data.registry import get_dataset_spec

BUILDER_VERSION = "1.0.0"
FEATURE_IMAGE, FEATURE_MASK, FEATURE_FILE_NAME = "image", "segmentation_mask", "file_name"


def _instructions(dataset):
    module_doc = {
        "camvid": "CamVid (SegNet 11-class): `images/{train,val,test}/*.png|jpg`, `labels/{split}/*.png`.",
        "cityscapes": "Cityscapes: `leftImg8bit/{split}/<city>/*_leftImg8bit.png`, "
        "`gtFine/{split}/<city>/*_gtFine_labelIds.png` (leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip, extracted).",
        "pascal_context": "Pascal Context: the VOC2010 folder with `JPEGImages/`, `SegmentationClassContext/` "
        "and `ImageSets/SegmentationContext/{train,val}.txt`.",
        "pascal_context_60": "Pascal Context (60 classes): the same VOC2010 folder as `hfgd_pascal_context`.",
        "coco_stuff_164k": "COCO-Stuff-164k: `images/{train2017,val2017}/*.jpg`, `annotations/{train2017,val2017}/*.png`.",
        "folder": "A folder: `images/<stem>.jpg`, `labels/<stem>.png`, `classes.txt`, optional `train.txt`/`val.txt`.",
    }[dataset]
    return f"{module_doc}\nPass that folder as --manual_dir (DownloadConfig(manual_dir=...)); nothing is downloaded."


class _SegmentationBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared body: `DATASET` names the registry entry whose layout, table and classes are used."""

    VERSION = tfds.core.Version(BUILDER_VERSION)
    RELEASE_NOTES = {BUILDER_VERSION: "Train ids from hfgd_tf's dataset tables."}
    DATASET = None

    def _dataset_info(self):
        return get_dataset_spec(self.DATASET).info

    def _metadata(self, info):
        return {
            "dataset": self.DATASET,
            "class_names": list(info.class_names),
            "colormap": [list(c) for c in info.colormap],
            "ignore_label": info.ignore_label,
        }

    def _info(self):
        info = self._dataset_info()
        return self.dataset_info_from_configs(
            description=f"{self.DATASET} for semantic segmentation, labels as train ids (hfgd_tf).",
            features=tfds.features.FeaturesDict(
                {
                    FEATURE_IMAGE: tfds.features.Image(shape=(None, None, 3)),
                    FEATURE_MASK: tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
                    FEATURE_FILE_NAME: tfds.features.Text(),
                }
            ),
            metadata=tfds.core.MetadataDict(self._metadata(info) if info is not None else {}),
            disable_shuffling=True,  # keep the layout's order (eval order equals the TFRecord shards')
        )

    def _label_fn(self, manual_dir):
        return get_dataset_spec(self.DATASET).label_table

    def _split_names(self, manual_dir):
        return get_dataset_spec(self.DATASET).splits

    def _split_generators(self, dl_manager):
        manual_dir = str(dl_manager.manual_dir)
        spec = get_dataset_spec(self.DATASET)
        info = self._dataset_info_for(manual_dir)
        label_fn = self._label_fn(manual_dir)
        if isinstance(label_fn, np.ndarray):
            label_fn = converter._table_fn(label_fn)
        generators = {}
        for split in self._split_names(manual_dir):
            try:
                samples = spec.list_samples(manual_dir, split)
            except ValueError:
                continue  # a split the manual download does not have (e.g. CamVid without test)
            if samples:
                generators[split] = self._generate_examples(samples, label_fn, info.num_classes)
        if not generators:
            raise ValueError(
                f"No split of {self.DATASET!r} found under manual_dir {manual_dir!r}.\n{_instructions(self.DATASET)}"
            )
        return generators

    def _dataset_info_for(self, manual_dir):
        return self._dataset_info()

    def _generate_examples(self, samples, label_fn, num_classes):
        # The converter's readers: the same checks and messages (file named) as scripts/convert_tfrecord.py.
        for index, sample in enumerate(samples):
            image_bytes, image_size = converter._read_image(sample.image_path)
            label, label_size = converter._read_label(sample.label_path, label_fn, num_classes)
            if image_size != label_size:
                raise converter.ConversionError(
                    f"Image {sample.image_path} is {image_size[0]}x{image_size[1]} but its label "
                    f"{sample.label_path} is {label_size[0]}x{label_size[1]} (width x height)"
                )
            yield (
                index,
                {
                    FEATURE_IMAGE: image_bytes,
                    FEATURE_MASK: tfrecord.encode_png(label.astype(np.uint8)),
                    FEATURE_FILE_NAME: sample.name,
                },
            )


def _builder(class_name, dataset):
    body = {
        "DATASET": dataset,
        "MANUAL_DOWNLOAD_INSTRUCTIONS": _instructions(dataset),
        "__module__": __name__,
        "__doc__": f"`{dataset}` from its official layout in manual_dir; see `hfgd_tf.data.tfds_builders`.",
    }
    return type(class_name, (_SegmentationBuilder,), body)


HfgdCamvid = _builder("HfgdCamvid", "camvid")
HfgdCityscapes = _builder("HfgdCityscapes", "cityscapes")
HfgdPascalContext = _builder("HfgdPascalContext", "pascal_context")
HfgdPascalContext60 = _builder("HfgdPascalContext60", "pascal_context_60")
HfgdCocoStuff164k = _builder("HfgdCocoStuff164k", "coco_stuff_164k")


class HfgdFolder(_SegmentationBuilder):
    """The generic folder (`hfgd_tf.data.datasets.folder`): classes from `classes.txt` in manual_dir,
    written into `info.metadata` when the dataset is built."""

    DATASET = "folder"
    MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions("folder")

    def _dataset_info(self):
        return None  # known only once manual_dir is (see _dataset_info_for)

    def _dataset_info_for(self, manual_dir):
        info = folder.info_from_classes(manual_dir)
        self.info.metadata.update(self._metadata(info))
        return info

    def _label_fn(self, manual_dir):
        return folder.label_converter(manual_dir)

    def _split_names(self, manual_dir):
        return ("train", "val")


# dataset registry name -> builder; `tfds_name_for` gives the default --tfds_name of a dataset.
BUILDERS = {
    builder.DATASET: builder
    for builder in (HfgdCamvid, HfgdCityscapes, HfgdPascalContext, HfgdPascalContext60, HfgdCocoStuff164k, HfgdFolder)
}


def tfds_name_for(dataset):
    """The builder name of one of our datasets (`camvid` -> `hfgd_camvid`)."""
    if dataset not in BUILDERS:
        raise ValueError(f"No TFDS builder for dataset {dataset!r}. Builders exist for: {sorted(BUILDERS)}")
    return BUILDERS[dataset].name


def build(dataset, manual_dir, data_dir):
    """`tfds build` in Python: prepares `dataset`'s builder from `manual_dir` into `data_dir`.

    Returns:
        The prepared `tfds.core.DatasetBuilder`.
    """
    builder = BUILDERS[dataset](data_dir=data_dir) if dataset in BUILDERS else None
    if builder is None:
        raise ValueError(f"No TFDS builder for dataset {dataset!r}. Builders exist for: {sorted(BUILDERS)}")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return builder
