"""Named backbone presets: architectures only (no weights are downloaded)."""

from hfgd_tf.backbones.convnext import ConvNeXtBackbone
from hfgd_tf.backbones.resnet import ResNetBackbone
from hfgd_tf.backbones.swin import SWIN_VARIANTS, SwinBackbone

# name -> (class, constructor arguments). Weights, when wanted, come from a local file. The ResNet
# names are those of the ImageNet checkpoints whose layout each preset reproduces (timm naming):
# `resnet50` torchvision/timm (7x7 stem), `resnet50c` deep stem (mmseg ResNetV1c), `resnet50d` deep stem
# + average-pool shortcut; `scripts/convert_weights.py` turns such a checkpoint into a weights file.
_BOTTLENECK_50 = dict(stagewise_num_blocks=(3, 4, 6, 3), block_type="bottleneck")
_BOTTLENECK_101 = dict(stagewise_num_blocks=(3, 4, 23, 3), block_type="bottleneck")
_STEMS = {"": dict(stem_type="standard"), "c": dict(stem_type="deep"), "d": dict(stem_type="deep", avg_down=True)}
BACKBONE_PRESETS = {
    **{f"resnet50{k}": (ResNetBackbone, {**_BOTTLENECK_50, **stem}) for k, stem in _STEMS.items()},
    **{f"resnet101{k}": (ResNetBackbone, {**_BOTTLENECK_101, **stem}) for k, stem in _STEMS.items()},
    "resnet18": (ResNetBackbone, dict(stagewise_num_blocks=(2, 2, 2, 2), block_type="basic", stem_type="standard")),
    # Small enough to train in minutes on a laptop CPU: the embedded demo and the tests use it.
    "resnet_tiny": (
        ResNetBackbone,
        dict(
            stagewise_num_blocks=(1, 1, 1, 1),
            stagewise_num_filters=(16, 32, 64, 128),
            block_type="basic",
            stem_type="deep",
            stem_num_filters=16,
        ),
    ),
    "convnext_tiny": (ConvNeXtBackbone, dict(variant="tiny")),
    "convnext_small": (ConvNeXtBackbone, dict(variant="small")),
    "convnext_base": (ConvNeXtBackbone, dict(variant="base")),
    "convnext_large": (ConvNeXtBackbone, dict(variant="large")),
    "swin_tiny": (SwinBackbone, dict(SWIN_VARIANTS["tiny"])),
    "swin_small": (SwinBackbone, dict(SWIN_VARIANTS["small"])),
    "swin_base": (SwinBackbone, dict(SWIN_VARIANTS["base"])),
    "swin_large": (SwinBackbone, dict(SWIN_VARIANTS["large"])),
    # Small Swin for tests and CPU experiments (window 4 suits 64-256 px inputs).
    "swin_tiny_test": (SwinBackbone, dict(embed_dim=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4), window_size=4)),
}
