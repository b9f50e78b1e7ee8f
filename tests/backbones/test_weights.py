"""Weights files by variable path through `tf.io.gfile`: `--backbone_weights_path`, `--init_weights_path`
and the converter take any path a run takes (here TF's in-memory `ram://`, standing in for gs://), Keras'
own format included (it needs a local file: a temporary copy), and a damaged file is named."""

import os
import shutil
import uuid

import h5py
import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.backbones import ResNetBackbone
from hfgd_tf.backbones.convert import convert_checkpoint, write_converted
from hfgd_tf.backbones.loading import load_backbone_weights
from hfgd_tf.backbones.weights import UnreadableWeightsError, load_weights_by_name, save_weights_by_name
from tests.conftest import ROOT

FIXTURES = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "timm")
_ARGUMENTS = dict(
    stagewise_num_blocks=(1, 1, 1, 1),
    stagewise_num_filters=(8, 16, 32, 64),
    stem_type="standard",
    norm={"method": "batch_norm", "epsilon": 1e-5},
)


def _ram(name):
    return f"ram://{uuid.uuid4().hex}/{name}"


def _copy_to(path, target):
    with open(path, "rb") as source, tf.io.gfile.GFile(target, "wb") as handle:
        handle.write(source.read())
    return target


def test_the_converter_reads_and_writes_through_gfile_and_the_backbone_loads_from_there():
    source = os.path.join(FIXTURES, "resnet_bottleneck.safetensors")
    if not os.path.isfile(source):
        pytest.skip(f"timm fixtures not found at {FIXTURES}")
    remote_source = _copy_to(source, _ram("resnet_bottleneck.safetensors"))
    backbone = ResNetBackbone(**_ARGUMENTS, name="net")
    convert_checkpoint(remote_source, "timm", backbone)
    output = write_converted(backbone, _ram("converted/net.weights.h5"), "resnet_bottleneck.safetensors")
    assert tf.io.gfile.exists(output) and not tf.io.gfile.exists(output + ".incomplete")
    loaded = ResNetBackbone(**_ARGUMENTS, name="net")
    load_backbone_weights(loaded, output)  # also reads the recorded layout through gfile
    for a, b in zip(backbone.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    with pytest.raises(ValueError, match=r"Backbone weights file not found: 'ram://.*/missing\.weights\.h5'"):
        load_backbone_weights(loaded, _ram("missing.weights.h5"))


def test_legacy_keras_h5_weights_load_from_a_remote_path_through_a_local_copy(tmp_path):
    """The format keras.applications ships (`.h5`): Keras opens it with h5py by name, local files only."""
    from keras.src.legacy.saving import legacy_h5_format

    model = ResNetBackbone(**_ARGUMENTS, name="net")
    local = str(tmp_path / "legacy.h5")
    with h5py.File(local, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    remote = _copy_to(local, _ram("legacy.h5"))
    other = ResNetBackbone(**_ARGUMENTS, name="net")
    with pytest.raises(FileNotFoundError):
        other.load_weights(remote)  # why the local copy exists
    load_weights_by_name(other, remote)
    for a, b in zip(model.weights, other.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_a_truncated_weights_file_is_named(tmp_path):
    model = ResNetBackbone(**_ARGUMENTS, name="net")
    path = str(tmp_path / "net.weights.h5")
    save_weights_by_name(model, path)
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)
    with pytest.raises(
        UnreadableWeightsError, match=r"^'.*net\.weights\.h5' cannot be read \(\d+ bytes; not an HDF5 file, cut short"
    ):
        load_weights_by_name(model, path)
    # Given as --backbone_weights_path: named with its flag, not an h5py traceback.
    with pytest.raises(ValueError, match=r"--backbone_weights_path='.*net\.weights\.h5' cannot be read"):
        load_backbone_weights(model, path)
    shutil.rmtree(tmp_path)
