"""Colour label maps and overlays for looking at predictions."""

import numpy as np
import tensorflow as tf
from PIL import Image

IGNORE_COLOUR = (0, 0, 0)


def colorize(label, colormap):
    """uint8 `[H, W, 3]` colour image of a label map `[H, W]`; ids outside the map are black."""
    label = np.asarray(label)
    table = np.zeros((256, 3), np.uint8)
    table[: len(colormap)] = np.asarray(colormap, np.uint8)
    return table[np.clip(label, 0, 255).astype(np.uint8)]


def overlay(image, label, colormap, alpha=0.5):
    """Blends the colourised label over the image: uint8 `[H, W, 3]`."""
    colours = colorize(label, colormap).astype(np.float32)
    return np.clip((1 - alpha) * np.asarray(image, np.float32) + alpha * colours, 0, 255).astype(np.uint8)


def save_prediction_pngs(path_stem, image, class_ids, colormap):
    """Writes `<stem>_label.png` (class ids), `<stem>_color.png` and `<stem>_overlay.png`; returns the paths."""
    paths = {
        "label": f"{path_stem}_label.png",
        "color": f"{path_stem}_color.png",
        "overlay": f"{path_stem}_overlay.png",
    }
    arrays = {
        "label": np.asarray(class_ids, np.uint8),
        "color": colorize(class_ids, colormap),
        "overlay": overlay(image, class_ids, colormap),
    }
    for name, array in arrays.items():
        # Through tf.io.gfile, so that the stem may be a gs://... path.
        with tf.io.gfile.GFile(paths[name], "wb") as handle:
            Image.fromarray(array).save(handle, format="PNG")
    return paths
