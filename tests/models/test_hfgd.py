"""The HFGD idea itself: gradient isolation, one shared class-kernel variable, shapes, serialisation."""

import dataclasses
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.models import HFGDSegmenter, ModelConfig, build_model
from hfgd_tf.train.losses import SegmentationLoss
from tests.conftest import random_images, tiny_model_config


def _losses(model, seed=0):
    images = tf.constant(random_images(seed=seed))
    labels = tf.constant(np.random.default_rng(seed).integers(0, 4, (2, 64, 64)), tf.int32)
    with tf.GradientTape(persistent=True) as tape:
        terms = SegmentationLoss(ignore_label=255)(labels, model(images, training=True))
        loss_up, loss_high = terms["loss_up"], terms["loss_high"]
        tape.total = loss_up + loss_high
    return tape, loss_up, loss_high


def _nonzero(tape, loss, variables):
    """Number of variables whose gradient is not exactly zero (None counts as zero)."""
    return sum(
        g is not None and bool(np.any(tf.convert_to_tensor(g).numpy() != 0)) for g in tape.gradient(loss, variables)
    )


def test_upsampler_loss_gives_exactly_zero_gradient_to_backbone_cae_and_class_kernels():
    model = build_model(tiny_model_config())
    tape, loss_up, loss_high = _losses(model)
    groups = model.variable_groups()
    for part in ("backbone", "context_encoder", "class_kernels"):
        gradients = tape.gradient(loss_up, groups[part])
        assert all(g is None or not np.any(g.numpy()) for g in gradients), part
    assert _nonzero(tape, loss_up, groups["upsampler"]) == len(groups["upsampler"])


# A small ConvNeXt is not a preset here (keras.applications fixes the variants): ConvNeXt-T, 10-25 s.
@pytest.mark.parametrize(
    "backbone", ["resnet_tiny", "swin_tiny_test", pytest.param("convnext_tiny", marks=pytest.mark.slow)]
)
def test_every_trainable_variable_trains_at_output_stride_2(backbone):
    """The total loss reaches every trainable variable, including the S1 path of the OS2 upsampler
    (for ConvNeXt/Swin an image stem owned by the upsampler, not a frozen part of the backbone)."""
    # Stochastic depth may drop a whole residual branch for both images of a step: turned off here.
    model = build_model(tiny_model_config(backbone=backbone, output_stride=2, drop_path_rate=0.0))
    tape, loss_up, loss_high = _losses(model)
    untrained = [
        v.path
        for v, g in zip(model.trainable_variables, tape.gradient(tape.total, model.trainable_variables))
        if g is None or not np.any(tf.convert_to_tensor(g).numpy())
    ]
    assert untrained == []
    groups = model.variable_groups()
    stem = [v for v in model.trainable_variables if "image_stem" in v.path]
    if backbone == "resnet_tiny":
        assert stem == [] and "S1" in model.backbone.output  # the ResNet stem is a real backbone level
    else:
        assert "S1" not in model.backbone.output
        assert {id(v) for v in stem} <= {id(v) for v in groups["upsampler"]} and len(
            stem
        ) == 6  # 2 conv kernels, 2 BN gamma/beta
        assert _nonzero(tape, loss_high, stem) == 0  # the stem trains with the upsampler's loss only
    for part in ("backbone", "context_encoder", "class_kernels"):
        assert _nonzero(tape, loss_up, groups[part]) == 0, part


@pytest.mark.parametrize(
    "backbone, upsampler",
    [
        ("swin_tiny_test", "usfpn"),
        pytest.param("convnext_tiny", "usfpn", marks=pytest.mark.slow),
        ("swin_tiny_test", "sfpn"),
    ],
)
def test_no_s1_image_stem_below_output_stride_2(backbone, upsampler):
    model = build_model(tiny_model_config(backbone=backbone, output_stride=4, upsampler=upsampler))
    assert not [v for v in model.weights if "image_stem" in v.path or "s1" in v.path.lower()]
    assert "S1" not in model.backbone.output


def test_high_level_loss_gives_exactly_zero_gradient_to_the_upsampler():
    model = build_model(tiny_model_config())
    tape, loss_up, loss_high = _losses(model)
    groups = model.variable_groups()
    assert _nonzero(tape, loss_high, groups["upsampler"]) == 0
    for part in ("backbone", "context_encoder", "class_kernels"):
        assert _nonzero(tape, loss_high, groups[part]) == len(groups[part]), part


@pytest.mark.parametrize(
    "switch, reached, isolated",
    [
        ("stop_gradient_backbone", {"backbone"}, {"context_encoder", "class_kernels"}),
        # Without the guidance stop-gradient the loss flows through H into the CAE and on into C5.
        ("stop_gradient_guidance", {"context_encoder", "backbone"}, {"class_kernels"}),
        ("stop_gradient_class_kernels", {"class_kernels"}, {"backbone", "context_encoder"}),
    ],
)
def test_each_switch_off_lets_the_upsampler_loss_reach_its_part(switch, reached, isolated):
    model = build_model(tiny_model_config(**{switch: False}))
    tape, loss_up, _ = _losses(model)
    groups = model.variable_groups()
    for part in reached:
        assert _nonzero(tape, loss_up, groups[part]) > 0, part
    for part in isolated:
        assert _nonzero(tape, loss_up, groups[part]) == 0, part


def test_the_upsampler_classifier_is_the_class_kernel_variable():
    model = build_model(tiny_model_config())
    kernels = [v for v in model.weights if "class_kernels" in v.path]
    assert len(kernels) == 2  # one kernel, one bias, used by both heads
    assert model.get_layer("class_kernels") is model.class_kernels
    assert not [v for v in model.weights if "classifier" in v.path]


def test_one_sgd_step_changes_class_kernels_only_through_the_high_level_loss():
    model = build_model(tiny_model_config())
    tape, loss_up, loss_high = _losses(model)
    variables = model.class_kernels.trainable_variables
    before = [v.numpy().copy() for v in variables]
    optimizer = keras.optimizers.SGD(0.1)
    gradients = tape.gradient(tape.total, variables)
    high_only = tape.gradient(loss_high, variables)
    for g, h in zip(gradients, high_only):
        np.testing.assert_array_equal(g.numpy(), h.numpy())
    optimizer.apply_gradients(zip(gradients, variables))
    for b, v, h in zip(before, variables, high_only):
        np.testing.assert_allclose(v.numpy(), b - 0.1 * h.numpy(), rtol=1e-6, atol=1e-7)


def test_unshared_classifier_is_a_separate_variable():
    model = build_model(tiny_model_config(share_class_kernels=False))
    names = {v.path.split("/")[-2] for v in model.weights if v.path.endswith("kernel") and "class" in v.path}
    assert {"class_kernels", "upsampler_classifier"} <= names
    tape, loss_up, _ = _losses(model)
    assert _nonzero(tape, loss_up, model.class_kernels.trainable_variables) == 0


@pytest.mark.parametrize("output_stride", [8, 4, 2])
@pytest.mark.parametrize("backbone_output_stride", [32, 16, 8])
def test_output_shapes_for_every_stride_including_odd_sizes(output_stride, backbone_output_stride):
    model = build_model(tiny_model_config(output_stride=output_stride, backbone_output_stride=backbone_output_stride))
    outputs = model(random_images(batch=1, height=65, width=81))
    assert outputs["logits"].shape == (1, 65, 81, 4)
    high = -(-65 // backbone_output_stride), -(-81 // backbone_output_stride)
    assert outputs["logits_high"].shape == (1, *high, 4)
    assert outputs["logits"].dtype == tf.float32


@pytest.mark.parametrize("upsampler", ["none", "sfpn"])
@pytest.mark.parametrize("cae", ["aspp", "ppm", "none"])
def test_variants_build_and_predict(upsampler, cae):
    model = build_model(tiny_model_config(upsampler=upsampler, cae=cae))
    assert model(random_images(batch=1))["logits"].shape == (1, 64, 64, 4)


def test_keras_save_and_load_give_identical_outputs(tmp_path):
    model = build_model(tiny_model_config(output_stride=2, norm_method="group_norm"))
    images = random_images(height=64, width=96)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, HFGDSegmenter)
    for key in ("logits", "logits_high"):
        np.testing.assert_array_equal(model(images)[key].numpy(), restored(images)[key].numpy())
    assert restored.get_config()["upsampler"]["config"]["output_stride"] == 2


def _layer_policies(model):
    return {
        layer.path if hasattr(layer, "path") else layer.name: layer.dtype_policy.name
        for layer in model._flatten_layers()
    }


@pytest.mark.parametrize(
    "policy, overrides",
    [
        ("mixed_bfloat16", dict(output_stride=2)),
        pytest.param("mixed_float16", dict(output_stride=2), marks=pytest.mark.slow),
        pytest.param(
            "mixed_bfloat16", dict(upsampler="sfpn", backbone="swin_tiny_test", output_stride=2), marks=pytest.mark.slow
        ),
    ],
)
def test_mixed_precision_model_survives_keras_save_and_load(tmp_path, policy, overrides):
    model = build_model(tiny_model_config(norm_method="group_norm", **overrides), dtype_policy=policy)
    compute = policy.split("_")[1]
    assert model.get_layer("context_encoder" if "upsampler" not in overrides else "decoder").compute_dtype == compute
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)  # the global policy is float32 here
    assert keras.config.dtype_policy().name == "float32"
    policies = _layer_policies(restored)
    assert policies == _layer_policies(model)
    assert policies[restored.backbone.name] == policy and restored.dtype_policy.name == policy
    assert [(v.path, v.dtype) for v in restored.weights] == [(v.path, v.dtype) for v in model.weights]
    images = random_images(batch=1)
    for key, value in model(images).items():
        assert value.dtype == tf.float32
        np.testing.assert_array_equal(value.numpy(), restored(images)[key].numpy())
    # The backbone alone round-trips too.
    model.backbone.save(os.path.join(tmp_path, "backbone.keras"))
    backbone = keras.saving.load_model(os.path.join(tmp_path, "backbone.keras"))
    assert _layer_policies(backbone) == _layer_policies(model.backbone)


def test_mixed_bfloat16_runs_and_keeps_losses_in_float32():
    policy = keras.config.dtype_policy()
    model = build_model(tiny_model_config(), dtype_policy="mixed_bfloat16")
    assert keras.config.dtype_policy() == policy, "build_model must restore the global policy"
    assert model.get_layer("context_encoder").compute_dtype == "bfloat16"
    tape, loss_up, loss_high = _losses(model)
    assert loss_up.dtype == tf.float32 and loss_high.dtype == tf.float32
    assert np.isfinite(loss_up.numpy()) and np.isfinite(loss_high.numpy())
    assert _nonzero(tape, loss_up, model.variable_groups()["backbone"]) == 0
    # The input-size logits are interpolated in float32, not rounded to bfloat16 at full resolution.
    assert model.get_layer("resize_to_input").compute_dtype == "float32"
    logits = model(random_images(batch=1, height=64, width=64))["logits"].numpy()
    rounded = tf.cast(tf.cast(logits, tf.bfloat16), tf.float32).numpy()
    assert logits.dtype == np.float32 and not np.array_equal(logits, rounded)


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(backbone="resnet9000"), "backbone"),
        (dict(output_stride=3), "output_stride"),
        (dict(num_classes=0), "num_classes"),
        (dict(backbone_output_stride=4), "backbone_output_stride"),
        (dict(cae="transformers"), "cae"),
        (dict(num_channels=18), "num_channels"),
        (dict(upsampler_num_channels=-1), "upsampler_num_channels"),
    ],
)
def test_bad_configs_name_the_field_and_allowed_values(overrides, field):
    arguments = dataclasses.asdict(tiny_model_config())
    arguments.update(overrides)
    with pytest.raises(ValueError, match=field):
        ModelConfig(**arguments)


@pytest.mark.parametrize("backbone", ["swin_tiny_test", pytest.param("convnext_tiny", marks=pytest.mark.slow)])
@pytest.mark.parametrize("output_stride", [8, 4, 2])
def test_transformer_backbones_at_every_output_stride_and_odd_size(backbone, output_stride):
    model = build_model(tiny_model_config(backbone=backbone, output_stride=output_stride))
    outputs = model(random_images(batch=1, height=65, width=97))
    assert outputs["logits"].shape == (1, 65, 97, 4)
    tape, loss_up, _ = _losses(model)
    assert _nonzero(tape, loss_up, model.variable_groups()["backbone"]) == 0


@pytest.mark.parametrize(
    "backbone", ["resnet_tiny", "swin_tiny_test", pytest.param("convnext_tiny", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_smoke_for_every_backbone(backbone, policy):
    model = build_model(tiny_model_config(backbone=backbone), dtype_policy=policy)
    outputs = model(random_images(batch=1), training=True)
    assert outputs["logits"].dtype == tf.float32 and outputs["logits_high"].dtype == tf.float32
    assert np.isfinite(outputs["logits"].numpy()).all()


def test_high_level_only_ablation_has_one_loss_term():
    """`upsampler="none"`: the prediction is the high-level head, so the loss must count it once (two
    equal terms would double its gradient, i.e. the learning rate of the ablation)."""
    model = build_model(tiny_model_config(upsampler="none"))
    images = tf.constant(random_images())
    labels = tf.constant(np.random.default_rng(0).integers(0, 4, (2, 64, 64)), tf.int32)
    outputs = model(images, training=True)
    assert set(outputs) == {"logits"}
    terms = SegmentationLoss(ignore_label=255)(labels, outputs)
    assert set(terms) == {"loss_up"}
    # The one term is the cross entropy of the upsampled high-level logits.
    c5 = model.backbone(images * 2 / 255 - 1, training=True)["C5"]
    high = tf.image.resize(model.class_kernels(model.context_encoder(c5, training=True)), (64, 64))
    expected = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=high))
    np.testing.assert_allclose(float(terms["loss_up"]), float(expected), rtol=1e-5)


def test_deeplabv3plus_baseline_on_a_dilated_backbone():
    from hfgd_tf.models import BaselineSegmenter

    model = build_model(tiny_model_config(upsampler="deeplabv3plus", backbone_output_stride=8))
    assert isinstance(model, BaselineSegmenter)
    assert model.decoder.dilation_rates == (12, 24, 36)
    assert model(random_images(batch=1, height=65, width=81))["logits"].shape == (1, 65, 81, 4)
    assert "logits_high" not in model.output


def test_semantic_fpn_baseline_trains_the_backbone_with_its_loss():
    model = build_model(tiny_model_config(upsampler="sfpn"))
    images = tf.constant(random_images())
    labels = tf.constant(np.random.default_rng(0).integers(0, 4, (2, 64, 64)), tf.int32)
    with tf.GradientTape() as tape:
        terms = SegmentationLoss(ignore_label=255)(labels, model(images, training=True))
        loss = terms["loss_up"]
    assert set(terms) == {"loss_up"}
    gradients = tape.gradient(loss, model.backbone.trainable_variables)
    assert all(g is not None and np.any(g.numpy()) for g in gradients)


def test_dilation_is_rejected_for_non_resnet_backbones():
    with pytest.raises(ValueError, match="backbone_output_stride"):
        tiny_model_config(backbone="swin_tiny", backbone_output_stride=16)


@pytest.mark.parametrize("upsampler", ["usfpn", "sfpn"])
def test_upsampler_head_is_half_of_d_by_default_and_outputs_d(upsampler):
    config = dataclasses.replace(tiny_model_config(), num_channels=16, upsampler=upsampler)
    model = build_model(config)
    head = model.upsampler if upsampler == "usfpn" else model.decoder
    assert (head.num_channels, head.output_channels) == (8, 16)
    wide = build_model(dataclasses.replace(config, upsampler_num_channels=16))
    wide_head = wide.upsampler if upsampler == "usfpn" else wide.decoder
    assert (wide_head.num_channels, wide_head.output_channels) == (16, 16)
    assert wide.count_params() > model.count_params()
