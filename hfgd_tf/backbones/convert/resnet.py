"""ResNet name tables: PyTorch state dicts (timm / torchvision / mmseg), keras.applications and keras-cv.

Our variable paths (without the `<backbone name>_` prefix): `stem_conv{1,2,3}/{conv,norm}/...` and
`c{2..5}_block{b}_{conv1,conv2,conv3,shortcut}/{conv,norm}/...`.
"""

import re

from hfgd_tf.backbones.convert.common import conv_kernel, identity

_PATH = re.compile(r"^(?:stem_conv(\d)|c(\d)_block(\d+)_(conv\d|shortcut))/(conv|norm)/(\w+)$")
_TORCH_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def _names_table(stem_names, block_names, source):
    """A name table from a source's naming rules.

    `stem_names(index)` and `block_names(level, block, unit)` give the source's (conv, norm) layer names for
    one of our stem convolutions or block units; `source(conv, norm, kind, variable)` gives the source
    tensor's name (or names) and the transform to our layout for our variable `kind`/`variable`.
    """

    def table(relative):
        match = _PATH.match(relative)
        if not match:
            return None
        stem, level, block, unit, kind, variable = match.groups()
        conv, norm = stem_names(int(stem)) if stem else block_names(int(level), int(block), unit)
        return source(conv, norm, kind, variable)

    return table


def torch_table(backbone, tensors):
    """timm / torchvision names (`conv1`, `bn1`, `layer1.0.conv1`...), timm deep stem `conv1.{0,1,3,4,6}`,
    mmseg ResNetV1c/V1d stem `stem.{0,1,3,4,6,7}`; shortcut `downsample.{0,1}` or `.{1,2}` (avg-down)."""
    mmseg_stem = "stem.0.weight" in tensors
    if backbone.stem_type == "deep":
        stem = (
            {1: ("stem.0", "stem.1"), 2: ("stem.3", "stem.4"), 3: ("stem.6", "stem.7")}
            if mmseg_stem
            else {1: ("conv1.0", "conv1.1"), 2: ("conv1.3", "conv1.4"), 3: ("conv1.6", "bn1")}
        )
    else:
        stem = {1: ("conv1", "bn1")}
    shortcut = ("downsample.1", "downsample.2") if backbone.avg_down else ("downsample.0", "downsample.1")

    def block_names(level, block, unit):
        if unit == "shortcut":
            return tuple(f"layer{level - 1}.{block}.{name}" for name in shortcut)
        return f"layer{level - 1}.{block}.{unit}", f"layer{level - 1}.{block}.bn{unit[-1]}"

    def source(conv, norm, kind, variable):
        if kind == "conv":
            return f"{conv}.weight", conv_kernel
        return f"{norm}.{_TORCH_BN[variable]}", identity

    def ignore(name):
        if name.endswith("num_batches_tracked"):
            return "BatchNorm batch counter"
        if name.startswith(("fc.", "head.")):
            return "classification head"
        return None

    return _names_table(stem.__getitem__, block_names, source), ignore


def _keras_table(stem_conv, stem_norm, block_prefix, fold_bias):
    """Keras ResNet v1 names: `conv1_conv`, `conv1_bn`, `<block_prefix(level, block)>_{0,1,2,3}_{conv,bn}`."""

    def block_names(level, block, unit):
        index = "0" if unit == "shortcut" else unit[-1]
        return f"{block_prefix(level, block)}_{index}_conv", f"{block_prefix(level, block)}_{index}_bn"

    def source(conv, norm, kind, variable):
        if kind == "conv":
            return f"{conv}/kernel", identity
        if variable == "moving_mean" and fold_bias:
            # BN(conv(x) + b) = BN'(conv(x)) with moving_mean' = moving_mean - b: exact.
            return (f"{norm}/moving_mean", f"{conv}/bias"), lambda mean, bias: mean - bias
        return f"{norm}/{variable}", identity

    def ignore(name):
        if name.startswith(("predictions/", "probs/", "fc")):
            return "classification head"
        return None

    return _names_table(lambda index: (stem_conv, stem_norm), block_names, source), ignore


def keras_applications_table(backbone, tensors):
    """keras.applications ResNet50/101 (v1: stride in the 1x1 conv, conv biases folded into BN)."""
    return _keras_table("conv1_conv", "conv1_bn", lambda level, block: f"conv{level}_block{block + 1}", fold_bias=True)


def keras_cv_table(backbone, tensors):
    """keras-cv ResNetBackbone (v1, no conv biases)."""
    return _keras_table(
        "conv1_conv", "conv1_bn", lambda level, block: f"v2_stack_{level - 2}_block{block + 1}", fold_bias=False
    )
