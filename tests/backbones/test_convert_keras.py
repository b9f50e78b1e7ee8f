"""Keras sources (keras.applications ResNet50 / ConvNeXtTiny, keras-cv ResNetBackbone) built with random
weights (nothing downloads), saved, converted, and compared stage by stage with the source model."""

import json
import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest

from hfgd_tf.backbones import ConvNeXtBackbone, ResNetBackbone, build_backbone
from hfgd_tf.backbones.convert import convert_checkpoint, target_overrides
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _randomise(model, seed=0):
    """Random values in every variable (BN statistics and conv biases too), so misplaced ones show."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape, name = tuple(variable.shape), variable.path
        if name.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("gamma", "variable")) and len(shape) == 1:  # BN/LN scale, ConvNeXt layer scale
            value = rng.uniform(0.5, 1.0, shape)
        elif len(shape) == 1:
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        variable.assign(value.astype("float32"))


def _compare(ours, theirs):
    for key in theirs:
        reference = np.asarray(theirs[key])
        got = np.asarray(ours[key])
        assert got.shape == reference.shape, key
        np.testing.assert_allclose(got, reference, rtol=0, atol=1e-4 * np.abs(reference).max(), err_msg=key)


def _stage_model(model, names):
    return keras.Model(model.input, {key: model.get_layer(name).output for key, name in names.items()})


@pytest.fixture(scope="module")
def keras_resnet50(tmp_path_factory):
    model = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(None, None, 3))
    _randomise(model)
    path = str(tmp_path_factory.mktemp("kapps") / "resnet50_notop.weights.h5")
    model.save_weights(path)
    return model, path


_RESNET50_STAGES = {
    "S1": "conv1_relu", "C2": "conv2_block3_out", "C3": "conv3_block4_out", "C4": "conv4_block6_out",
    "C5": "conv5_block3_out",
}


@pytest.mark.parametrize("file_format", ["keras3", "legacy_h5"])
def test_keras_applications_resnet50(keras_resnet50, tmp_path, file_format):
    model, path = keras_resnet50
    if file_format == "legacy_h5":  # the layout of keras.applications' downloadable ImageNet files
        from keras.src.legacy.saving import legacy_h5_format

        path = str(tmp_path / "resnet50_notop.h5")
        with h5py.File(path, "w") as handle:
            legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    overrides = target_overrides("keras_applications", "resnet50")
    backbone = build_backbone("resnet50", norm={"method": "batch_norm", **overrides.pop("norm")}, **overrides)
    report = convert_checkpoint(path, "keras_applications", backbone)
    images = np.random.default_rng(1).normal(size=(1, 65, 97, 3)).astype("float32")
    _compare(backbone(images, training=False), _stage_model(model, _RESNET50_STAGES)(images))
    # 53 convs with bias + 53 BN x 4, each bias used twice (kernel side: its own; folded into the mean).
    assert report.as_dict() == {"used": 53 * 2 + 53 * 4, "ignored": 0, "fresh": 0, "state": 0}


def test_keras_cv_resnet_backbone(tmp_path):
    import keras_cv

    source = keras_cv.models.ResNetBackbone(
        stackwise_filters=[8, 16, 32, 64],
        stackwise_blocks=[1, 1, 1, 1],
        stackwise_strides=[1, 2, 2, 2],
        include_rescaling=False,
        block_type="block",
    )
    _randomise(source)
    path = str(tmp_path / "keras_cv_resnet.weights.h5")
    source.save_weights(path)
    overrides = target_overrides("keras_cv", "resnet50")
    backbone = ResNetBackbone(
        (1, 1, 1, 1), (8, 16, 32, 64), norm={"method": "batch_norm", **overrides.pop("norm")}, name="net", **overrides
    )
    report = convert_checkpoint(path, "keras_cv", backbone)
    stages = {"S1": "conv1_relu", **{f"C{i + 2}": f"v2_stack_{i}_block1_out" for i in range(4)}}
    images = np.random.default_rng(2).normal(size=(2, 64, 96, 3)).astype("float32")
    _compare(backbone(images, training=False), _stage_model(source, stages)(images))
    assert report.as_dict() == {"used": 17 + 17 * 4, "ignored": 0, "fresh": 0, "state": 0}


def test_keras_applications_convnext_tiny(tmp_path):
    source = keras.applications.ConvNeXtTiny(weights=None, include_top=False, input_shape=(None, None, 3))
    _randomise(source)
    path = str(tmp_path / "convnext_tiny_notop.weights.h5")
    source.save_weights(path)
    backbone = ConvNeXtBackbone("tiny", name="convnext_tiny")
    report = convert_checkpoint(path, "keras_applications", backbone)
    prefix = source.name
    stages = {f"C{i + 2}": source.get_layer(f"{prefix}_downsampling_block_{i}").input for i in range(3)}
    stages["C5"] = source.layers[-1].input  # before the pooled-feature LayerNorm of include_top=False
    images = np.random.default_rng(3).uniform(0, 255, size=(1, 64, 64, 3)).astype("float32")
    theirs = keras.Model(source.input, stages)(images)  # include_preprocessing: ImageNet mean/std inside
    mean = np.array([0.485, 0.456, 0.406]) * 255
    std = np.array([0.229, 0.224, 0.225]) * 255
    normalised = ((images - mean) / std).astype("float32")
    raw = keras.Model(backbone.input, {k: backbone.get_layer(f"convnext_tiny_{k.lower()}_norm").input for k in stages})
    _compare(raw(normalised), theirs)
    # 18 blocks x 9 + stem 4 + 3 downsampling x 4 used; the final LayerNorm ignored; the 4 output norms fresh.
    assert report.as_dict() == {"used": 18 * 9 + 4 + 12, "ignored": 2, "fresh": 8, "state": 18}


def test_convert_weights_script(keras_resnet50, tmp_path):
    _, path = keras_resnet50
    output = str(tmp_path / "out" / "resnet50.weights.h5")
    report_path = str(tmp_path / "report.json")
    result = subprocess.run(
        [sys.executable, os.path.join("scripts", "convert_weights.py"), f"--source={path}", "--format=keras_applications",
         "--backbone=resnet50", f"--output={output}", f"--report_json={report_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "used 318 source tensors; ignored 0; initialised fresh 0 target weights" in result.stdout
    assert "--backbone_stride_in_1x1 --backbone_bn_epsilon=1.001e-05 --backbone_stem_type=standard" in result.stdout
    assert json.load(open(report_path))["used"] == 318
    with h5py.File(output) as handle:
        assert "resnet50_stem_conv1/conv/kernel" in handle
    bad = subprocess.run(
        [sys.executable, os.path.join("scripts", "convert_weights.py"), f"--source={path}", "--format=timm",
         "--backbone=resnet50", f"--output={output}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert bad.returncode == 2 and "must be a .safetensors or .npz" in bad.stderr
