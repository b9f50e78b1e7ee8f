"""Datasets: registry, TFRecord format, converters and tf.data pipelines. Imports no model code."""

from hfgd_tf.data.config import DataConfig
from hfgd_tf.data.pipeline import build_eval_dataset, build_train_dataset
from hfgd_tf.data.registry import IGNORE_LABEL, DatasetInfo, get_dataset_info

__all__ = ["DataConfig", "DatasetInfo", "IGNORE_LABEL", "build_eval_dataset", "build_train_dataset", "get_dataset_info"]
