"""Named backbone presets (architectures only; no weights are downloaded) and `build_backbone`."""

import os

from hfgd_tf.backbones.resnet import ResNetBackbone

# name -> (class, constructor arguments). Weights, when wanted, come from a local file.
BACKBONE_PRESETS = {
    "resnet50": (ResNetBackbone, dict(stagewise_num_blocks=(3, 4, 6, 3), block_type="bottleneck")),
    "resnet101": (ResNetBackbone, dict(stagewise_num_blocks=(3, 4, 23, 3), block_type="bottleneck")),
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
}


def build_backbone(name, output_stride=32, norm=None, weights_path=None, **overrides):
    """Builds a backbone preset.

    Args:
        name: str. A key of `BACKBONE_PRESETS`.
        output_stride: int. Stride of C5 (32, 16 or 8). Defaults to 32.
        norm: str or dict. See `hfgd_tf.layers.normalization`.
        weights_path: str or None. A local Keras `.weights.h5` file saved from the same architecture;
            loaded by layer path. Nothing is downloaded.
        **overrides: constructor arguments replacing the preset's.

    Returns:
        A backbone `keras.Model`.

    Raises:
        ValueError: unknown name or a weights file that does not exist or does not match.
    """
    if name not in BACKBONE_PRESETS:
        raise ValueError(f"Unknown backbone. Allowed: {sorted(BACKBONE_PRESETS)}. Received: backbone={name!r}")
    cls, arguments = BACKBONE_PRESETS[name]
    arguments = {**arguments, "output_stride": output_stride, "norm": norm, **overrides}
    backbone = cls(**arguments, name=name)
    if weights_path:
        load_backbone_weights(backbone, weights_path)
    return backbone


def load_backbone_weights(backbone, weights_path):
    """Loads a `.weights.h5` file into `backbone`, with an error that says what did not match."""
    if not os.path.isfile(weights_path):
        raise ValueError(f"Backbone weights file not found: {weights_path!r} (expected a Keras .weights.h5 file)")
    if not weights_path.endswith(".weights.h5"):
        raise ValueError(f"Backbone weights must be a Keras '.weights.h5' file. Received: {weights_path!r}")
    try:
        backbone.load_weights(weights_path)
    except ValueError as error:
        raise ValueError(
            f"Backbone weights in {weights_path!r} do not match backbone {backbone.name!r} "
            f"({len(backbone.weights)} weights expected): {error}"
        ) from error
