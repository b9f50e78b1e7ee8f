"""ConvNeXt name tables: timm, the official (facebookresearch) checkpoints, keras.applications.

Our variable paths (without the `<backbone name>_` prefix) are keras.applications' layer names:
`stem_conv`, `stem_layernorm`, `downsampling_{layernorm,conv}_{i}`,
`stage_{i}_block_{j}_{depthwise_conv,layernorm,pointwise_conv_1,pointwise_conv_2,layer_scale}`.
"""

import re

from hfgd_tf.backbones.convert.common import conv_kernel, dense_kernel, identity

_PATH = re.compile(
    r"^(stem_conv|stem_layernorm|downsampling_(layernorm|conv)_(\d)|"
    r"stage_(\d)_block_(\d+)_(depthwise_conv|layernorm|pointwise_conv_1|pointwise_conv_2|layer_scale))/(\w+)$"
)
_TORCH_PARAM = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}


def torch_table(backbone, tensors):
    """timm names (`stem.0`, `stages.i.downsample.{0,1}`, `stages.i.blocks.j.{conv_dw,norm,mlp.fc1,mlp.fc2,gamma}`)
    and the official ones (`downsample_layers.i.{0,1}`, `stages.i.j.{dwconv,norm,pwconv1,pwconv2,gamma}`)."""
    official = "downsample_layers.0.0.weight" in tensors
    block_names = (
        {"depthwise_conv": "dwconv", "layernorm": "norm", "pointwise_conv_1": "pwconv1", "pointwise_conv_2": "pwconv2"}
        if official
        else {
            "depthwise_conv": "conv_dw",
            "layernorm": "norm",
            "pointwise_conv_1": "mlp.fc1",
            "pointwise_conv_2": "mlp.fc2",
        }
    )

    def table(relative):
        match = _PATH.match(relative)
        if not match:
            return None
        layer, down_kind, down_index, stage, block, block_layer, variable = match.groups()
        if layer == "stem_conv" or layer == "stem_layernorm":
            module = ("downsample_layers.0." if official else "stem.") + ("0" if layer == "stem_conv" else "1")
            transform = conv_kernel if variable == "kernel" else identity
        elif down_kind:
            stage_index = int(down_index) + 1
            base = f"downsample_layers.{stage_index}" if official else f"stages.{stage_index}.downsample"
            module = f"{base}.{'0' if down_kind == 'layernorm' else '1'}"
            transform = conv_kernel if variable == "kernel" else identity
        else:
            base = f"stages.{stage}.{block}" if official else f"stages.{stage}.blocks.{block}"
            if block_layer == "layer_scale":
                return f"{base}.gamma", lambda gamma: gamma.reshape(-1)
            module = f"{base}.{block_names[block_layer]}"
            transform = identity
            if variable == "kernel":
                transform = conv_kernel if block_layer == "depthwise_conv" else dense_kernel
        return f"{module}.{_TORCH_PARAM[variable]}", transform

    def ignore(name):
        if name.startswith("head."):
            return "classification head"
        if name in ("norm.weight", "norm.bias"):
            return "classification head (norm of the pooled features)"
        return None

    return table, ignore


def keras_applications_table(backbone, tensors):
    """keras.applications ConvNeXt{Tiny,...}: the same layer names under the source model's prefix."""
    prefixes = {name.split("_stem_conv/")[0] for name in tensors if "_stem_conv/" in name}
    if len(prefixes) != 1:
        raise ValueError(f"Not a keras.applications ConvNeXt: no single '<name>_stem_conv' layer ({sorted(prefixes)})")
    prefix = prefixes.pop()

    def table(relative):
        return (f"{prefix}_{relative}", identity) if _PATH.match(relative) else None

    def ignore(name):
        if "_head_" in name:
            return "classification head"
        if name.startswith("layer_normalization"):
            return "classification head (norm of the pooled features)"
        return None

    return table, ignore
