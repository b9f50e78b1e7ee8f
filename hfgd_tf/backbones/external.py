"""Backbones from keras-cv and keras-hub, adapted to our feature dict `{S1?, C2, C3, C4, C5}`.

`--backbone=keras_cv:<ClassName>` (or `keras_hub:<ClassName>`) builds that library's backbone class from
explicit arguments, never from a named preset (presets download). The arguments are the class's entry in
`KERAS_CV_DEFAULTS` / `KERAS_HUB_DEFAULTS` (the smallest standard variant, table below), updated with
`backbone_kwargs` (a JSON object, flag `--backbone_kwargs`). `preset_dir` (`--backbone_preset_dir`) loads a
preset directory the user downloaded instead (architecture and weights; `backbone_kwargs` are passed to
`from_preset` as overrides).

keras-cv default arguments (keras-cv 0.9; `include_rescaling=False` always: the segmenter normalises):

| class | default architecture | pyramid levels used |
| --- | --- | --- |
| `ResNetBackbone` | ResNet-18 v1: filters 64-512, blocks (2, 2, 2, 2), basic blocks | C2..C5 |
| `ResNetV2Backbone` | ResNet-18 v2, same widths | C2..C5 |
| `MobileNetV3Backbone` | MobileNetV3-Small | S1, C2..C5 |
| `EfficientNetV2Backbone` | EfficientNetV2-B0 | S1, C2..C5 |
| `CSPDarkNetBackbone` | CSPDarkNet-tiny: channels (48, 96, 192, 384), depths (1, 3, 3, 1) | C2..C5 |
| `MiTBackbone` | MiT-B0: depths (2, 2, 2, 2), dims (32, 64, 160, 256), input 512x512 (fixed) | C2..C5 |

The pyramid keys of the libraries are not trusted (keras-cv's MiT calls its stride-4 level "P1"): the
adapter runs the backbone once on a probe image and assigns each pyramid output by its measured stride
(2 -> S1, 4 -> C2, 8 -> C3, 16 -> C4, 32 -> C5). A backbone without a stride-2 level provides no S1.

Fixed input size (MiT: keras-cv's attention reshapes its tokens by sqrt(N)): the backbone is built for the
square size given by `backbone_kwargs["input_shape"]`; a non-square or unknown size is refused at build
time. Inputs of any other size are resized (bilinear) to that size inside the adapter and each feature is
resized back to the stride grid of the real input, so training, evaluation and export never fail on a
size; for exact results train with crops of that size and evaluate with a sliding window of that size
(`--sliding_window_height/width`), where the resizes are the identity.

Keras norm settings (`--norm_method`, BN momentum/epsilon) do not reach these backbones: they keep their
library's BatchNormalization (not synchronised across replicas) or LayerNorm. Their output stride is 32.
"""

import collections
import contextlib
import importlib
import inspect
import json
import math
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from hfgd_tf.backbones.base import FeatureBackbone
from hfgd_tf.backbones.loading import load_backbone_weights
from hfgd_tf.files import read_json
from hfgd_tf.layers.input_normalization import normalization_named
from hfgd_tf.layers.resize import resize_as_float32

LIBRARIES = ("keras_cv", "keras_hub")
STRIDE_TO_KEY = {2: "S1", 4: "C2", 8: "C3", 16: "C4", 32: "C5"}
REQUIRED_KEYS = ("C2", "C3", "C4", "C5")
_HARD_SWISH = "hard_swish"

KERAS_CV_DEFAULTS = {
    "ResNetBackbone": dict(
        stackwise_filters=[64, 128, 256, 512],
        stackwise_blocks=[2, 2, 2, 2],
        stackwise_strides=[1, 2, 2, 2],
        block_type="basic_block",
    ),
    "ResNetV2Backbone": dict(
        stackwise_filters=[64, 128, 256, 512],
        stackwise_blocks=[2, 2, 2, 2],
        stackwise_strides=[1, 2, 2, 2],
        block_type="basic_block",
    ),
    "MobileNetV3Backbone": dict(
        stackwise_expansion=[1, 72.0 / 16, 88.0 / 24, 4, 6, 6, 3, 3, 6, 6, 6],
        stackwise_filters=[16, 24, 24, 40, 40, 40, 48, 48, 96, 96, 96],
        stackwise_kernel_size=[3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5],
        stackwise_stride=[2, 2, 1, 2, 1, 1, 1, 1, 2, 1, 1],
        stackwise_se_ratio=[0.25, None, None, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25],
        stackwise_activation=["relu", "relu", "relu"] + [_HARD_SWISH] * 8,
    ),
    "EfficientNetV2Backbone": dict(
        width_coefficient=1.0,
        depth_coefficient=1.0,
        stackwise_kernel_sizes=[3, 3, 3, 3, 3, 3],
        stackwise_num_repeats=[1, 2, 2, 3, 5, 8],
        stackwise_input_filters=[32, 16, 32, 48, 96, 112],
        stackwise_output_filters=[16, 32, 48, 96, 112, 192],
        stackwise_expansion_ratios=[1, 4, 4, 4, 6, 6],
        stackwise_squeeze_and_excite_ratios=[0, 0, 0, 0.25, 0.25, 0.25],
        stackwise_strides=[1, 2, 2, 2, 1, 2],
        stackwise_conv_types=["fused", "fused", "fused", "unfused", "unfused", "unfused"],
    ),
    "CSPDarkNetBackbone": dict(stackwise_channels=[48, 96, 192, 384], stackwise_depth=[1, 3, 3, 1]),
    "MiTBackbone": dict(depths=[2, 2, 2, 2], embedding_dims=[32, 64, 160, 256], input_shape=[512, 512, 3]),
}
# keras-hub (>= 0.32): the same architectures under keras-hub's argument names.
KERAS_HUB_DEFAULTS = {
    "ResNetBackbone": dict(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[2, 2, 2, 2],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block_vd",
        use_pre_activation=False,
        image_shape=[None, None, 3],
    ),
    "MiTBackbone": dict(
        layerwise_depths=[2, 2, 2, 2],
        num_layers=4,
        hidden_dims=[32, 64, 160, 256],
        image_shape=[512, 512, 3],
        layerwise_num_heads=[1, 2, 5, 8],
        layerwise_sr_ratios=[8, 4, 2, 1],
        max_drop_path_rate=0.1,
        layerwise_patch_sizes=[7, 3, 3, 3],
        layerwise_strides=[4, 2, 2, 2],
    ),
}
_DEFAULTS = {"keras_cv": KERAS_CV_DEFAULTS, "keras_hub": KERAS_HUB_DEFAULTS}
# The argument holding the input shape, per library.
_SHAPE_ARGUMENT = {"keras_cv": "input_shape", "keras_hub": "image_shape"}
# Classes that only work at a fixed square input size (their attention reshapes tokens by sqrt(N)).
FIXED_SIZE_CLASSES = ("MiTBackbone",)


def parse_backbone_name(name):
    """`"keras_cv:ResNetBackbone"` -> `("keras_cv", "ResNetBackbone")`; None for our own presets."""
    if not isinstance(name, str) or ":" not in name:
        return None
    library, class_name = name.split(":", 1)
    if library not in LIBRARIES or not class_name:
        raise ValueError(
            f"--backbone={name!r}: expected '<library>:<ClassName>' with library one of {LIBRARIES} "
            "(e.g. keras_cv:ResNetBackbone)"
        )
    return library, class_name


def parse_backbone_kwargs(backbone_kwargs):
    """`--backbone_kwargs`: a JSON object string (or a dict) -> dict."""
    if isinstance(backbone_kwargs, dict):
        return dict(backbone_kwargs)
    if not backbone_kwargs:
        return {}
    try:
        parsed = json.loads(backbone_kwargs)
    except json.JSONDecodeError as error:
        raise ValueError(f"--backbone_kwargs must be a JSON object. Received: {backbone_kwargs!r} ({error})") from error
    if not isinstance(parsed, dict):
        raise ValueError(f"--backbone_kwargs must be a JSON object. Received: {backbone_kwargs!r}")
    return parsed


def import_library(library):
    """Imports keras_cv or keras_hub with a clear message when it is missing."""
    try:
        return importlib.import_module(library)
    except ImportError as error:
        extra = "pip install -e .[keras_hub]" if library == "keras_hub" else "pip install keras-cv==0.9.0"
        raise ValueError(f"--backbone={library}:... needs the {library} package ({extra}): {error}") from error


def _backbone_class(library, class_name):
    module = import_library(library)
    models = module.models
    cls = getattr(models, class_name, None)
    if cls is None or not isinstance(cls, type) or not class_name.endswith("Backbone"):
        known = sorted(n for n in dir(models) if n.endswith("Backbone"))
        raise ValueError(f"{library} has no backbone class {class_name!r}. Classes: {known}")
    return cls


def _construct(library, class_name, kwargs, preset_dir):
    cls = _backbone_class(library, class_name)
    defaults = _DEFAULTS[library].get(class_name)
    if defaults is None and not kwargs and not preset_dir:
        raise ValueError(
            f"No default arguments for {library}:{class_name}; give them with --backbone_kwargs (a JSON object of "
            f"its constructor arguments). Classes with defaults: {sorted(_DEFAULTS[library])}"
        )
    _check_arguments(cls, f"{library}:{class_name}", kwargs)
    kwargs = dict(kwargs)
    if library == "keras_cv":
        kwargs["include_rescaling"] = False  # the segmenter normalises its inputs
    if preset_dir:
        if not tf.io.gfile.isdir(preset_dir):
            # from_preset would take a preset name or kaggle:// / hf:// handle and download it.
            raise ValueError(
                f"--backbone_preset_dir={preset_dir!r} (the flag, or the run's run_config.json when a run is "
                "rebuilt) is not a directory: give the local directory of a preset you downloaded (nothing is "
                "downloaded at run time)"
            )
        return cls.from_preset(preset_dir, **kwargs)
    arguments = {**(defaults or {}), **kwargs}
    shape_argument = _SHAPE_ARGUMENT[library]
    if shape_argument in arguments and arguments[shape_argument] is not None:
        arguments[shape_argument] = tuple(arguments[shape_argument])
    if class_name in FIXED_SIZE_CLASSES:
        _check_fixed_square(f"{library}:{class_name}", shape_argument, arguments.get(shape_argument))
    try:
        return cls(**arguments)
    except TypeError as error:
        raise ValueError(f"{library}:{class_name} does not take these arguments: {error}") from error


def _check_arguments(cls, name, kwargs):
    """Unknown argument names fail here: the libraries pass them on to `keras.Model`, which ignores some."""
    parameters = inspect.signature(cls.__init__).parameters
    allowed = {n for n, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} - {"self"}
    unknown = sorted(set(kwargs) - allowed - {"name", "dtype", "trainable"})
    if unknown:
        raise ValueError(
            f"{name} does not take the arguments {unknown} (--backbone_kwargs). It takes: {sorted(allowed)}"
        )


def _check_fixed_square(name, shape_argument, shape):
    height, width = (tuple(shape) + (None, None))[:2] if shape else (None, None)
    if height is None or width is None:
        raise ValueError(
            f"{name} needs a fixed square input (its attention reshapes by sqrt(N)); give "
            f"{shape_argument}: [S, S, 3] in --backbone_kwargs. Received: {shape_argument}={shape}"
        )
    if height != width:
        raise ValueError(
            f"{name} is built for a fixed {height}x{width} input; only square fixed sizes are supported "
            f"(give {shape_argument}: [S, S, 3] in --backbone_kwargs)"
        )


@contextlib.contextmanager
def _fresh_layer_names():
    """Auto-generated layer names (keras-cv's MiT has many: `conv2d_7`) restart from zero inside, so that the
    variable paths, by which weights files load, do not depend on what the process built before."""
    from keras.src.backend.common import global_state  # Keras 3 keeps its name counters here

    previous = global_state.get_global_attribute("object_name_uids") or {}
    global_state.set_global_attribute("object_name_uids", collections.defaultdict(int))
    try:
        yield
    finally:
        merged = collections.defaultdict(int, previous)
        for prefix, count in global_state.get_global_attribute("object_name_uids").items():
            merged[prefix] = max(merged[prefix], count)
        global_state.set_global_attribute("object_name_uids", merged)


def _pyramid_outputs(backbone):
    """The backbone's pyramid tensors (keras-cv: layer names in `pyramid_level_inputs`; keras-hub:
    tensors in `pyramid_outputs`)."""
    if getattr(backbone, "pyramid_outputs", None):
        return list(backbone.pyramid_outputs.values())
    try:
        levels = getattr(backbone, "pyramid_level_inputs", None)
    except NotImplementedError:
        levels = None
    if not levels:
        raise ValueError(f"{type(backbone).__name__} exposes no feature pyramid (pyramid_level_inputs/pyramid_outputs)")
    return [backbone.get_layer(layer_name).output for layer_name in levels.values()]


def _fixed_size(backbone):
    shape = tuple(backbone.inputs[0].shape[1:3])
    return None if None in shape else shape


@keras.saving.register_keras_serializable(package="hfgd_tf")
class ResizeToStride(keras.layers.Layer):
    """Resizes a feature to the `ceil(H / stride) x ceil(W / stride)` grid of a reference image.

    Call arguments:
        inputs: `[B, h, w, C]`.
        reference: `[B, H, W, 3]`.

    Returns:
        `[B, ceil(H / stride), ceil(W / stride), C]`.
    """

    def __init__(self, stride, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, inputs, reference):
        size = tf.cast(tf.math.ceil(tf.cast(tf.shape(reference)[1:3], tf.float32) / self.stride), tf.int32)
        return resize_as_float32(inputs, size)

    def compute_output_shape(self, inputs_shape, reference_shape):
        def grid(size):
            return None if size is None else math.ceil(size / self.stride)

        return (inputs_shape[0], grid(reference_shape[1]), grid(reference_shape[2]), inputs_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(stride=self.stride)
        return config


@keras.saving.register_keras_serializable(package="hfgd_tf")
class ResizeToSize(keras.layers.Layer):
    """Resizes images `[B, H, W, C]` to a fixed `[B, height, width, C]` (bilinear; exactly the identity
    when the images already have that size)."""

    def __init__(self, height, width, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)

    def call(self, inputs):
        return resize_as_float32(inputs, [self.height, self.width])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width)
        return config


@keras.saving.register_keras_serializable(package="hfgd_tf")
class ExternalBackbone(FeatureBackbone):
    """A keras-cv or keras-hub backbone returning our feature dict.

    Args:
        library: str. "keras_cv" or "keras_hub".
        class_name: str. The library's backbone class (e.g. "ResNetBackbone").
        backbone_kwargs: dict or JSON str. Constructor arguments over the class's defaults (see the table in
            this module's docstring). Defaults to None.
        preset_dir: str. A local preset directory to load instead (`from_preset`). Defaults to "".

    Call arguments:
        images: `[B, H, W, 3]`, already normalised by the segmenter.

    Returns:
        dict: `C2`..`C5` `[B, H/4 .. H/32, W/4 .. W/32, C_l]` (ceil), plus `S1` `[B, H/2, W/2, C_1]` when the
        backbone has a stride-2 level.

    Example:
    >>> backbone = ExternalBackbone("keras_cv", "ResNetBackbone", {"stackwise_filters": [8, 8, 16, 16], "block_type": "block"})
    >>> sorted(backbone(np.zeros((1, 64, 64, 3)))), backbone.feature_strides["C5"]
    (['C2', 'C3', 'C4', 'C5'], 32)
    """

    CONFIG_KEYS = ("library", "class_name", "backbone_kwargs", "preset_dir")

    def __init__(self, library, class_name, backbone_kwargs=None, preset_dir="", **kwargs):
        if library not in LIBRARIES:
            raise ValueError(f"`library` must be one of {LIBRARIES}. Received: library={library!r}")
        backbone_kwargs = parse_backbone_kwargs(backbone_kwargs)
        name = kwargs.pop("name", f"{library}_{class_name}".lower())

        # === Layers ===
        with _fresh_layer_names():
            backbone = _construct(library, class_name, backbone_kwargs, preset_dir)
        fixed = _fixed_size(backbone)
        if fixed is not None or class_name in FIXED_SIZE_CLASSES:  # e.g. from a preset directory
            _check_fixed_square(f"{library}:{class_name}", _SHAPE_ARGUMENT[library], fixed)
        pyramid = _pyramid_outputs(backbone)
        extractor = keras.Model(backbone.input, pyramid, name=f"{name}_pyramid")
        probe = fixed or (64, 64)
        probe_outputs = extractor(np.zeros((1, *probe, 3), "float32"), training=False)
        key_of, strides = {}, {}
        for index, output in enumerate(probe_outputs):
            stride = probe[0] // int(output.shape[1])
            if stride in STRIDE_TO_KEY and STRIDE_TO_KEY[stride] not in strides:
                key_of[index] = STRIDE_TO_KEY[stride]
                strides[STRIDE_TO_KEY[stride]] = stride
        missing = [key for key in REQUIRED_KEYS if key not in strides]
        if missing:
            measured = sorted(probe[0] // int(o.shape[1]) for o in probe_outputs)
            raise ValueError(
                f"{library}:{class_name} gives pyramid strides {measured}; HFGD needs strides 4, 8, 16 and 32 "
                f"(C2..C5), missing {missing}"
            )

        # === Functional Model ===
        images = keras.Input(shape=(None, None, 3), name="images")
        inputs = ResizeToSize(*fixed, name=f"{name}_resize_input")(images) if fixed else images
        features = extractor(inputs)
        outputs = {}
        for index, key in key_of.items():
            feature = features[index]
            if fixed:
                feature = ResizeToStride(strides[key], name=f"{name}_resize_{key.lower()}")(feature, images)
            outputs[key] = feature
        super().__init__(inputs=images, outputs=outputs, name=name, **kwargs)

        # === Config ===
        self.library, self.class_name = library, class_name
        self.backbone_kwargs, self.preset_dir = backbone_kwargs, preset_dir
        self.library_backbone = backbone
        self.fixed_image_size = fixed
        self.output_stride = 32
        self._strides = strides

    @property
    def feature_strides(self):
        """dict: output stride of each feature key this backbone provides (no `S1` without a stride-2 level)."""
        return dict(self._strides)


def _read_json(path):
    """The JSON object in `path`, or None when it is missing or not a JSON object."""
    try:
        value = read_json(path)
    except (tf.errors.OpError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _keras_hub_image_converter(preset_dir):
    """The image converter config of a keras-hub preset directory, or None when it has none."""
    converter = _read_json(os.path.join(preset_dir, "image_converter.json"))
    if converter is None:  # a task preset nests it in its preprocessor
        preprocessor = (_read_json(os.path.join(preset_dir, "preprocessor.json")) or {}).get("config")
        converter = preprocessor.get("image_converter") if isinstance(preprocessor, dict) else None
    config = converter.get("config") if isinstance(converter, dict) else None
    return config if isinstance(config, dict) else None


def preset_input_normalization(backbone, preset_dir):
    """The `input_normalization` a local preset's weights were trained with, or None when it does not say.

    keras-cv backbones divide their inputs by 255 inside when built with `include_rescaling=True`, as its
    published presets are (their `config.json` says so). The adapter builds them with
    `include_rescaling=False` so that the segmenter normalises once: those weights then need "zero_one".
    keras-hub presets normalise outside the backbone, in the image converter their `image_converter.json`
    (or `preprocessor.json`) records as per-channel `x * scale + offset`; the name reproducing it is
    returned ("imagenet" for the ResNet presets). A converter no name reproduces is logged and gives None, as
    does a preset that records nothing.

    Args:
        backbone: str. `ModelConfig.backbone` (e.g. "keras_cv:ResNetBackbone").
        preset_dir: str. `ModelConfig.backbone_preset_dir` ("" for none).

    Returns:
        str (one of `INPUT_NORMALIZATIONS`) or None.
    """
    parsed = parse_backbone_name(backbone)
    if not preset_dir or parsed is None:
        return None
    if parsed[0] == "keras_cv":
        config = (_read_json(os.path.join(preset_dir, "config.json")) or {}).get("config")
        return "zero_one" if isinstance(config, dict) and config.get("include_rescaling") is True else None
    converter = _keras_hub_image_converter(preset_dir)
    if converter is None:
        return None
    scale, offset = converter.get("scale"), converter.get("offset")
    try:
        if "mean" in converter and "variance" in converter:  # keras-hub's older argument names
            std = [math.sqrt(v) for v in converter["variance"]]
            scale = [(1.0 if scale is None else scale) / s for s in std]
            offset = [-m / s for m, s in zip(converter["mean"], std)]
        method = normalization_named(scale, offset)
    except (TypeError, ValueError):  # values keras-hub could not load either
        method = None
    if method is None:
        logging.warning(
            "%s: its image converter maps inputs by x * %s + %s, which no input_normalization reproduces; the "
            "backbone will see other inputs than it was trained on",
            preset_dir,
            scale,
            offset,
        )
    return method


def build_external_backbone(name, backbone_kwargs=None, preset_dir="", weights_path=None):
    """`--backbone=keras_cv:<Class>` / `keras_hub:<Class>` -> `ExternalBackbone` (optionally local weights)."""
    library, class_name = parse_backbone_name(name)
    backbone = ExternalBackbone(library, class_name, backbone_kwargs, preset_dir or "")
    if weights_path:
        load_backbone_weights(backbone, weights_path)
    return backbone
