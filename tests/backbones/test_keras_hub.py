"""HFGD on keras-hub backbones (`--backbone=keras_hub:<ClassName>`), the optional extra `.[keras_hub]`.

Skipped when keras-hub is not installed (the default install does not need it).
"""

import json

import numpy as np
import pytest

from hfgd_tf.backbones import build_backbone
from hfgd_tf.backbones.external import ExternalBackbone
from hfgd_tf.models import build_model
from tests.conftest import random_images, tiny_model_config
from tests.models.test_hfgd import _losses, _nonzero

pytest.importorskip("keras_hub", reason="keras-hub is not installed (optional extra: pip install -e .[keras_hub])")

TINY = {
    # keras-hub's ResNet wants 64 filters in its first stage
    "keras_hub:ResNetBackbone": {
        "input_conv_filters": [8],
        "stackwise_num_filters": [64, 8, 16, 16],
        "stackwise_num_blocks": [1, 1, 1, 1],
    },
    "keras_hub:MiTBackbone": {
        "layerwise_depths": [1, 1, 1, 1],
        "hidden_dims": [8, 8, 20, 16],
        "image_shape": [64, 64, 3],
    },
}


@pytest.mark.parametrize("backbone", sorted(TINY))
def test_hfgd_shapes_and_exact_zero_gradient_isolation(backbone):
    model = build_model(tiny_model_config(backbone=backbone, backbone_kwargs=json.dumps(TINY[backbone])))
    assert model.backbone.feature_strides == {"C2": 4, "C3": 8, "C4": 16, "C5": 32}
    outputs = model(random_images())
    assert tuple(outputs["logits"].shape) == (2, 64, 64, 4) and tuple(outputs["logits_high"].shape) == (2, 2, 2, 4)
    tape, loss_up, loss_high = _losses(model)
    groups = model.variable_groups()
    for part in ("backbone", "context_encoder", "class_kernels"):
        assert _nonzero(tape, loss_up, groups[part]) == 0, part
        assert _nonzero(tape, loss_high, groups[part]) > 0, part
    assert _nonzero(tape, loss_up, groups["upsampler"]) == len(groups["upsampler"])


def test_mit_without_a_fixed_square_size_is_refused():
    with pytest.raises(ValueError, match="keras_hub:MiTBackbone needs a fixed square input.*image_shape"):
        ExternalBackbone("keras_hub", "MiTBackbone", {**TINY["keras_hub:MiTBackbone"], "image_shape": [None, None, 3]})


def test_local_preset_directory(tmp_path):
    original = ExternalBackbone("keras_hub", "ResNetBackbone", TINY["keras_hub:ResNetBackbone"])
    original.library_backbone.save_to_preset(str(tmp_path / "preset"))
    loaded = build_backbone("keras_hub:ResNetBackbone", preset_dir=str(tmp_path / "preset"))
    images = random_images()
    for key, value in original(images).items():
        np.testing.assert_array_equal(value.numpy(), loaded(images)[key].numpy())
