import os

import numpy as np
import pytest

from hfgd_tf.backbones import FEATURE_KEYS, ResNetBackbone, build_backbone, load_weights_by_name, save_weights_by_name
from tests.conftest import random_images


def _tiny(**overrides):
    arguments = dict(
        stagewise_num_blocks=(1, 1, 1, 1),
        stagewise_num_filters=(8, 8, 16, 16),
        block_type="basic",
        stem_num_filters=8,
        norm="batch_norm",
    )
    arguments.update(overrides)
    return ResNetBackbone(**arguments)


@pytest.mark.parametrize("output_stride, strides", [(32, (4, 8, 16, 32)), (16, (4, 8, 16, 16)), (8, (4, 8, 8, 8))])
def test_feature_sizes_follow_output_stride(output_stride, strides):
    backbone = _tiny(output_stride=output_stride)
    features = backbone(random_images(batch=2, height=64, width=96))
    assert tuple(features) == FEATURE_KEYS
    assert features["S1"].shape[1:3] == (32, 48)
    for level, stride in zip(("C2", "C3", "C4", "C5"), strides):
        assert features[level].shape[1:3] == (64 // stride, 96 // stride), level
        assert backbone.feature_strides[level] == stride
    assert {k: v.shape[-1] for k, v in features.items()} == backbone.feature_channels


def test_odd_input_size_rounds_up():
    features = _tiny()(random_images(batch=1, height=65, width=97))
    assert features["C5"].shape[1:3] == (3, 4)


def test_dilated_last_stage_uses_multi_grid():
    backbone = _tiny(output_stride=8, stagewise_num_blocks=(1, 1, 1, 3), multi_grid=(1, 2, 4))
    rates = [backbone.get_layer(f"resnet_c5_block{i}_conv1").dilation_rate for i in range(3)]
    assert rates == [4, 8, 16]  # dilation 4 at OS8 times multi-grid (1, 2, 4), first block included (mmseg)


def _dilations(backbone, level, num_blocks, convs):
    return [
        [backbone.get_layer(f"resnet_c{level}_block{b}_{c}").dilation_rate for c in convs] for b in range(num_blocks)
    ]


@pytest.mark.parametrize("block_type, convs", [("basic", ("conv1", "conv2")), ("bottleneck", ("conv2",))])
def test_first_block_of_a_dilated_stage_keeps_the_previous_dilation(block_type, convs):
    # torchvision / timm output_stride=8: the first 3x3 of a dilated stage's first block keeps the previous
    # stage's dilation; the basic block's second 3x3 already has the new one.
    backbone = _tiny(output_stride=8, stagewise_num_blocks=(1, 1, 2, 2), block_type=block_type)
    if block_type == "basic":
        assert _dilations(backbone, 4, 2, convs) == [[1, 2], [2, 2]]
        assert _dilations(backbone, 5, 2, convs) == [[2, 4], [4, 4]]
    else:
        assert _dilations(backbone, 4, 2, convs) == [[1], [2]]
        assert _dilations(backbone, 5, 2, convs) == [[2], [4]]
    stage = _tiny(
        output_stride=8, stagewise_num_blocks=(1, 1, 2, 2), block_type=block_type, first_block_dilation="stage"
    )
    assert _dilations(stage, 5, 2, convs)[0][0] == 4


def test_symmetric_padding_samples_like_pytorch():
    # A 3x3/2 conv on a 4x4 map: PyTorch (pad 1 each side) centres its taps on rows 0 and 2; Keras "same"
    # (pad 0 top, 1 bottom) on rows 1 and 3. An impulse at (2, 2) reaches output (0, 0) only with "same".
    from hfgd_tf.layers.conv_norm_act import ConvNormAct

    x = np.zeros((1, 4, 4, 1), "float32")
    x[0, 2, 2] = 1.0
    for padding, expected in (("symmetric", 0.0), ("same", 1.0)):
        layer = ConvNormAct(1, 3, strides=2, norm="batch_norm", activation=None, padding=padding)
        layer.build(x.shape)
        layer.conv.kernel.assign(np.ones((3, 3, 1, 1), "float32"))
        out = layer(x, training=False).numpy()[0, :, :, 0]
        assert out.shape == (2, 2)
        assert abs(out[0, 0] * np.sqrt(1 + 1e-3) - expected) < 1e-5, padding


def test_bottleneck_and_deep_stem_shapes():
    backbone = _tiny(block_type="bottleneck", stem_type="deep")
    assert backbone(random_images(batch=1))["C5"].shape[-1] == 16 * 4


def test_resnet50_parameter_count_matches_torchvision():
    # torchvision's resnet50 has 25,557,032 parameters, of which the fc layer is 2048 * 1000 + 1000.
    backbone = build_backbone("resnet50")  # the preset has the standard 7x7 stem, as torchvision/timm resnet50
    trainable = sum(int(np.prod(v.shape)) for v in backbone.trainable_variables)
    assert trainable == 25_557_032 - 2_049_000


def test_default_deep_stem_resnet50_parameter_count():
    # ResNetBackbone() is ResNet-50 with the deep stem (mmseg ResNetV1c, timm resnet50c): three 3x3
    # conv + BN, 3->32->32->64, instead of the 7x7 3->64 conv + BN. Counted by hand:
    #   deep stem     (3*9*32 + 32*9*32 + 32*9*64) + 2 * (32 + 32 + 64) = 28,512 + 256 = 28,768
    #   7x7 stem      3*49*64 + 2 * 64                                  =  9,408 + 128 =  9,536
    # so torchvision's 25,557,032 less its fc (2,049,000) plus 28,768 - 9,536 (timm resnet50c: 25,576,264).
    backbone = ResNetBackbone()
    assert backbone.stem_type == "deep"
    trainable = sum(int(np.prod(v.shape)) for v in backbone.trainable_variables)
    assert trainable == 25_557_032 - 2_049_000 + 28_768 - 9_536
    stem = sum(int(np.prod(v.shape)) for v in backbone.trainable_variables if "_stem_" in v.path)
    assert stem == 28_768


def test_config_round_trip():
    backbone = _tiny(output_stride=16)
    clone = ResNetBackbone.from_config(backbone.get_config())
    assert clone.get_config() == backbone.get_config()


@pytest.mark.parametrize("keras_format", [False, True])
def test_weights_save_load_round_trip(tmp_path, keras_format):
    path = os.path.join(tmp_path, "backbone.weights.h5")
    source = build_backbone("resnet_tiny", norm="batch_norm")
    source(random_images(batch=2), training=True)  # moving statistics differ from their initial values
    images = random_images(batch=1)
    if keras_format:
        source.save_weights(path)
    else:
        save_weights_by_name(source, path)
    target = build_backbone("resnet_tiny", norm="batch_norm", weights_path=path)
    np.testing.assert_array_equal(source(images)["C5"].numpy(), target(images)["C5"].numpy())


def test_weights_load_by_name_whatever_the_build_order(tmp_path):
    path = os.path.join(tmp_path, "backbone.weights.h5")
    source = build_backbone("resnet_tiny", norm="batch_norm")
    save_weights_by_name(source, path)
    build_backbone("resnet18")  # other layers built in between change Keras' positional names, not ours
    target = build_backbone("resnet_tiny", norm="batch_norm", weights_path=path)
    for a, b in zip(source.weights, target.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_weights_errors_list_missing_unexpected_and_misshaped(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        build_backbone("resnet_tiny", weights_path=os.path.join(tmp_path, "missing.weights.h5"))
    path = os.path.join(tmp_path, "other.weights.h5")
    save_weights_by_name(build_backbone("resnet_tiny", stagewise_num_blocks=(1, 1, 1, 2)), path)
    with pytest.raises(ValueError) as error:
        build_backbone("resnet_tiny", weights_path=path, stem_num_filters=8)
    message = str(error.value)
    assert "other.weights.h5" in message
    assert "unexpected 10 (resnet_tiny_c5_block1_conv1" in message
    assert "wrong shape" in message and "resnet_tiny_stem_conv1/conv/kernel (3, 3, 3, 8) != (3, 3, 3, 4)" in message


def test_fine_tuning_load_skips_mismatched_weights(tmp_path):
    path = os.path.join(tmp_path, "w.weights.h5")
    save_weights_by_name(build_backbone("resnet_tiny", stagewise_num_blocks=(1, 1, 1, 2)), path)
    target = build_backbone("resnet_tiny")
    report = load_weights_by_name(target, path, skip_mismatch=True)
    assert report["unexpected"] and not report["missing"] and len(report["loaded"]) == len(target.weights)


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(output_stride=4), "output_stride"),
        (dict(block_type="wide"), "block_type"),
        (dict(stagewise_num_blocks=(1, 1)), "stagewise_num_blocks"),
    ],
)
def test_bad_arguments(overrides, field):
    with pytest.raises(ValueError, match=field):
        _tiny(**overrides)


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(ValueError, match="resnet50"):
        build_backbone("vgg16")


def _keras_file_with_arrays(path, count):
    """A Keras-format weights file of an unrelated model holding `count` arrays (Dense: 2, Normalization: 3)."""
    import keras

    layers = [keras.layers.Dense(1) for _ in range(count // 2)]
    if count % 2:
        layers = layers[:-1] + [keras.layers.Normalization()]  # 3 arrays: mean, variance, count
    model = keras.Sequential([keras.Input((1,)), *layers])
    model.save_weights(path)
    return path


@pytest.mark.parametrize("same_count", [False, True])
def test_an_unconverted_checkpoint_names_the_convert_command(tmp_path, same_count):
    target_count = len(build_backbone("resnet_tiny").weights)
    path = _keras_file_with_arrays(str(tmp_path / "resnet50_notop.weights.h5"), target_count if same_count else 7)
    from hfgd_tf.backbones.convert.common import describe_tensors

    assert len(describe_tensors(path)) == (target_count if same_count else 7)  # same count: Keras' load is tried
    with pytest.raises(ValueError) as error:
        build_backbone("resnet_tiny", weights_path=path)
    message = str(error.value)
    assert "was not written by scripts/convert_weights.py" in message
    assert (
        f"python scripts/convert_weights.py --source={path} --format=keras_applications --backbone=resnet_tiny "
        "--output=weights/resnet50_notop_resnet_tiny.weights.h5" in message
    )
    assert len(message) < 1000  # not Keras' list of every object it could not load


@pytest.mark.parametrize("name, expected_format", [("model.safetensors", "timm"), ("model.h5", "keras_applications")])
def test_a_checkpoint_of_another_extension_names_the_convert_command(tmp_path, name, expected_format):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=f"--source={path} --format={expected_format} --backbone=resnet_tiny"):
        build_backbone("resnet_tiny", weights_path=str(path))
