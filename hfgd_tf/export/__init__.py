"""Export and prediction helpers: SavedModel serving module, colourised outputs."""

from hfgd_tf.export.saved_model import (
    SegmentationServingModule,
    export_saved_model,
    read_export_inference,
    read_export_labels,
    read_export_source,
)
from hfgd_tf.export.visualize import colorize, overlay, save_prediction_pngs

__all__ = [
    "SegmentationServingModule",
    "colorize",
    "export_saved_model",
    "overlay",
    "read_export_inference",
    "read_export_labels",
    "read_export_source",
    "save_prediction_pngs",
]
