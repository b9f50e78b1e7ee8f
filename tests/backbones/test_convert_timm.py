"""Converted timm checkpoints compute timm's own stage outputs (fixtures in ../shared/fixtures/timm)."""

import json
import os

import h5py
import keras
import numpy as np
import pytest

from hfgd_tf.backbones import ConvNeXtBackbone, ResNetBackbone, SwinBackbone
from hfgd_tf.backbones.convert import convert_checkpoint, target_overrides, write_converted
from hfgd_tf.backbones.convert.common import LAYOUT_ATTRIBUTE, read_tensors
from hfgd_tf.backbones.loading import load_backbone_weights
from tests.conftest import ROOT

FIXTURES = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "timm")
_NORM = {"method": "batch_norm", "epsilon": 1e-5}
_SMALL = dict(stagewise_num_filters=(8, 16, 32, 64))
# fixture -> (backbone class, constructor arguments reproducing fixtures.json's timm constructor,
#             expected accounting: source tensors used / ignored, target weights fresh / state).
CASES = {
    "resnet_bottleneck": (
        ResNetBackbone,
        dict(stagewise_num_blocks=(1, 1, 1, 1), stem_type="standard", **_SMALL),
        (85, 19, 0, 0),
    ),
    "resnet_bottleneck_os8": (
        ResNetBackbone,
        dict(stagewise_num_blocks=(2, 2, 2, 2), stem_type="standard", output_stride=8, **_SMALL),
        (145, 31, 0, 0),
    ),
    "resnet_bottleneck_deep_stem": (
        ResNetBackbone,
        dict(stagewise_num_blocks=(1, 1, 1, 1), stem_type="deep", stem_num_filters=16, **_SMALL),
        (95, 21, 0, 0),
    ),
    "resnet_bottleneck_deep_stem_avg_down": (
        ResNetBackbone,
        dict(stagewise_num_blocks=(1, 1, 1, 1), stem_type="deep", stem_num_filters=16, avg_down=True, **_SMALL),
        (95, 21, 0, 0),
    ),
    "resnet_basic": (
        ResNetBackbone,
        dict(stagewise_num_blocks=(2, 2, 2, 2), block_type="basic", stem_type="standard", **_SMALL),
        (105, 23, 0, 0),
    ),
    # fresh: the C2..C5 output norms (8); state: 5 drop path counters. (No S1: the OS2 upsampler makes it.)
    "convnext": (ConvNeXtBackbone, dict(depths=(1, 1, 2, 1), projection_dims=(8, 16, 32, 64)), (61, 4, 8, 5)),
    # fresh: the C2..C4 output norms (6; C5's is timm's final norm).
    "swin": (
        SwinBackbone,
        dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=4, drop_path_rate=0.0),
        (119, 2, 6, 16),
    ),
}


def _fixture(name):
    if not os.path.isdir(FIXTURES):
        pytest.skip(f"timm fixtures not found at {FIXTURES} (they live in ../shared/fixtures/timm beside the project)")
    return os.path.join(FIXTURES, f"{name}.safetensors"), np.load(os.path.join(FIXTURES, f"{name}_outputs.npz"))


def _build(name):
    cls, arguments, _ = CASES[name]
    if cls is ResNetBackbone:
        arguments = dict(arguments, norm=_NORM)
    return cls(**arguments, name="net")


def _outputs(backbone, images, keys):
    """Our tensors for timm's keys; transformer stage outputs are taken before our per-stage norms."""
    features = backbone(images, training=False)
    layers = {}
    for key in keys:
        if isinstance(backbone, ResNetBackbone) or key == "S1":
            continue
        if key == "final_norm_C5":
            continue
        if key == "patch_embed":
            layers[key] = backbone.get_layer("net_patch_embed_norm").output
        else:
            layers[key] = backbone.get_layer(f"net_{key.lower()}_norm").input
    raw = keras.Model(backbone.input, layers)(images) if layers else {}
    result = {}
    for key in keys:
        if key in raw:
            result[key] = np.asarray(raw[key])
        else:
            result[key] = np.asarray(features["C5" if key == "final_norm_C5" else key])
    return result


@pytest.mark.parametrize("name", sorted(CASES))
def test_converted_backbone_matches_timm(name):
    path, reference = _fixture(name)
    backbone = _build(name)
    report = convert_checkpoint(path, "timm", backbone)
    keys = [key for key in reference.files if key != "input_nhwc"]
    expected_keys = {"S1", "C2", "C3", "C4", "C5"} if name.startswith("resnet") else {"C2", "C3", "C4", "C5"}
    assert expected_keys <= set(keys)
    ours = _outputs(backbone, reference["input_nhwc"], keys)
    for key in keys:
        assert ours[key].shape == reference[key].shape, key
        scale = np.abs(reference[key]).max()
        error = np.abs(ours[key] - reference[key]).max()
        print(f"{name} {key}: max abs {error:.2e}, max rel {error / scale:.2e}")  # the table, with pytest -s
        np.testing.assert_allclose(ours[key], reference[key], rtol=0, atol=1e-4 * scale, err_msg=f"{name} {key}")
    used, ignored, fresh, state = CASES[name][2]
    print(f"{name} accounting: {report.as_dict()}")
    assert report.as_dict() == {"used": used, "ignored": ignored, "fresh": fresh, "state": state}
    # Every source tensor is either used or ignored for a stated reason.
    assert used + ignored == len(read_tensors(path))


def test_ignored_tensors_are_the_head_and_batch_counters_only():
    path, _ = _fixture("resnet_bottleneck")
    report = convert_checkpoint(path, "timm", _build("resnet_bottleneck"))
    assert set(report.ignored.values()) == {"classification head", "BatchNorm batch counter"}
    assert sorted(k for k, v in report.ignored.items() if v == "classification head") == ["fc.bias", "fc.weight"]


def test_swin_fills_c5_norm_from_the_final_norm_and_reports_the_others_fresh():
    path, _ = _fixture("swin")
    report = convert_checkpoint(path, "timm", _build("swin"))
    assert ("norm.weight", "net_c5_norm/gamma") in report.used
    assert {"net_c2_norm/gamma", "net_c3_norm/gamma", "net_c4_norm/gamma"} <= set(report.fresh)
    assert "initialised fresh (no ImageNet checkpoint has it): net_c2_norm/gamma" in report.summary()


def test_refuses_another_architecture_with_a_listing():
    path, _ = _fixture("resnet_bottleneck_deep_stem")
    with pytest.raises(ValueError) as error:
        convert_checkpoint(path, "timm", _build("resnet_bottleneck"))  # standard stem target, deep stem source
    message = str(error.value)
    assert "target weights have no source tensor: conv1.weight (for net_stem_conv1/conv/kernel)" in message
    assert "source tensors have no place in the target:" in message and "conv1.0.weight" in message
    path, _ = _fixture("resnet_bottleneck_os8")  # 2 blocks per stage into a 1-block target
    with pytest.raises(ValueError, match=r"source tensors have no place in the target: layer1\.1\.bn1\.bias"):
        convert_checkpoint(path, "timm", _build("resnet_bottleneck"))


def test_refuses_shape_mismatch(tmp_path):
    path, _ = _fixture("resnet_bottleneck")
    backbone = ResNetBackbone((1, 1, 1, 1), (8, 16, 32, 32), stem_type="standard", norm=_NORM, name="net")
    with pytest.raises(ValueError) as error:
        convert_checkpoint(path, "timm", backbone)
    message = str(error.value)
    assert (
        "20 shapes differ: layer4.0.conv1.weight (64, 128, 1, 1) -> net_c5_block0_conv1/conv/kernel (1, 1, 128, 32)"
        in message
    )
    assert "no place in the target" not in message  # a mis-shaped tensor is reported once


def test_refuses_a_standard_stem_checkpoint_for_an_avg_down_target_with_a_listing():
    # resnet50 weights into resnet50d: `downsample.1` is a BatchNorm in the source but the shortcut conv in
    # the target (rank 1 vs 4); this must be listed as a shape mismatch, not fail inside numpy.
    path, _ = _fixture("resnet_bottleneck")
    target = ResNetBackbone(**dict(CASES["resnet_bottleneck_deep_stem_avg_down"][1], norm=_NORM), name="net")
    with pytest.raises(ValueError) as error:
        convert_checkpoint(path, "timm", target)
    message = str(error.value)
    assert "shapes differ: " in message
    assert "layer1.0.downsample.1.weight (32,) -> net_c2_block0_shortcut/conv/kernel (1, 1, 16, 32)" in message


def test_refuses_a_pth_with_the_torch_one_liner(tmp_path):
    path = str(tmp_path / "model.pth")
    open(path, "wb").close()
    with pytest.raises(ValueError, match="safetensors.torch"):
        convert_checkpoint(path, "timm", _build("resnet_bottleneck"))


def test_converted_file_loads_and_refuses_another_layout(tmp_path):
    path, reference = _fixture("resnet_bottleneck")
    backbone = _build("resnet_bottleneck")
    convert_checkpoint(path, "timm", backbone)
    output = write_converted(backbone, str(tmp_path / "net.weights.h5"), "resnet_bottleneck.safetensors")
    with h5py.File(output) as handle:
        assert json.loads(handle.attrs[LAYOUT_ATTRIBUTE])["padding"] == "symmetric"
    arguments = dict(CASES["resnet_bottleneck"][1], norm=_NORM)
    loaded = ResNetBackbone(**arguments, name="net")
    load_backbone_weights(loaded, output)
    np.testing.assert_array_equal(
        np.asarray(loaded(reference["input_nhwc"])["C5"]), np.asarray(backbone(reference["input_nhwc"])["C5"])
    )
    with pytest.raises(ValueError, match="padding: file 'symmetric' vs model 'same'"):
        load_backbone_weights(ResNetBackbone(**dict(arguments, padding="same"), name="net"), output)
    with pytest.raises(ValueError, match="bn_epsilon: file 1e-05 vs model 0.001"):
        load_backbone_weights(ResNetBackbone(**dict(arguments, norm="batch_norm"), name="net"), output)


def test_target_overrides_per_format():
    assert target_overrides("timm", "resnet50") == {"norm": {"epsilon": 1e-5}}
    assert target_overrides("keras_cv", "resnet50")["padding"] == "same"
    assert target_overrides("keras_applications", "resnet101")["stride_in_1x1"] is True
    with pytest.raises(ValueError, match="deep stem"):
        target_overrides("keras_applications", "resnet50d")
    with pytest.raises(ValueError, match="--format must be one of"):
        target_overrides("onnx", "resnet50")


# timm's and torchvision's documented preprocessing of a uint8 image: ToTensor (x / 255), then Normalize with
# these constants (timm.data.IMAGENET_DEFAULT_MEAN / _STD, torchvision's ResNet50_Weights transforms).
_TORCH_MEAN, _TORCH_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


@pytest.mark.parametrize("source_format", ["timm", "torchvision"])
def test_printed_normalisation_feeds_the_backbone_what_the_torch_source_saw(source_format):
    from hfgd_tf.backbones.convert import source_input_normalization
    from hfgd_tf.layers.input_normalization import input_normalization_layer

    path, outputs = _fixture("resnet_bottleneck")
    image = np.random.default_rng(0).integers(0, 256, size=(1, 65, 97, 3), dtype=np.uint8)
    theirs = ((image / 255.0 - _TORCH_MEAN) / _TORCH_STD).astype("float32")
    method, _ = source_input_normalization(source_format, "resnet50", path)
    ours = input_normalization_layer(method)(image.astype("float32")).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    # The same backbone on both inputs: the stage outputs agree to 1e-4 relative (the timm outputs of the
    # converted weights themselves are checked above on the fixture's own normalised input).
    backbone = _build("resnet_bottleneck")
    convert_checkpoint(path, "timm", backbone)
    for key, value in backbone(theirs, training=False).items():
        reference = np.asarray(value)
        np.testing.assert_allclose(
            np.asarray(backbone(ours, training=False)[key]), reference, rtol=0, atol=1e-4 * np.abs(reference).max()
        )


def test_a_timm_config_json_decides_the_printed_normalisation(tmp_path):
    from hfgd_tf.backbones.convert import source_input_normalization

    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    assert source_input_normalization("timm", "resnet50", str(path))[0] == "imagenet"  # no config.json
    for mean, std, expected in [
        ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], "imagenet"),
        ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], "minus_one_one"),
        ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], "zero_one"),
        ([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711], None),  # CLIP: none of ours
    ]:
        (tmp_path / "config.json").write_text(
            json.dumps({"architecture": "resnet50", "pretrained_cfg": {"mean": mean, "std": std}})
        )
        method, why = source_input_normalization("timm", "resnet50", str(path))
        assert method == expected and "config.json" in why
