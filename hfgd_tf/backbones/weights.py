"""Weights files keyed by variable path (`<layer name>/.../<variable>`), loaded by name.

Keras 3's own `.weights.h5` keys layers by class name and position (`layers/conv_norm_act_14/...`),
so a file only loads into a model built in exactly the same order, and a mismatch says little. These
helpers write the same `.weights.h5` container but key every array by its variable path, which our
layers keep stable through explicit names; loading matches by path and lists what is missing,
unexpected or of the wrong shape. A Keras-format file (no `hfgd_tf_format` attribute) still loads
through `model.load_weights`.
"""

import io

import h5py
import numpy as np
import tensorflow as tf
from absl import logging

from hfgd_tf.files import local_copy

FORMAT_ATTRIBUTE = "hfgd_tf_format"
FORMAT = "by_variable_path_v1"


class UnreadableWeightsError(ValueError):
    """A weights file that is not a readable HDF5 file (cut short, damaged, or another format)."""


def save_weights_by_name(model, path):
    """Writes every variable of `model` to `path` (`.weights.h5`) keyed by its path.

    The HDF5 file is built in memory and written with `tf.io.gfile`, so `path` may be gs://... too.
    """
    if not path.endswith(".weights.h5"):
        raise ValueError(f"Weights files must end in '.weights.h5'. Received: {path!r}")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle.attrs[FORMAT_ATTRIBUTE] = FORMAT
        for variable in model.weights:
            handle.create_dataset(variable.path, data=np.asarray(variable.numpy()))
    with tf.io.gfile.GFile(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return path


def _listing(keys, limit=8):
    shown = ", ".join(keys[:limit])
    return f"{len(keys)}" + (f" ({shown}{', ...' if len(keys) > limit else ''})" if keys else "")


def load_weights_by_name(model, path, skip_mismatch=False):
    """Loads `path` into `model` by variable path.

    Args:
        model: a Keras model or layer.
        path: str. A `.weights.h5` written by `save_weights_by_name` (or by Keras, loaded positionally).
        skip_mismatch: bool. False raises on any missing, unexpected or mis-shaped weight; True loads what
            matches, keeps the model's initial values for the rest and logs a warning listing them (for
            fine-tuning with another number of classes).

    Returns:
        dict with the lists `loaded`, `missing`, `unexpected`, `mismatched`.
    """
    with tf.io.gfile.GFile(path, "rb") as source:
        buffer = io.BytesIO(source.read())  # read through tf.io.gfile: gs:// paths work too
    try:
        with h5py.File(buffer, "r") as handle:
            if handle.attrs.get(FORMAT_ATTRIBUTE) != FORMAT:
                keras_format = True
            else:
                keras_format = False
                arrays = {}
                handle.visititems(
                    lambda key, item: arrays.__setitem__(key, item[()]) if isinstance(item, h5py.Dataset) else None
                )
    except OSError as error:  # h5py's error for a file that is not HDF5, cut short, or damaged
        raise UnreadableWeightsError(
            f"{path!r} cannot be read ({len(buffer.getvalue())} bytes; not an HDF5 file, cut short or damaged: "
            f"{str(error).splitlines()[0]})"
        ) from None
    if keras_format:
        try:
            with local_copy(path) as local:  # Keras reads a local file only
                model.load_weights(local)
        except ValueError as error:
            raise ValueError(f"Keras-format weights in {path!r} do not fit {model.name!r}: {error}") from error
        return {"loaded": [v.path for v in model.weights], "missing": [], "unexpected": [], "mismatched": []}
    variables = {v.path: v for v in model.weights}
    missing = sorted(set(variables) - set(arrays))
    unexpected = sorted(set(arrays) - set(variables))
    mismatched = sorted(
        f"{k} {tuple(arrays[k].shape)} != {tuple(variables[k].shape)}"
        for k in set(variables) & set(arrays)
        if tuple(arrays[k].shape) != tuple(variables[k].shape)
    )
    if (missing or unexpected or mismatched) and not skip_mismatch:
        raise ValueError(
            f"Weights in {path!r} do not match {model.name!r}: missing {_listing(missing)}; "
            f"unexpected {_listing(unexpected)}; wrong shape {_listing(mismatched)}"
        )
    loaded = []
    for key, variable in variables.items():
        if key in arrays and tuple(arrays[key].shape) == tuple(variable.shape):
            variable.assign(arrays[key])
            loaded.append(key)
    if missing or unexpected or mismatched:
        logging.warning(
            "Loaded %d weights from %s; kept initial values for missing %s and wrong-shape %s; ignored unexpected %s",
            len(loaded),
            path,
            _listing(missing),
            _listing(mismatched),
            _listing(unexpected),
        )
    return {"loaded": loaded, "missing": missing, "unexpected": unexpected, "mismatched": mismatched}
