"""`load_backbone_weights`: the one place a backbone's pretrained weights file is loaded, for our own
backbones and for keras-cv / keras-hub ones alike (`factory` and `external` both call it)."""

import warnings

import h5py

from hfgd_tf.backbones.convert import unconverted_file_message
from hfgd_tf.backbones.convert.common import check_layout, describe_tensors
from hfgd_tf.backbones.convnext import ConvNeXtBackbone
from hfgd_tf.backbones.resnet import ResNetBackbone
from hfgd_tf.backbones.swin import SwinBackbone
from hfgd_tf.backbones.weights import FORMAT, FORMAT_ATTRIBUTE, load_weights_by_name
from hfgd_tf.files import is_file, local_copy


def load_backbone_weights(backbone, weights_path):
    """Loads a `.weights.h5` (any `tf.io.gfile` path: local, gs://, ...) into `backbone` by variable path (see `hfgd_tf.backbones.weights`).

    Raises:
        ValueError: the file is missing, not a `.weights.h5`, or does not match; the message lists the
            missing, unexpected and wrongly shaped weights, or (files from `scripts/convert_weights.py`)
            the layout settings (padding, BN epsilon, stem...) that differ from the ones converted for.
    """
    if not is_file(weights_path):
        raise ValueError(f"Backbone weights file not found: {weights_path!r} (expected a Keras .weights.h5 file)")
    ours = isinstance(backbone, (ResNetBackbone, ConvNeXtBackbone, SwinBackbone))
    if not weights_path.endswith(".weights.h5"):
        if ours:
            raise ValueError(
                f"Backbone weights must be a '.weights.h5' file: {unconverted_file_message(weights_path, backbone.name)}"
            )
        raise ValueError(f"Backbone weights must be a Keras '.weights.h5' file. Received: {weights_path!r}")
    if _check_keras_format_file(backbone, weights_path, ours):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Keras warns per object it skips; the error says it all
                return load_weights_by_name(backbone, weights_path)
        except ValueError as error:
            if ours:  # as many arrays as weights, by chance: still not a file of this backbone
                raise ValueError(unconverted_file_message(weights_path, backbone.name)) from error
            raise
    check_layout(backbone, weights_path)
    return load_weights_by_name(backbone, weights_path)


def _check_keras_format_file(backbone, weights_path, ours):
    """Whether `weights_path` is a Keras-format file (not by variable path); refuses one that cannot be the
    same model saved by Keras.

    Such a file loads positionally, so it must hold exactly one array per backbone weight; anything else is a
    checkpoint of another model (typically a pretrained source file given without converting it), and Keras'
    own error would be a long list of objects that could not be loaded.
    """
    with local_copy(weights_path) as local:  # h5py reads a local file only
        try:
            with h5py.File(local, "r") as handle:
                if handle.attrs.get(FORMAT_ATTRIBUTE) == FORMAT:
                    return False
        except OSError as error:  # h5py's error for a file that is not HDF5, cut short, or damaged
            raise ValueError(
                f"--backbone_weights_path={weights_path!r} cannot be read (not an HDF5 file, cut short or damaged: "
                f"{str(error).splitlines()[0]}); copy it again, or convert the checkpoint again"
            ) from None
        count = len(describe_tensors(local))
    if count == len(backbone.weights):
        return True
    if ours:
        raise ValueError(unconverted_file_message(weights_path, backbone.name))
    raise ValueError(
        f"{weights_path!r} is a Keras-format weights file of another model: it holds {count} arrays, "
        f"{backbone.name!r} has {len(backbone.weights)} weights (Keras-format files load by position)"
    )
