"""Dataset registry: name -> the dataset's module (`INFO`, `SPLITS`, `list_samples`, label table).

A static table: adding a dataset means adding its module under `hfgd_tf/data/datasets/` and one entry
here (nothing registers itself on import).
"""

import types

from hfgd_tf.data.dataset_info import IGNORE_LABEL, DatasetInfo, generic_palette
from hfgd_tf.data.datasets import camvid, cityscapes, coco_stuff, folder, pascal_context, synthetic_streets

__all__ = ["IGNORE_LABEL", "DatasetInfo", "dataset_names", "generic_palette", "get_dataset_info", "get_dataset_spec"]


def _spec(info, module, label_table=None, splits=None):
    return types.SimpleNamespace(
        info=info,
        list_samples=getattr(module, "list_samples", None),
        label_table=label_table if label_table is not None else getattr(module, "LABEL_TABLE", None),
        splits=splits or getattr(module, "SPLITS", ("train", "val")),
    )


_DATASETS = {
    "synthetic_streets": _spec(synthetic_streets.INFO, synthetic_streets),
    "camvid": _spec(camvid.INFO, camvid),
    "cityscapes": _spec(cityscapes.INFO, cityscapes),
    "pascal_context": _spec(pascal_context.INFO, pascal_context),
    "pascal_context_60": _spec(pascal_context.INFO_60, pascal_context, label_table=pascal_context.LABEL_TABLE_60),
    "coco_stuff_164k": _spec(coco_stuff.INFO, coco_stuff),
    "folder": _spec(None, folder),
}


def dataset_names():
    return tuple(sorted(_DATASETS))


def get_dataset_spec(name):
    """The registry entry: `info`, `list_samples(data_dir, split)`, `label_table`, `splits`."""
    if name not in _DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Known datasets: {sorted(_DATASETS)}")
    return _DATASETS[name]


def get_dataset_info(name, data_dir=None):
    """Returns the `DatasetInfo` of `name`; a folder dataset reads its classes from `data_dir`'s manifest."""
    spec = get_dataset_spec(name)
    if name == "folder":
        if not data_dir:
            raise ValueError("dataset='folder' needs data_dir (converted records with a manifest.json)")
        return folder.info_from_manifest(data_dir)
    return spec.info
