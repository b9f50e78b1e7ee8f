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

import json
import os
import warnings

from hfgd_tf.backbones.convert import convnext, resnet, swin
from hfgd_tf.backbones.convert.common import (
    ConversionReport,
    apply_table,
    check_layout,
    describe_tensors,
    read_layout,
    read_tensors,
    strip_prefixes,
    write_converted,
)
from hfgd_tf.files import is_file, local_copy
from hfgd_tf.layers.input_normalization import normalization_named

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


def source_input_normalization(source_format, backbone_name, source_path=None):
    """The `--input_normalization` that feeds a converted backbone what its source saw in ImageNet training.

    Pretrained weights only compute their features on inputs normalised as in their training; a wrong
    normalisation trains without any error, just worse. Per format (each source's documented preprocessing):
    timm and torchvision divide by 255 and apply ImageNet mean/std (`imagenet`); keras.applications ResNets
    take `preprocess_input`'s "caffe" mode, BGR minus the BGR mean on [0, 255] (`caffe`); keras.applications
    ConvNeXt normalises with ImageNet mean/std inside the model (`imagenet`); keras-cv's pretrained
    ResNetBackbone divides by 255 inside the model (`include_rescaling=True`: `zero_one`). A timm checkpoint
    saved with its `config.json` beside it (the Hugging Face layout) is checked against the mean and std
    recorded there.

    Returns:
        (method, why): `method` one of `INPUT_NORMALIZATIONS`, or None when the recorded mean/std match none;
        `why` a short sentence for the user.
    """
    if source_format not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}. Received: {source_format!r}")
    if source_format == "timm":
        recorded = _timm_recorded_mean_std(source_path)
        if recorded is not None:
            mean, std, config_path = recorded
            scale = [1.0 / (255.0 * s) for s in std]
            offset = [-m / s for m, s in zip(mean, std)]
            method = normalization_named(scale, offset)
            why = f"mean {list(mean)} / std {list(std)} on x / 255, from {config_path}"
            return method, why
        return (
            "imagenet",
            "timm's ImageNet mean/std on x / 255 (pretrained_cfg of its ResNet, ConvNeXt and Swin weights)",
        )
    if source_format == "torchvision":
        return "imagenet", "torchvision's transforms: x / 255, then Normalize(ImageNet mean, std)"
    if source_format == "keras_cv":
        return (
            "zero_one",
            "keras-cv's pretrained ResNetBackbone divides by 255 inside the model (include_rescaling=True)",
        )
    if backbone_name.startswith("convnext"):
        return "imagenet", "keras.applications ConvNeXt normalises with ImageNet mean/std inside the model"
    return "caffe", "keras.applications.resnet.preprocess_input: RGB to BGR, minus the BGR ImageNet mean, no std"


def _timm_recorded_mean_std(source_path):
    """`(mean, std, config path)` from a `config.json` beside a timm checkpoint, or None."""
    if not source_path:
        return None
    config_path = os.path.join(os.path.dirname(os.path.abspath(source_path)), "config.json")
    if not os.path.isfile(config_path):
        return None
    try:
        with open(config_path) as handle:
            config = json.load(handle)
        pretrained = config.get("pretrained_cfg", config)
        mean, std = pretrained["mean"], pretrained["std"]
        if len(mean) != 3 or len(std) != 3:
            return None
        return tuple(float(m) for m in mean), tuple(float(s) for s in std), config_path
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


_KERAS_FILE_HINT = (
    'A .keras file is a whole saved model; save its weights once and convert those: python -c "import keras; '
    "keras.saving.load_model('{path}', compile=False).save_weights('{stem}.weights.h5')\""
)


def _keras_source_tensors(path, source_format, backbone):
    """Loads a Keras weights file into the matching Keras model and returns `{layer/variable: array}`.

    Keras 3 loads a `.weights.h5` holding fewer or more arrays than the model with warnings only (the
    classification head of an `include_top=True` file is dropped in silence, say), so a candidate model is
    tried only when its variable count equals the file's array count, and the load's warnings are kept out
    of the user's way: a failure lists the file's arrays and the `--backbone` whose Keras model holds as many.
    """
    if not is_file(path):
        raise ValueError(f"--source file not found: {path!r}")
    if path.endswith(".keras"):
        raise ValueError(_KERAS_FILE_HINT.format(path=path, stem=path[: -len(".keras")]))
    if not path.endswith(".h5"):
        raise ValueError(f"--format={source_format} reads a Keras .h5 or .weights.h5 file. Received: {path!r}")
    with local_copy(path) as local:  # h5py and Keras read a local file only
        stored = describe_tensors(local)
        errors, counts = [], []
        for model_fn in _keras_candidates(source_format, backbone):
            model = model_fn()
            if len(model.weights) != len(stored):
                counts.append(len(model.weights))
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.load_weights(local)
            except (ValueError, KeyError, OSError) as error:
                errors.append(f"{model.name}: {str(error).splitlines()[0][:200]}")
                continue
            break
        else:
            model = None
    if model is not None:
        tensors = {}
        for layer in _all_layers(model):
            for variable in layer.weights:
                # keras.applications' LayerScale creates its one weight unnamed ("variable_N"): it is gamma.
                name = "gamma" if type(layer).__name__ == "LayerScale" else variable.name
                tensors[f"{layer.name}/{name}"] = variable.numpy()
        return tensors
    shown = ", ".join(f"{name} {list(shape)}" for name, shape in list(stored.items())[:4])
    matching = _presets_holding(len(stored), source_format, backbone)
    suggestion = (
        f" It holds as many as the {source_format} model of --backbone={' or --backbone='.join(matching)}: convert "
        f"with that --backbone."
        if matching
        else " No --backbone of ours has a source model with that many: is --format right?"
    )
    expected = " or ".join(str(count) for count in sorted(set(counts)))
    raise ValueError(
        f"{path!r} does not fit the {source_format} model of --backbone={backbone.name}: the file holds "
        f"{len(stored)} arrays ({shown}, ...)"
        + (f"; that model holds {expected}" if counts else "")
        + (" (without / with its classification head)" if len(set(counts)) > 1 else "")
        + (f"; loading failed: {' | '.join(errors)}" if errors else "")
        + f".{suggestion}"
    )


def _keras_array_counts(source_format, arguments):
    """How many arrays the Keras source model of a preset holds: {count without head, count with head}.

    Counted from the architecture rather than by building the models (ResNet101 / ConvNeXt-L): each conv of
    a keras.applications ResNet has a kernel, a bias and a BatchNorm (6 arrays; keras-cv: no bias, 5); a
    ConvNeXt block has 9 arrays, its stem and downsampling layers 16 and the pooled-feature norm 2. The
    classification head adds 2 (keras-cv backbones have none).
    """
    from hfgd_tf.backbones.convnext import CONVNEXT_VARIANTS

    if "variant" in arguments:
        if source_format != "keras_applications":
            return set()
        count = 9 * sum(CONVNEXT_VARIANTS[arguments["variant"]]["depths"]) + 16 + 2
        return {count, count + 2}
    if arguments.get("stem_type") != "standard":
        return set()
    bottleneck = arguments.get("block_type", "bottleneck") == "bottleneck"
    blocks = sum(arguments["stagewise_num_blocks"])
    convs = 1 + blocks * (3 if bottleneck else 2) + (4 if bottleneck else 3)  # stem, blocks, projections
    if source_format == "keras_cv":
        return {5 * convs}
    return {6 * convs, 6 * convs + 2} if bottleneck else set()


def _presets_holding(count, source_format, backbone):
    """Our preset names of `backbone`'s class whose Keras source model holds `count` arrays."""
    from hfgd_tf.backbones.presets import BACKBONE_PRESETS

    return [
        name
        for name, (cls, arguments) in BACKBONE_PRESETS.items()
        if cls is type(backbone) and name != backbone.name and count in _keras_array_counts(source_format, arguments)
    ]


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
            raise ValueError(
                "--format=keras_applications converts ResNet50 and ResNet101 (bottleneck 3-4-6-3, 3-4-23-3)"
            )
        return [
            lambda: builder(weights=None, include_top=False, input_shape=(None, None, 3)),
            lambda: builder(weights=None, include_top=True),
        ]
    if family == "convnext":
        builder = getattr(keras.applications, f"ConvNeXt{backbone.variant.capitalize()}")
        return [
            lambda top=top, pre=pre: builder(
                weights=None,
                include_top=top,
                include_preprocessing=pre,
                **({} if top else {"input_shape": (None, None, 3)}),
            )
            for top in (False, True)
            for pre in (True, False)
        ]
    raise ValueError(f"--format={source_format} does not convert {type(backbone).__name__}")


def unconverted_file_message(path, backbone_name):
    """What to do with a checkpoint given as backbone weights without going through the converter.

    Returns:
        str: the file is not ours, and the `scripts/convert_weights.py` command (with the likely `--format`)
        that makes it one.
    """
    stem = os.path.splitext(os.path.basename(path))[0].removesuffix(".weights")
    output = f"weights/{stem}_{backbone_name}.weights.h5"

    def command(source_format, source=path):
        return (
            f"python scripts/convert_weights.py --source={source} --format={source_format} "
            f"--backbone={backbone_name} --output={output}"
        )

    if path.endswith((".safetensors", ".npz")):
        how = f"{command('timm')} (--format=torchvision for a torchvision state dict)"
    elif path.endswith((".pth", ".pt", ".bin")):
        how = (
            "first turn it into a .safetensors (the one-line torch command in docs/backbones.md, section Pretrained weights), "
            f"then: {command('timm', os.path.splitext(path)[0] + '.safetensors')}"
        )
    elif path.endswith(".keras"):
        how = (
            _KERAS_FILE_HINT.format(path=path, stem=path[: -len(".keras")])
            + ", then: "
            + command("keras_applications", path[: -len(".keras")] + ".weights.h5")
        )
    else:
        how = f"{command('keras_applications')} (--format=keras_cv for a keras-cv ResNetBackbone)"
    return (
        f"{path!r} was not written by scripts/convert_weights.py, so its tensors cannot be matched to "
        f"--backbone={backbone_name}'s weights. Convert it once: {how}; then pass --backbone_weights_path={output}"
    )


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
    "source_input_normalization",
    "target_overrides",
    "unconverted_file_message",
    "write_converted",
]
