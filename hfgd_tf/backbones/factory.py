"""`build_backbone`: a preset name (`presets.BACKBONE_PRESETS`) or `keras_cv:` / `keras_hub:` class -> backbone."""

from hfgd_tf.backbones.external import build_external_backbone, parse_backbone_name
from hfgd_tf.backbones.loading import load_backbone_weights
from hfgd_tf.backbones.presets import BACKBONE_PRESETS
from hfgd_tf.backbones.resnet import ResNetBackbone

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


def build_backbone(
    name, output_stride=32, norm=None, weights_path=None, backbone_kwargs=None, preset_dir="", **overrides
):
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
            raise ValueError(
                f"Backbone {name!r} supports only output_stride=32. Received: backbone_output_stride={output_stride}"
            )
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
