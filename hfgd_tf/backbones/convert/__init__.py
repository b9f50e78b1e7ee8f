"""Pretrained-checkpoint converters: a checkpoint the user already has -> our by-path `.weights.h5`.

One module per source family holds a name table from our variable paths to the source's tensor names
(`resnet`, `convnext`, `swin`); `common` holds the engine that fills the backbone, refuses what it cannot
account for, and reports every tensor. Nothing is downloaded and torch is not needed: PyTorch state dicts
are read as `.safetensors` / `.npz` with numpy; Keras files are loaded into the Keras source model
(built with `weights=None`) and read by layer name.

    backbone = build_backbone("resnet50", **target_overrides("timm", "resnet50"))
    report = convert_checkpoint("resnet50.safetensors", "timm", backbone)
    write_converted(backbone, "resnet50.weights.h5", "resnet50.safetensors")
"""

import os

from hfgd_tf.backbones.convert import convnext, resnet, swin
from hfgd_tf.backbones.convert.common import (
    ConversionReport,
    apply_table,
    check_layout,
    read_layout,
    read_tensors,
    strip_prefixes,
    write_converted,
)
from hfgd_tf.files import is_file, local_copy

FORMATS = ("timm", "torchvision", "keras_applications", "keras_cv")
_KERAS_BN_EPSILON = 1.001e-5  # keras.applications / keras-cv ResNets


def _family(backbone):
    kind = type(backbone).__name__
    families = {"ResNetBackbone": "resnet", "ConvNeXtBackbone": "convnext", "SwinBackbone": "swin"}
    if kind not in families:
        raise ValueError(f"No converter for backbone class {kind}")
    return families[kind]


def target_overrides(source_format, backbone_name):
    """Backbone constructor arguments the source format needs so that outputs match the source.

    PyTorch checkpoints need our defaults (symmetric padding, BN epsilon 1e-5, stride in the 3x3 conv).
    Keras ResNets stride in the 1x1 conv and use BN epsilon 1.001e-5; keras-cv pads strided convs "same".

    Returns:
        dict of constructor arguments (norm as a partial spec with its epsilon).
    """
    if source_format not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}. Received: {source_format!r}")
    is_resnet = backbone_name.startswith("resnet")
    if source_format in ("timm", "torchvision"):
        return {"norm": {"epsilon": 1e-5}} if is_resnet else {}
    if not is_resnet:
        if source_format == "keras_cv" or not backbone_name.startswith("convnext"):
            raise ValueError(
                f"--format={source_format} converts ResNets{' and ConvNeXt' if source_format == 'keras_applications' else ''}"
                f"; received --backbone={backbone_name!r}"
            )
        return {}
    if backbone_name.rstrip("cd") != backbone_name:
        raise ValueError(f"Keras ResNets have the standard 7x7 stem; --backbone={backbone_name!r} has a deep stem")
    overrides = {"stride_in_1x1": True, "norm": {"epsilon": _KERAS_BN_EPSILON}, "stem_type": "standard"}
    if source_format == "keras_cv":
        overrides["padding"] = "same"
    return overrides


def _keras_source_tensors(path, source_format, backbone):
    """Loads a Keras weights file into the matching Keras model and returns `{layer/variable: array}`."""
    if not is_file(path):
        raise ValueError(f"--source file not found: {path!r}")
    if not path.endswith(".h5"):
        raise ValueError(f"--format={source_format} reads a Keras .h5 or .weights.h5 file. Received: {path!r}")
    errors = []
    for model_fn in _keras_candidates(source_format, backbone):
        try:
            model = model_fn()
            with local_copy(path) as local:  # Keras reads a local file only
                model.load_weights(local)
        except (ValueError, KeyError, OSError) as error:
            errors.append(str(error).splitlines()[0][:200])
            continue
        tensors = {}
        for layer in _all_layers(model):
            for variable in layer.weights:
                # keras.applications' LayerScale creates its one weight unnamed ("variable_N"): it is gamma.
                name = "gamma" if type(layer).__name__ == "LayerScale" else variable.name
                tensors[f"{layer.name}/{name}"] = variable.numpy()
        return tensors
    raise ValueError(
        f"{path!r} does not load into any {source_format} model matching {backbone.name!r}: " + " | ".join(errors)
    )


def _all_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
        else:
            yield layer


def _keras_candidates(source_format, backbone):
    import keras

    family = _family(backbone)
    if source_format == "keras_cv":
        import keras_cv

        blocks = list(backbone.stagewise_num_blocks)
        filters = list(backbone.stagewise_num_filters)
        block_type = "block" if backbone.block_type == "bottleneck" else "basic_block"
        return [
            lambda rescaling=rescaling: keras_cv.models.ResNetBackbone(
                stackwise_filters=filters,
                stackwise_blocks=blocks,
                stackwise_strides=[1, 2, 2, 2],
                include_rescaling=rescaling,
                block_type=block_type,
            )
            for rescaling in (False, True)
        ]
    if family == "resnet":
        builders = {(3, 4, 6, 3): keras.applications.ResNet50, (3, 4, 23, 3): keras.applications.ResNet101}
        builder = builders.get(tuple(backbone.stagewise_num_blocks))
        if builder is None or backbone.block_type != "bottleneck":
            raise ValueError("--format=keras_applications converts ResNet50 and ResNet101 (bottleneck 3-4-6-3, 3-4-23-3)")
        return [
            lambda: builder(weights=None, include_top=False, input_shape=(None, None, 3)),
            lambda: builder(weights=None, include_top=True),
        ]
    if family == "convnext":
        builder = getattr(keras.applications, f"ConvNeXt{backbone.variant.capitalize()}")
        return [
            lambda top=top, pre=pre: builder(
                weights=None, include_top=top, include_preprocessing=pre, **({} if top else {"input_shape": (None, None, 3)})
            )
            for top in (False, True)
            for pre in (True, False)
        ]
    raise ValueError(f"--format={source_format} does not convert {type(backbone).__name__}")


_TABLES = {
    ("resnet", "torch"): resnet.torch_table,
    ("resnet", "keras_applications"): resnet.keras_applications_table,
    ("resnet", "keras_cv"): resnet.keras_cv_table,
    ("convnext", "torch"): convnext.torch_table,
    ("convnext", "keras_applications"): convnext.keras_applications_table,
    ("swin", "torch"): swin.torch_table,
}


def convert_checkpoint(source_path, source_format, backbone):
    """Fills `backbone` from the checkpoint at `source_path`.

    Args:
        source_path: str. `.safetensors` / `.npz` state dict (timm, torchvision), or a Keras `.h5` /
            `.weights.h5` (keras_applications, keras_cv).
        source_format: str. One of `FORMATS`.
        backbone: a built backbone of the matching architecture (see `target_overrides`).

    Returns:
        ConversionReport.

    Raises:
        ValueError: unreadable file, unsupported combination, missing / extra / mis-shaped tensors.
    """
    if source_format not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}. Received: {source_format!r}")
    family = _family(backbone)
    style = "torch" if source_format in ("timm", "torchvision") else source_format
    if (family, style) not in _TABLES:
        raise ValueError(f"--format={source_format} has no converter for {type(backbone).__name__}")
    if style == "torch":
        tensors = strip_prefixes(read_tensors(source_path))
    else:
        tensors = _keras_source_tensors(source_path, source_format, backbone)
    table, ignore = _TABLES[(family, style)](backbone, tensors)
    return apply_table(backbone, tensors, table, ignore, os.path.basename(source_path))


__all__ = [
    "FORMATS",
    "ConversionReport",
    "check_layout",
    "convert_checkpoint",
    "read_layout",
    "target_overrides",
    "write_converted",
]
