"""HFGD on keras-cv backbones (`--backbone=keras_cv:<ClassName>`, `hfgd_tf.backbones.external`).

Tiny widths on 64x64 inputs. ResNetBackbone (dynamic input size, no stride-2 level) and MiTBackbone (fixed
square input, pyramid keys off by one) are the two backbones HFGD is trained and exported on.
"""

import dataclasses
import json
import re

import keras

# keras-cv is a dependency (setup.py): an import failure must fail these tests, not skip them.
import keras_cv  # noqa: E402,F401
import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.backbones import build_backbone
from hfgd_tf.backbones.external import ExternalBackbone
from hfgd_tf.models import ModelConfig, build_model
from tests.conftest import random_images, tiny_model_config
from tests.models.test_hfgd import _losses, _nonzero

TINY = {
    "keras_cv:ResNetBackbone": {
        "stackwise_filters": [8, 8, 16, 16],
        "stackwise_blocks": [1, 1, 1, 1],
        "block_type": "block",
    },
    # head counts of keras-cv's MiT are fixed at (1, 2, 5, 8): widths must divide by them
    "keras_cv:MiTBackbone": {"depths": [1, 1, 1, 1], "embedding_dims": [8, 8, 20, 16], "input_shape": [64, 64, 3]},
}


def _config(backbone, **overrides):
    return tiny_model_config(backbone=backbone, backbone_kwargs=json.dumps(TINY[backbone]), **overrides)


@pytest.mark.slow
def test_pyramid_levels_are_assigned_by_measured_stride():
    mit = ExternalBackbone("keras_cv", "MiTBackbone", TINY["keras_cv:MiTBackbone"])
    # keras-cv names MiT's stride-4 level "P1"; it must still become C2.
    assert mit.library_backbone.pyramid_level_inputs["P1"] == "output_level_0"
    assert mit.feature_strides == {"C2": 4, "C3": 8, "C4": 16, "C5": 32}
    features = mit(random_images())
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "C2": (2, 16, 16, 8),
        "C3": (2, 8, 8, 8),
        "C4": (2, 4, 4, 20),
        "C5": (2, 2, 2, 16),
    }
    mobilenet = ExternalBackbone("keras_cv", "MobileNetV3Backbone")
    assert mobilenet.feature_strides == {"S1": 2, "C2": 4, "C3": 8, "C4": 16, "C5": 32}
    assert tuple(mobilenet(random_images(height=64, width=96))["S1"].shape) == (2, 32, 48, 16)


@pytest.mark.parametrize(
    "backbone", [pytest.param(b, marks=pytest.mark.slow) if "MiT" in b else b for b in sorted(TINY)]
)
def test_hfgd_shapes_and_exact_zero_gradient_isolation(backbone):
    model = build_model(_config(backbone))
    outputs = model(random_images(), training=False)
    assert tuple(outputs["logits"].shape) == (2, 64, 64, 4)
    assert tuple(outputs["logits_high"].shape) == (2, 2, 2, 4)
    tape, loss_up, loss_high = _losses(model)
    groups = model.variable_groups()
    assert groups["backbone"]  # the keras-cv weights are the backbone group
    for part in ("backbone", "context_encoder", "class_kernels"):
        assert _nonzero(tape, loss_up, groups[part]) == 0, part
        assert _nonzero(tape, loss_high, groups[part]) > 0, part
    assert _nonzero(tape, loss_up, groups["upsampler"]) == len(groups["upsampler"])
    assert _nonzero(tape, loss_high, groups["upsampler"]) == 0


def test_without_the_stop_gradient_the_upsampler_loss_reaches_the_keras_cv_backbone():
    model = build_model(_config("keras_cv:ResNetBackbone", stop_gradient_backbone=False))
    tape, loss_up, _ = _losses(model)
    assert _nonzero(tape, loss_up, model.variable_groups()["backbone"]) > 0


@pytest.mark.slow
def test_fixed_size_backbone_takes_other_sizes_through_resizing():
    model = build_model(_config("keras_cv:MiTBackbone"))
    outputs = model(random_images(height=48, width=80))
    assert tuple(outputs["logits"].shape) == (2, 48, 80, 4)
    assert tuple(outputs["logits_high"].shape) == (2, 2, 3, 4)


@pytest.mark.slow
def test_output_stride_2_uses_the_stride_2_level_or_the_upsampler_image_stem():
    model = build_model(tiny_model_config(backbone="keras_cv:MobileNetV3Backbone", output_stride=2))
    assert tuple(model(random_images())["logits"].shape) == (2, 64, 64, 4)
    assert not [v for v in model.weights if "image_stem" in v.path]
    # keras-cv's ResNet has no stride-2 level: the upsampler makes S1 with its own image stem.
    model = build_model(_config("keras_cv:ResNetBackbone", output_stride=2))
    assert "S1" not in model.backbone.feature_strides
    assert [v for v in model.variable_groups()["upsampler"] if "image_stem" in v.path]
    assert tuple(model(random_images())["logits"].shape) == (2, 64, 64, 4)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(backbone="keras_cv:NoSuchBackbone"), "keras_cv has no backbone class 'NoSuchBackbone'"),
        (
            dict(backbone="keras_cv:MiTBackbone", backbone_kwargs='{"input_shape": [64, 96, 3]}'),
            "only square fixed sizes",
        ),
        (
            dict(backbone="keras_cv:MiTBackbone", backbone_kwargs='{"input_shape": [null, null, 3]}'),
            "needs a fixed square input",
        ),
        (
            dict(backbone="keras_cv:ResNetBackbone", backbone_kwargs='{"no_such_argument": 1}'),
            "does not take the arguments \\['no_such_argument'\\]",
        ),
        (dict(backbone="keras_cv:ViTDetBackbone"), "No default arguments for keras_cv:ViTDetBackbone"),
        (
            dict(backbone="keras_cv:ViTDetBackbone", backbone_kwargs='{"input_shape": [64, 64, 3], "depth": 1}'),
            "ViTDetBackbone exposes no feature pyramid",
        ),
    ],
)
def test_bad_backbone_arguments_are_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        build_model(tiny_model_config(**overrides))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(backbone="tensorflow:ResNet"), "expected '<library>:<ClassName>'"),
        (dict(backbone="keras_cv:ResNetBackbone", backbone_kwargs="[1, 2]"), "backbone_kwargs must be a JSON object"),
        (
            dict(backbone="keras_cv:ResNetBackbone", backbone_kwargs="{stackwise"),
            "backbone_kwargs must be a JSON object",
        ),
        (dict(backbone="keras_cv:ResNetBackbone", backbone_output_stride=16), "needs a ResNet backbone"),
    ],
)
def test_bad_model_configs_fail_at_config_time(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_model_config(**overrides)


def test_backbone_kwargs_are_refused_for_our_own_backbones():
    with pytest.raises(ValueError, match="backbone_kwargs/--backbone_preset_dir are for keras_cv:/keras_hub:"):
        build_backbone("resnet_tiny", backbone_kwargs='{"a": 1}')


def test_local_preset_directory_loads_architecture_and_weights(tmp_path):
    from keras_cv.src.utils.preset_utils import save_to_preset

    original = ExternalBackbone("keras_cv", "ResNetBackbone", TINY["keras_cv:ResNetBackbone"])
    save_to_preset(original.library_backbone, str(tmp_path / "preset"))
    loaded = build_backbone("keras_cv:ResNetBackbone", preset_dir=str(tmp_path / "preset"))
    images = random_images()
    for key, value in original(images).items():
        np.testing.assert_array_equal(value.numpy(), loaded(images)[key].numpy())


def _published_style_preset(directory, include_rescaling=True):
    """A keras-cv preset directory saved as the published ones are (`include_rescaling=True`)."""
    from keras_cv.src.utils.preset_utils import save_to_preset

    arguments = {**TINY["keras_cv:ResNetBackbone"], "stackwise_strides": [1, 2, 2, 2]}
    library_backbone = keras_cv.models.ResNetBackbone(include_rescaling=include_rescaling, **arguments)
    save_to_preset(library_backbone, str(directory))
    return library_backbone


def test_zero_one_gives_a_keras_cv_preset_the_inputs_it_was_trained_on(tmp_path):
    from hfgd_tf.backbones.external import preset_input_normalization
    from hfgd_tf.layers.input_normalization import input_normalization_layer

    library_backbone = _published_style_preset(tmp_path / "preset")
    assert preset_input_normalization("keras_cv:ResNetBackbone", str(tmp_path / "preset")) == "zero_one"
    adapted = build_backbone("keras_cv:ResNetBackbone", preset_dir=str(tmp_path / "preset"))  # without the layer
    images = random_images()  # [0, 255]
    # keras-cv's own model on raw images (it divides by 255 inside) against the adapter after "zero_one".
    c5 = library_backbone.get_layer(library_backbone.pyramid_level_inputs["P5"]).output
    reference = keras.Model(library_backbone.input, c5)(images).numpy()
    features = adapted(input_normalization_layer("zero_one")(images))["C5"].numpy()
    np.testing.assert_allclose(features, reference, rtol=1e-5, atol=1e-5)
    other = adapted(input_normalization_layer("minus_one_one")(images))["C5"].numpy()
    assert np.abs(other - reference).max() > 1e-2


def test_only_a_keras_cv_preset_with_its_rescaling_layer_asks_for_zero_one(tmp_path):
    from hfgd_tf.backbones.external import preset_input_normalization

    _published_style_preset(tmp_path / "without", include_rescaling=False)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    assert preset_input_normalization("keras_cv:ResNetBackbone", str(tmp_path / "without")) is None
    assert preset_input_normalization("keras_cv:ResNetBackbone", str(tmp_path / "broken")) is None
    assert preset_input_normalization("keras_cv:ResNetBackbone", str(tmp_path / "missing")) is None
    assert preset_input_normalization("keras_cv:ResNetBackbone", "") is None
    _published_style_preset(tmp_path / "with")
    assert preset_input_normalization("resnet_tiny", str(tmp_path / "with")) is None


def _keras_hub_converter(scale, offset, **legacy):
    return {
        "module": "keras_hub.src.models.resnet.resnet_image_converter",
        "class_name": "ResNetImageConverter",
        "config": {
            "name": "res_net_image_converter",
            "image_size": [224, 224],
            "scale": scale,
            "offset": offset,
            "interpolation": "bilinear",
            **legacy,
        },
    }


def test_a_keras_hub_preset_asks_for_what_its_image_converter_does(tmp_path, caplog):
    from hfgd_tf.backbones.external import preset_input_normalization

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    cases = {
        "image_converter": (
            "image_converter.json",
            _keras_hub_converter([1 / (255 * s) for s in std], [-m / s for m, s in zip(mean, std)]),
            "imagenet",
        ),
        "task": (
            "preprocessor.json",
            {
                "class_name": "ResNetImageClassifierPreprocessor",
                "config": {"image_converter": _keras_hub_converter(1 / 255, None)},
            },
            "zero_one",
        ),
        "older_names": (
            "image_converter.json",
            _keras_hub_converter(1 / 255, None, mean=mean, variance=[s**2 for s in std]),
            "imagenet",
        ),
        "other": ("image_converter.json", _keras_hub_converter(1 / 255, -0.5), None),
        "unloadable": (
            "image_converter.json",
            _keras_hub_converter([0.1, 0.1, 0.1], None, mean=mean, variance=None),
            None,
        ),
        "backbone_only": ("config.json", {"class_name": "ResNetBackbone", "config": {}}, None),
    }
    for name, (file_name, content, expected) in cases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / file_name).write_text(json.dumps(content))
        assert preset_input_normalization("keras_hub:ResNetBackbone", str(tmp_path / name)) == expected, name
    assert "which no input_normalization reproduces" in caplog.text and "other" in caplog.text


def test_a_preset_name_is_refused_rather_than_downloaded():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "--backbone_preset_dir='resnet50_imagenet' (the flag, or the run's run_config.json when a run is rebuilt) "
            "is not a directory: give the local directory of a preset you downloaded (nothing is downloaded at run time)"
        ),
    ):
        build_backbone("keras_cv:ResNetBackbone", preset_dir="resnet50_imagenet")


def _trainer(tmp_path, data_dir, backbone, preset_dir, normalization, **train):
    from hfgd_tf.data import DataConfig
    from hfgd_tf.evaluation import EvalConfig
    from hfgd_tf.train import OptimizerConfig, TrainConfig, Trainer

    config = tiny_model_config(
        backbone=backbone, backbone_preset_dir=str(preset_dir), num_classes=8, input_normalization=normalization
    )
    return Trainer(
        config,
        DataConfig("synthetic_streets", data_dir, crop_height=64, crop_width=64),
        OptimizerConfig(),
        TrainConfig(checkpoint_dir=str(tmp_path / "run"), batch_size=2, **train),
        EvalConfig(),
    )


@pytest.mark.slow
def test_training_refuses_to_start_a_keras_cv_preset_with_other_inputs_but_resumes(synthetic_records, tmp_path):
    _published_style_preset(tmp_path / "preset")

    def trainer(normalization, **train):
        return _trainer(
            tmp_path, synthetic_records, "keras_cv:ResNetBackbone", tmp_path / "preset", normalization, **train
        )

    message = (
        "keras-cv preset saved with include_rescaling=True: its weights were trained on images divided by 255 "
        "inside the backbone. hfgd_tf builds keras-cv backbones without that layer and normalises inputs in the "
        "segmenter, so give --input_normalization=zero_one (ModelConfig.input_normalization; now 'minus_one_one')"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        trainer("minus_one_one")
    started = trainer("zero_one")  # accepted: constructs without raising
    # Starting from an earlier run's weights: those replace the preset's, trained with that run's inputs.
    weights = str(tmp_path / "earlier.weights.h5")
    started.model.save_weights(weights)
    trainer("minus_one_one", init_weights_path=weights)
    # A run that already trained (here: a checkpoint in its directory) resumes with its own normalisation...
    tf.train.Checkpoint(step=tf.Variable(1)).save(str(tmp_path / "run" / "ckpt"))
    trainer("minus_one_one")
    # ...but not when told to start over from the preset.
    with pytest.raises(ValueError, match=re.escape(message)):
        trainer("minus_one_one", restore_checkpoint=False)


def test_training_refuses_to_start_a_keras_hub_preset_with_other_inputs(synthetic_records, tmp_path):
    # Refused before the backbone is built, so keras-hub (an optional extra) need not be installed.
    (tmp_path / "preset").mkdir()
    (tmp_path / "preset" / "image_converter.json").write_text(json.dumps(_keras_hub_converter(1 / 255, None)))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "is a keras-hub preset whose image converter gives its backbone 'zero_one' inputs, so give "
            "--input_normalization=zero_one (ModelConfig.input_normalization; now 'imagenet')"
        ),
    ):
        _trainer(tmp_path, synthetic_records, "keras_hub:ResNetBackbone", tmp_path / "preset", "imagenet")


def test_config_round_trip_rebuilds_the_same_architecture():
    config = _config("keras_cv:ResNetBackbone")
    rebuilt = ModelConfig(**json.loads(json.dumps(dataclasses.asdict(config))))
    assert rebuilt == config
    first, second = build_model(config), build_model(rebuilt)
    assert [v.shape for v in first.weights] == [v.shape for v in second.weights]
    backbone = first.backbone
    assert ExternalBackbone.from_config(backbone.get_config()).count_params() == backbone.count_params()


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["keras_cv:MiTBackbone"])  # the fixed-size case; ResNet's path is the same
def test_two_step_training_and_export(backbone, synthetic_records, tmp_path):
    from hfgd_tf.data import DataConfig
    from hfgd_tf.evaluation import EvalConfig
    from hfgd_tf.evaluation.inference import predict_logits
    from hfgd_tf.export.saved_model import export_saved_model
    from hfgd_tf.train import OptimizerConfig, TrainConfig, Trainer

    trainer = Trainer(
        _config(backbone, num_classes=8),
        DataConfig("synthetic_streets", synthetic_records, crop_height=64, crop_width=64, shuffle_buffer=8),
        OptimizerConfig(initial_lr=0.05),
        TrainConfig(
            checkpoint_dir=str(tmp_path / "run"),
            batch_size=2,
            train_epoch=1,
            epoch_steps=2,
            log_every_steps=1,
            evaluate_every_epoch=False,
        ),
        EvalConfig(eval_batch_size=2),
    )
    before = [v.numpy().copy() for v in trainer.model.backbone.trainable_variables]
    trainer.train()
    assert int(trainer.step.numpy()) == 2
    after = trainer.model.backbone.trainable_variables
    assert any(np.any(a != b.numpy()) for a, b in zip(before, after))  # the high-level loss trains it
    export_dir = export_saved_model(trainer.model, str(tmp_path / "export"), [str(i) for i in range(8)])
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype(np.uint8)
    expected = tf.argmax(predict_logits(trainer.model, tf.constant(images, tf.float32)), -1).numpy()
    np.testing.assert_array_equal(serve(images=tf.constant(images))["class_ids"].numpy(), expected)


def test_backbone_weights_path_loads_by_variable_path(tmp_path):
    from hfgd_tf.backbones import save_weights_by_name

    kwargs = json.dumps(TINY["keras_cv:ResNetBackbone"])
    original = build_backbone("keras_cv:ResNetBackbone", backbone_kwargs=kwargs)
    path = str(tmp_path / "backbone.weights.h5")
    save_weights_by_name(original, path)
    loaded = build_backbone("keras_cv:ResNetBackbone", backbone_kwargs=kwargs, weights_path=path)
    images = random_images()
    np.testing.assert_array_equal(original(images)["C5"].numpy(), loaded(images)["C5"].numpy())


@pytest.mark.slow
def test_variable_paths_do_not_depend_on_what_was_built_before():
    # keras-cv's MiT names many layers automatically (conv2d_7); weights files load by these paths.
    first = ExternalBackbone("keras_cv", "MiTBackbone", TINY["keras_cv:MiTBackbone"])
    second = ExternalBackbone("keras_cv", "MiTBackbone", TINY["keras_cv:MiTBackbone"])
    assert [v.path for v in first.weights] == [v.path for v in second.weights]
