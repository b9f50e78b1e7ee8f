"""Export and deployment: SavedModel, LiteRT, ONNX and OpenVINO artifacts, their runtimes, colourised outputs."""

from hfgd_tf.export.formats import FORMATS, ExportConfig, check_export_dir, check_protocol, export_model
from hfgd_tf.export.runtimes import ExportedModel, load_exported
from hfgd_tf.export.saved_model import (
    export_saved_model,
    read_export_format,
    read_export_inference,
    read_export_labels,
    read_export_source,
)
from hfgd_tf.export.serving_model import SegmentationServingModel
from hfgd_tf.export.visualize import colorize, overlay, save_prediction_pngs

__all__ = [
    "FORMATS",
    "ExportConfig",
    "ExportedModel",
    "SegmentationServingModel",
    "check_export_dir",
    "check_protocol",
    "colorize",
    "export_model",
    "export_saved_model",
    "load_exported",
    "overlay",
    "read_export_format",
    "read_export_inference",
    "read_export_labels",
    "read_export_source",
    "save_prediction_pngs",
]
