"""Keras sources (keras.applications ResNet50 / ConvNeXtTiny, keras-cv ResNetBackbone) built with random
weights (nothing downloads), saved, converted, and compared stage by stage with the source model.

Each comparison feeds one uint8 image to the source through ITS documented preprocessing and to our backbone
through the `--input_normalization` the converter prints for that format, so a wrong normalisation fails."""

import json
import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest

from hfgd_tf.backbones import ConvNeXtBackbone, ResNetBackbone, build_backbone
from hfgd_tf.backbones.convert import convert_checkpoint, source_input_normalization, target_overrides
from hfgd_tf.layers.input_normalization import input_normalization_layer
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


def _uint8_image(seed, height=64, width=64):
    return np.random.default_rng(seed).integers(0, 256, size=(1, height, width, 3), dtype=np.uint8)


def _normalised_as_printed(source_format, backbone_name, image):
    """The image through the normalisation the converter prints for this format (the segmenter's first layer)."""
    method, _ = source_input_normalization(source_format, backbone_name)
    return input_normalization_layer(method)(image.astype("float32"))


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
    "S1": "conv1_relu",
    "C2": "conv2_block3_out",
    "C3": "conv3_block4_out",
    "C4": "conv4_block6_out",
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
    image = _uint8_image(1)
    # keras.applications' documented preprocessing for ResNet50 ("caffe": BGR, mean subtracted, no std).
    theirs = _stage_model(model, _RESNET50_STAGES)(
        keras.applications.resnet50.preprocess_input(image.astype("float32"))
    )
    assert source_input_normalization("keras_applications", "resnet50")[0] == "caffe"
    _compare(backbone(_normalised_as_printed("keras_applications", "resnet50", image), training=False), theirs)
    # 53 convs with bias + 53 BN x 4, each bias used twice (kernel side: its own; folded into the mean).
    assert report.as_dict() == {"used": 53 * 2 + 53 * 4, "ignored": 0, "fresh": 0, "state": 0}


def test_keras_cv_resnet_backbone(tmp_path):
    import keras_cv

    source = keras_cv.models.ResNetBackbone(
        stackwise_filters=[8, 16, 32, 64],
        stackwise_blocks=[1, 1, 1, 1],
        stackwise_strides=[1, 2, 2, 2],
        include_rescaling=True,  # as keras-cv's pretrained presets: images in [0, 255], divided by 255 inside
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
    image = _uint8_image(2, 64, 96)
    assert source_input_normalization("keras_cv", "resnet50")[0] == "zero_one"
    theirs = _stage_model(source, stages)(image.astype("float32"))
    _compare(backbone(_normalised_as_printed("keras_cv", "resnet50", image), training=False), theirs)
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
    image = _uint8_image(3)
    theirs = keras.Model(source.input, stages)(image.astype("float32"))  # include_preprocessing: mean/std inside
    assert source_input_normalization("keras_applications", "convnext_tiny")[0] == "imagenet"
    raw = keras.Model(backbone.input, {k: backbone.get_layer(f"convnext_tiny_{k.lower()}_norm").input for k in stages})
    _compare(raw(_normalised_as_printed("keras_applications", "convnext_tiny", image)), theirs)
    # 18 blocks x 9 + stem 4 + 3 downsampling x 4 used; the final LayerNorm ignored; the 4 output norms fresh.
    assert report.as_dict() == {"used": 18 * 9 + 4 + 12, "ignored": 2, "fresh": 8, "state": 18}


def test_convert_weights_script(keras_resnet50, tmp_path):
    _, path = keras_resnet50
    output = str(tmp_path / "out" / "resnet50.weights.h5")
    report_path = str(tmp_path / "report.json")
    result = subprocess.run(
        [
            sys.executable,
            os.path.join("scripts", "convert_weights.py"),
            f"--source={path}",
            "--format=keras_applications",
            "--backbone=resnet50",
            f"--output={output}",
            f"--report_json={report_path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "used 318 source tensors; ignored 0; initialised fresh 0 target weights" in result.stdout
    assert (
        "--backbone_stride_in_1x1 --backbone_bn_epsilon=1.001e-05 --backbone_stem_type=standard "
        "--input_normalization=caffe" in result.stdout.splitlines()[-1]
    )
    assert result.stdout.splitlines()[-1].startswith("Train with: --backbone=resnet50")
    assert json.load(open(report_path))["used"] == 318
    with h5py.File(output) as handle:
        assert "resnet50_stem_conv1/conv/kernel" in handle
    bad = subprocess.run(
        [
            sys.executable,
            os.path.join("scripts", "convert_weights.py"),
            f"--source={path}",
            "--format=timm",
            "--backbone=resnet50",
            f"--output={output}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode == 2 and "must be a .safetensors or .npz" in bad.stderr


def test_a_file_with_the_classification_head_lists_it_as_ignored(tmp_path):
    # Keras 3 loads such a file into an include_top=False model too, dropping the head in silence.
    model = keras.applications.ResNet50(weights=None, include_top=True)
    path = str(tmp_path / "resnet50_top.weights.h5")
    model.save_weights(path)
    overrides = target_overrides("keras_applications", "resnet50")
    backbone = build_backbone("resnet50", norm={"method": "batch_norm", **overrides.pop("norm")}, **overrides)
    report = convert_checkpoint(path, "keras_applications", backbone)
    assert report.as_dict()["used"] == 318 and report.ignored == {
        "predictions/bias": "classification head",
        "predictions/kernel": "classification head",
    }


def test_another_depth_names_the_matching_backbone_without_keras_warnings(tmp_path, recwarn):
    path = str(tmp_path / "resnet101_notop.weights.h5")
    keras.applications.ResNet101(weights=None, include_top=False, input_shape=(None, None, 3)).save_weights(path)
    overrides = target_overrides("keras_applications", "resnet50")
    backbone = build_backbone("resnet50", norm={"method": "batch_norm", **overrides.pop("norm")}, **overrides)
    with pytest.raises(ValueError) as error:
        convert_checkpoint(path, "keras_applications", backbone)
    message = str(error.value)
    assert "the file holds 624 arrays (layers/" in message
    assert "that model holds 318 or 320 (without / with its classification head)" in message
    assert message.endswith("the keras_applications model of --backbone=resnet101: convert with that --backbone.")
    user_warnings = [str(w.message)[:100] for w in recwarn if issubclass(w.category, UserWarning)]
    assert not user_warnings, user_warnings


def test_a_keras_model_file_gets_the_line_that_saves_its_weights(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"not read")
    backbone = ResNetBackbone((1, 1, 1, 1), (8, 16, 32, 64), stem_type="standard", name="net")
    with pytest.raises(ValueError, match=r"save_weights\('.*model\.weights\.h5'\)"):
        convert_checkpoint(str(path), "keras_applications", backbone)
