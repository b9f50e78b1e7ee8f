"""ConvNeXt and Swin: the feature-dict interface, odd sizes, Swin's window mechanics, serialisation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.backbones import FEATURE_KEYS, ConvNeXtBackbone, SwinBackbone, build_backbone
from hfgd_tf.backbones.swin import SwinBlock
from tests.conftest import random_images


def _tiny_swin(**overrides):
    arguments = dict(embed_dim=8, depths=(1, 2, 1, 1), num_heads=(1, 2, 2, 4), window_size=2)
    arguments.update(overrides)
    return SwinBackbone(**arguments)


@pytest.mark.parametrize("size", [(64, 64), (65, 97)])
def test_swin_feature_dict(size):
    features = _tiny_swin()(random_images(batch=2, height=size[0], width=size[1]))
    # No stride-2 level: the OS2 upsampler makes S1 itself.
    assert tuple(features) == FEATURE_KEYS[1:]
    for key, stride in (("C2", 4), ("C3", 8), ("C4", 16), ("C5", 32)):
        assert features[key].shape[1:3] == (-(-size[0] // stride), -(-size[1] // stride)), key
    assert [features[k].shape[-1] for k in ("C2", "C3", "C4", "C5")] == [8, 16, 32, 64]


def test_swin_tiny_parameter_count():
    # timm swin_tiny_patch4_window7_224: 28,288,354 parameters, less the 768 x 1000 head (769,000).
    # Our C5 output norm is its final norm; the C2..C4 output norms are frozen (see stage_output_norm).
    backbone = build_backbone("swin_tiny")
    trainable = sum(int(np.prod(v.shape)) for v in backbone.trainable_variables)
    assert trainable == 28_288_354 - 769_000


def _block_output(block, x):
    return block(tf.constant(x)).numpy()


def test_window_attention_stays_inside_its_window():
    block = SwinBlock(8, 2, window_size=4, shift=False)
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 8)).astype("float32")
    base = _block_output(block, x)
    changed = x.copy()
    changed[0, 0, 0] += 10.0  # top-left window
    difference = np.abs(_block_output(block, changed) - base).sum(-1)[0]
    assert difference[:4, :4].max() > 0
    difference[:4, :4] = 0
    assert difference.max() == 0


def test_shifted_windows_cross_borders_but_the_mask_stops_wrap_around():
    block = SwinBlock(8, 2, window_size=4, shift=True)
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 8)).astype("float32")
    base = _block_output(block, x)
    changed = x.copy()
    changed[0, 3, 3] += 10.0  # the shifted window around (3, 3) spans rows/cols 2..5
    difference = np.abs(_block_output(block, changed) - base).sum(-1)[0]
    assert difference[4, 4] > 0 and difference[2, 2] > 0
    assert difference[7, 7] == 0 and difference[0, 7] == 0
    # (0, 0) and (7, 7) share a rolled window; the mask keeps them apart.
    corner = x.copy()
    corner[0, 0, 0] += 10.0
    assert np.abs(_block_output(block, corner) - base).sum(-1)[0][7, 7] == 0


def test_swin_save_load(tmp_path):
    backbone = _tiny_swin()
    images = random_images(batch=1)
    path = str(tmp_path / "swin.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(backbone(images)["C5"].numpy(), restored(images)["C5"].numpy(), atol=1e-6)


def test_convnext_tiny_feature_dict_and_round_trip():
    backbone = ConvNeXtBackbone("tiny", norm="batch_norm")
    features = backbone(random_images(batch=1))
    assert {k: v.shape[1:] for k, v in features.items()} == {
        "C2": (16, 16, 96),
        "C3": (8, 8, 192),
        "C4": (4, 4, 384),
        "C5": (2, 2, 768),
    }
    assert ConvNeXtBackbone.from_config(backbone.get_config()).get_config() == backbone.get_config()


@pytest.mark.parametrize("name", ["convnext_tiny", "swin_tiny"])
def test_transformer_backbones_refuse_dilation(name):
    with pytest.raises(ValueError, match="output_stride"):
        build_backbone(name, output_stride=16)


def test_bad_swin_arguments():
    with pytest.raises(ValueError, match="depths"):
        _tiny_swin(depths=(1, 1))
    with pytest.raises(ValueError, match="variant"):
        ConvNeXtBackbone("huge")


def test_feature_strides_list_only_the_levels_the_backbone_returns():
    # No stride-2 level: `feature_strides` must not announce an S1 the feature dict does not hold.
    swin = _tiny_swin()
    convnext = ConvNeXtBackbone(depths=(1, 1, 1, 1), projection_dims=(8, 16, 32, 64))
    for backbone in (swin, convnext):
        assert backbone.feature_strides == {"C2": 4, "C3": 8, "C4": 16, "C5": 32}
        assert set(backbone.feature_strides) == set(backbone.output)
