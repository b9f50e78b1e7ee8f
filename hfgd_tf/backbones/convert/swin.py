"""Swin name tables: timm (1.0 layout: patch merging at the start of stages 1-3) and the original
Microsoft / timm < 0.9 layout (patch merging at the end of stages 0-2).

Our variable paths (without the `<backbone name>_` prefix): `patch_embed`, `patch_embed_norm`,
`stage{s}_block{b}/{relative_position_bias_table,attention_norm,qkv,projection,mlp_norm,fc1,fc2}`,
`stage{s}_merge/{norm,reduction}`, `c{2..5}_norm`. The final `norm` of a classification Swin is the
LayerNorm on C5, so it fills `c5_norm`; C2..C4 norms start fresh.
"""

import re

from hfgd_tf.backbones.convert.common import conv_kernel, dense_kernel, identity

_PATH = re.compile(
    r"^(?:(patch_embed|patch_embed_norm|c5_norm)|stage(\d)_block(\d+)/(\w+)|stage(\d)_merge/(norm|reduction))/(\w+)$"
    r"|^stage(\d)_block(\d+)/relative_position_bias_table$"
)
_BLOCK = {
    "attention_norm": "norm1",
    "qkv": "attn.qkv",
    "projection": "attn.proj",
    "mlp_norm": "norm2",
    "fc1": "mlp.fc1",
    "fc2": "mlp.fc2",
}
_PARAM = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}


def torch_table(backbone, tensors):
    merge_at_end = any(name.startswith("layers.0.downsample.") for name in tensors)

    def table(relative):
        match = _PATH.match(relative)
        if not match:
            return None
        top, stage, block, layer, merge_stage, merge_layer, variable, bias_stage, bias_block = match.groups()
        if bias_stage is not None:
            return f"layers.{bias_stage}.blocks.{bias_block}.attn.relative_position_bias_table", identity
        if top:
            module = {"patch_embed": "patch_embed.proj", "patch_embed_norm": "patch_embed.norm", "c5_norm": "norm"}[top]
            return f"{module}.{_PARAM[variable]}", conv_kernel if variable == "kernel" else identity
        if merge_stage is not None:
            source_stage = int(merge_stage) - 1 if merge_at_end else int(merge_stage)
            return (
                f"layers.{source_stage}.downsample.{merge_layer}.{_PARAM[variable]}",
                dense_kernel if variable == "kernel" else identity,
            )
        if layer not in _BLOCK:
            return None
        return (
            f"layers.{stage}.blocks.{block}.{_BLOCK[layer]}.{_PARAM[variable]}",
            dense_kernel if variable == "kernel" else identity,
        )

    def ignore(name):
        if name.startswith("head."):
            return "classification head"
        if name.endswith(("relative_position_index", "attn_mask")):
            return "buffer our layers recompute"
        return None

    return table, ignore
