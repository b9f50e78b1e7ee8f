import numpy as np
import pytest

from hfgd_tf.layers import GuidedUpsampler, SemanticFPN


def _features(height, width, channels=6):
    rng = np.random.default_rng(0)
    sizes = {"S1": 2, "C2": 4, "C3": 8, "C4": 16, "C5": 32}
    return {
        key: rng.normal(size=(2, -(-height // stride), -(-width // stride), channels)).astype("float32")
        for key, stride in sizes.items()
    }


@pytest.mark.parametrize("output_stride", [8, 4, 2])
@pytest.mark.parametrize("size", [(64, 64), (65, 97)])
def test_semantic_fpn_output_size(output_stride, size):
    features = _features(*size)
    output = SemanticFPN(8, output_stride=output_stride)(features)
    reference = features[{8: "C3", 4: "C2", 2: "S1"}[output_stride]]
    assert output.shape == (2, reference.shape[1], reference.shape[2], 8)


@pytest.mark.parametrize("output_stride", [8, 4, 2])
def test_guided_upsampler_uses_guidance_not_c5(output_stride):
    features = _features(64, 96)
    guidance = features.pop("C5")[..., :4] * 0 + 1.0
    upsampler = GuidedUpsampler(8, output_stride=output_stride)
    output = upsampler(features, guidance)
    assert output.shape[-1] == 8
    changed = upsampler(features, guidance * 3.0)
    assert not np.allclose(output.numpy(), changed.numpy()), "guidance must influence the output"
    assert "lateral_c5" not in [layer.name for layer in upsampler.laterals.values()]


def test_semantic_fpn_stage_counts_follow_the_authors_block():
    fpn = SemanticFPN(8, output_stride=4)
    # Per level i (0 = C2): max(1, i) conv-norm-ReLU stages.
    assert {level: len(stages) for level, stages in fpn.stages.items()} == {"C2": 1, "C3": 1, "C4": 2, "C5": 3}


def test_weight_counts():
    fpn = SemanticFPN(8, output_stride=4)
    fpn(_features(64, 64))
    # 4 laterals (kernel+bias) + 7 stages + fused projection (conv kernel, BN gamma/beta) trainable.
    assert len(fpn.trainable_weights) == 4 * 2 + 8 * 3
    assert len(fpn.non_trainable_weights) == 8 * 2


def test_missing_feature_key_is_a_clear_error():
    features = _features(64, 64)
    del features["S1"]
    with pytest.raises(ValueError, match="S1"):
        SemanticFPN(8, output_stride=2)(features)


@pytest.mark.parametrize("layer_class", [SemanticFPN, GuidedUpsampler])
def test_own_image_stem_makes_s1_from_the_image(layer_class):
    features = _features(64, 96)
    del features["S1"]
    features["image"] = np.random.default_rng(1).normal(size=(2, 64, 96, 3)).astype("float32")
    layer = layer_class(8, output_stride=2, image_stem_num_channels=4)
    guidance = () if layer_class is SemanticFPN else (features.pop("C5")[..., :4],)
    assert layer.required_features[-1] == "image"
    output = layer(features, *guidance)
    assert output.shape == (2, 32, 48, 8)
    stem_kernels = [v for v in layer.trainable_weights if "image_stem" in v.path and v.path.endswith("kernel")]
    assert [tuple(v.shape) for v in stem_kernels] == [(3, 3, 3, 4), (3, 3, 4, 4)]
    assert layer_class.from_config(layer.get_config()).get_config() == layer.get_config()


def test_image_stem_only_at_output_stride_2():
    with pytest.raises(ValueError, match="image_stem_num_channels"):
        SemanticFPN(8, output_stride=4, image_stem_num_channels=4)


def test_bad_output_stride():
    with pytest.raises(ValueError, match="output_stride"):
        GuidedUpsampler(8, output_stride=3)


def test_config_round_trip():
    upsampler = GuidedUpsampler(8, output_stride=2, norm="group_norm", name="guided")
    clone = GuidedUpsampler.from_config(upsampler.get_config())
    assert clone.get_config() == upsampler.get_config()


@pytest.mark.parametrize("layer_class", [SemanticFPN, GuidedUpsampler])
@pytest.mark.parametrize("output_stride", [8, 4, 2])
def test_narrow_head_projects_to_the_output_width(layer_class, output_stride):
    features = _features(64, 96)
    guidance = () if layer_class is SemanticFPN else (features.pop("C5")[..., :4],)
    layer = layer_class(4, output_stride=output_stride, output_channels=12)
    assert layer(features, *guidance).shape[-1] == 12
    stage_kernels = [v for v in layer.trainable_weights if "/stage_c" in v.path and v.path.endswith("kernel")]
    assert stage_kernels and all(tuple(v.shape[2:]) == (4, 4) for v in stage_kernels)
    assert layer.fused_projection.conv.kernel.shape[2:] == (4, 12)
    assert layer_class.from_config(layer.get_config()).get_config() == layer.get_config()


def test_output_width_defaults_to_the_head_width():
    assert SemanticFPN(8).output_channels == 8
    with pytest.raises(ValueError, match="output_channels"):
        SemanticFPN(8, output_channels=0)


@pytest.mark.parametrize("output_stride", [8, 4, 2])
def test_semantic_head_equals_the_per_level_sum_of_the_authors_block(output_stride):
    # The layer sums the coarser levels before their common last resize; the authors' block resizes every
    # level to the finest grid and then sums. Bilinear resizing is linear, so both must agree. Odd sizes.
    import tensorflow as tf

    features = _features(65, 97)
    fpn = SemanticFPN(8, output_stride=output_stride, output_channels=12, norm="group_norm")
    output = fpn(features, training=False).numpy()
    pyramid = {"C5": fpn.laterals["C5"](features["C5"])}
    coarse = pyramid["C5"]
    for level in reversed(fpn.merged_levels[:-1]):
        lateral = fpn.laterals[level](features[level])
        pyramid[level] = lateral + tf.image.resize(coarse, tf.shape(lateral)[1:3])
        coarse = pyramid[level]
    fused = 0.0
    for index, level in enumerate(fpn.merged_levels):
        x = pyramid[level]
        for stage_index, stage in enumerate(fpn.stages[level]):
            x = stage(x, training=False)
            if index > 0:
                target = pyramid[fpn.merged_levels[index - stage_index - 1]]
                x = tf.image.resize(x, tf.shape(target)[1:3])
        fused = fused + x
    expected = fpn.fused_projection(fused, training=False)
    if output_stride == 2:
        stem = fpn.stem_lateral(features["S1"])
        reduced = tf.image.resize(fpn.stem_reduction(expected), tf.shape(stem)[1:3])
        expected = fpn.stem_projection(fpn.stem_refine(stem + reduced, training=False), training=False)
    np.testing.assert_allclose(output, expected.numpy(), rtol=1e-4, atol=1e-4)
