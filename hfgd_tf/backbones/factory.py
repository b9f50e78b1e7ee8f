"""Named backbone presets (architectures only; no weights are downloaded) and `build_backbone`."""

import warnings

import h5py

from hfgd_tf.backbones.convert import unconverted_file_message
from hfgd_tf.backbones.convert.common import check_layout, describe_tensors
from hfgd_tf.backbones.convnext import ConvNeXtBackbone
from hfgd_tf.backbones.external import build_external_backbone, parse_backbone_name
from hfgd_tf.backbones.resnet import ResNetBackbone
from hfgd_tf.backbones.swin import SWIN_VARIANTS, SwinBackbone
from hfgd_tf.backbones.weights import FORMAT, FORMAT_ATTRIBUTE, load_weights_by_name
from hfgd_tf.files import is_file, local_copy

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
# Only ResNets take an output stride other than 32 (dilation); the others are fixed at 32.
DILATABLE = (ResNetBackbone,)


def supports_dilation(name):
    """Whether preset `name` can run at output stride 16 or 8."""
    return name in BACKBONE_PRESETS and BACKBONE_PRESETS[name][0] in DILATABLE


def check_backbone_name(name):
    """Raises a ValueError unless `name` is a preset or `keras_cv:<Class>` / `keras_hub:<Class>`."""
    if parse_backbone_name(name) is None and name not in BACKBONE_PRESETS:
        raise ValueError(
            f"Unknown backbone. Allowed: {sorted(BACKBONE_PRESETS)} or keras_cv:<ClassName> / keras_hub:<ClassName>. "
            f"Received: backbone={name!r}"
        )


def build_backbone(name, output_stride=32, norm=None, weights_path=None, backbone_kwargs=None, preset_dir="", **overrides):
    """Builds a backbone preset, or a keras-cv / keras-hub backbone (`hfgd_tf.backbones.external`).

    Args:
        name: str. A key of `BACKBONE_PRESETS`, or `keras_cv:<ClassName>` / `keras_hub:<ClassName>`.
        output_stride: int. Stride of C5 (32, 16 or 8). Defaults to 32.
        norm: str or dict. See `hfgd_tf.layers.normalization`.
        weights_path: str or None. A local Keras `.weights.h5` file saved from the same architecture;
            loaded by layer path. Nothing is downloaded.
        backbone_kwargs: dict or JSON str. keras-cv/keras-hub constructor arguments over the class's
            defaults (`hfgd_tf.backbones.external`); only for those backbones.
        preset_dir: str. A local keras-cv/keras-hub preset directory; only for those backbones.
        **overrides: constructor arguments replacing the preset's.

    Returns:
        A backbone `keras.Model`.

    Raises:
        ValueError: unknown name or a weights file that does not exist or does not match.
    """
    check_backbone_name(name)
    if parse_backbone_name(name) is not None:
        if output_stride != 32:
            raise ValueError(f"Backbone {name!r} supports only output_stride=32. Received: backbone_output_stride={output_stride}")
        return build_external_backbone(name, backbone_kwargs, preset_dir, weights_path)
    if backbone_kwargs or preset_dir:
        raise ValueError(
            f"--backbone_kwargs/--backbone_preset_dir are for keras_cv:/keras_hub: backbones, not {name!r}"
        )
    cls, arguments = BACKBONE_PRESETS[name]
    if output_stride != 32 and not supports_dilation(name):
        raise ValueError(
            f"Backbone {name!r} supports only output_stride=32 (dilation is implemented for ResNets). "
            f"Received: backbone_output_stride={output_stride}"
        )
    arguments = {**arguments, "norm": norm, **overrides}
    if supports_dilation(name):
        arguments["output_stride"] = output_stride
    backbone = cls(**arguments, name=name)
    if weights_path:
        load_backbone_weights(backbone, weights_path)
    return backbone


def load_backbone_weights(backbone, weights_path):
    """Loads a `.weights.h5` (any `tf.io.gfile` path: local, gs://, ...) into `backbone` by variable path (see `hfgd_tf.backbones.weights`).

    Raises:
        ValueError: the file is missing, not a `.weights.h5`, or does not match; the message lists the
            missing, unexpected and wrongly shaped weights, or (files from `scripts/convert_weights.py`)
            the layout settings (padding, BN epsilon, stem...) that differ from the ones converted for.
    """
    if not is_file(weights_path):
        raise ValueError(f"Backbone weights file not found: {weights_path!r} (expected a Keras .weights.h5 file)")
    ours = isinstance(backbone, (ResNetBackbone, ConvNeXtBackbone, SwinBackbone))
    if not weights_path.endswith(".weights.h5"):
        if ours:
            raise ValueError(f"Backbone weights must be a '.weights.h5' file: {unconverted_file_message(weights_path, backbone.name)}")
        raise ValueError(f"Backbone weights must be a Keras '.weights.h5' file. Received: {weights_path!r}")
    if _check_keras_format_file(backbone, weights_path, ours):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Keras warns per object it skips; the error says it all
                return load_weights_by_name(backbone, weights_path)
        except ValueError as error:
            if ours:  # as many arrays as weights, by chance: still not a file of this backbone
                raise ValueError(unconverted_file_message(weights_path, backbone.name)) from error
            raise
    check_layout(backbone, weights_path)
    return load_weights_by_name(backbone, weights_path)


def _check_keras_format_file(backbone, weights_path, ours):
    """Whether `weights_path` is a Keras-format file (not by variable path); refuses one that cannot be the
    same model saved by Keras.

    Such a file loads positionally, so it must hold exactly one array per backbone weight; anything else is a
    checkpoint of another model (typically a pretrained source file given without converting it), and Keras'
    own error would be a long list of objects that could not be loaded.
    """
    with local_copy(weights_path) as local:  # h5py reads a local file only
        with h5py.File(local, "r") as handle:
            if handle.attrs.get(FORMAT_ATTRIBUTE) == FORMAT:
                return False
        count = len(describe_tensors(local))
    if count == len(backbone.weights):
        return True
    if ours:
        raise ValueError(unconverted_file_message(weights_path, backbone.name))
    raise ValueError(
        f"{weights_path!r} is a Keras-format weights file of another model: it holds {count} arrays, "
        f"{backbone.name!r} has {len(backbone.weights)} weights (Keras-format files load by position)"
    )
