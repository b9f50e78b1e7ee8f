"""ModelConfig's backbone layout fields reach the backbone; bad values name the field."""

import pytest

from hfgd_tf.backbones import build_backbone
from hfgd_tf.models import ModelConfig


def test_resnet_layout_fields_reach_the_backbone():
    config = ModelConfig(
        num_classes=3,
        backbone="resnet_tiny",
        backbone_padding="same",
        backbone_bn_epsilon=1.001e-5,
        backbone_stem_type="standard",
        backbone_stem_width=8,
        backbone_shortcut="avg_down",
        backbone_stride_in_1x1=True,
        backbone_first_block_dilation="stage",
        backbone_multi_grid=(1.0, 2.0),
    )
    backbone = build_backbone(config.backbone, **config.backbone_arguments)
    layout = backbone.get_config()
    assert layout["padding"] == "same" and layout["norm"]["epsilon"] == 1.001e-5
    assert layout["stem_type"] == "standard" and layout["stem_num_filters"] == 8 and layout["avg_down"]
    assert layout["stride_in_1x1"] and layout["first_block_dilation"] == "stage" and layout["multi_grid"] == (1, 2)
    assert "drop_path_rate" not in config.backbone_arguments
    # Empty / zero keep the preset's choices; the decoder keeps its own epsilon.
    preset = ModelConfig(num_classes=3, backbone="resnet50d")
    assert "stem_type" not in preset.backbone_arguments and preset.norm["epsilon"] == 1e-3
    assert preset.backbone_arguments["norm"]["epsilon"] == 1e-5


def test_transformer_backbones_take_drop_path_rate():
    config = ModelConfig(num_classes=3, backbone="swin_tiny_test", drop_path_rate=0.3)
    assert config.backbone_arguments["drop_path_rate"] == 0.3
    assert build_backbone(config.backbone, **config.backbone_arguments).drop_path_rate == 0.3


@pytest.mark.parametrize(
    "field, value",
    [
        ("backbone_padding", "reflect"),
        ("backbone_stem_type", "tiered"),
        ("backbone_shortcut", "pool"),
        ("backbone_first_block_dilation", "first"),
        ("drop_path_rate", 1.0),
        ("backbone_multi_grid", (0,)),
    ],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ModelConfig(num_classes=3, **{field: value})


@pytest.mark.parametrize(
    "backbone, field, value",
    [
        ("swin_tiny", "backbone_stem_type", "deep"),
        ("convnext_tiny", "backbone_padding", "same"),
        ("swin_tiny", "backbone_multi_grid", (1, 2, 4)),
    ],
)
def test_resnet_layout_fields_are_refused_for_other_backbones(backbone, field, value):
    # They would be silently ignored (the converter's layout flags given to a transformer run).
    with pytest.raises(ValueError, match=f"ModelConfig {field}=.*do not apply to backbone '{backbone}'"):
        ModelConfig(num_classes=3, backbone=backbone, **{field: value})
    ModelConfig(num_classes=3, backbone=backbone, backbone_multi_grid=[1])  # defaults (as read from JSON) pass
