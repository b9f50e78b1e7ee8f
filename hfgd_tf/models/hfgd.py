"""HFGDSegmenter: backbone -> context encoder -> class kernels, plus the isolated guided upsampler."""

import keras

from hfgd_tf.layers.class_kernels import ClassKernels
from hfgd_tf.layers.input_normalization import input_normalization_layer
from hfgd_tf.layers.resize import ResizeLike, StopGradient
from hfgd_tf.layers.semantic_fpn import IMAGE_KEY, GuidedUpsampler
from hfgd_tf.models.serialization import segmenter_config, segmenter_from_config


@keras.saving.register_keras_serializable(package="hfgd_tf")
class HFGDSegmenter(keras.Model):
    """HFGD: High-level Feature Guided Decoder (Huang et al., arXiv:2303.08646).

    ```
    high-level branch (trains backbone, CAE, class kernels):
      C5 -> context_encoder -> H (OS32, D) -> logits_high = class_kernels(H)
    guided upsampler (trains only its own layers):
      sg(S1, C2..C4), sg(H) -> upsampler -> F (OS os, D) -> logits = class_kernels(F, stop_gradient)
    ```
    S1 is read only at output stride 2. For a backbone without a stride-2 level (ConvNeXt, Swin) the
    upsampler owns an image stem that makes S1 from the normalised image, so it trains with the
    upsampler's loss (see `GuidedUpsampler`).
    `sg` is `tf.stop_gradient`; each one is a switch. With every switch on, the loss on `logits` gives
    exactly zero gradient to the backbone, the context encoder and the class kernels, and the loss on
    `logits_high` gives zero gradient to the upsampler. `class_kernels` is one layer (one `kernel`
    variable) called by both heads.

    Args:
        backbone: `keras.Model` returning the dict `{C2, C3, C4, C5}` (and `S1` if it has a stride-2 level).
        context_encoder: `keras.layers.Layer` mapping C5 to H `[B, h, w, D]` (see `hfgd_tf.layers.cae`).
        num_classes: int. K.
        upsampler: `GuidedUpsampler` or None. None is the high-level-only baseline: the high-level
            logits, upsampled, are the prediction and the only output (so the training loss has one
            term). Defaults to None.
        stop_gradient_backbone: bool. Cut gradients from the upsampler into the backbone features.
            Defaults to True.
        stop_gradient_guidance: bool. Cut gradients from the upsampler into H (and so the CAE).
            Defaults to True.
        stop_gradient_class_kernels: bool. The upsampler uses the class kernels without updating them.
            Defaults to True.
        share_class_kernels: bool. False gives the upsampler its own classifier (ablation).
            Defaults to True.
        input_normalization: str. "minus_one_one" (x * 2 / 255 - 1, the authors' default),
            "imagenet" (ImageNet mean/std: timm / torchvision weights) or "zero_one" (x / 255: keras-cv
            presets, whose own rescaling layer the adapter leaves out), applied inside the model.
            Defaults to "minus_one_one".
        image_shape: tuple. Defaults to (None, None, 3).

    Call arguments:
        images: `[B, H, W, 3]` float in [0, 255].

    Returns:
        dict: `logits` `[B, H, W, K]` float32 at input size (the prediction); with an upsampler also
        `logits_high` `[B, H/32, W/32, K]` float32 (the auxiliary high-level output, used only by the
        training loss).

    Example:
    >>> from hfgd_tf.models import ModelConfig, build_model
    >>> model = build_model(ModelConfig(backbone="resnet_tiny", num_classes=3, num_channels=16))
    >>> model(np.zeros((2, 64, 64, 3)))["logits"].shape
    TensorShape([2, 64, 64, 3])
    """

    def __init__(
        self,
        backbone,
        context_encoder,
        num_classes,
        upsampler=None,
        stop_gradient_backbone=True,
        stop_gradient_guidance=True,
        stop_gradient_class_kernels=True,
        share_class_kernels=True,
        input_normalization="minus_one_one",
        image_shape=(None, None, 3),
        **kwargs,
    ):
        if num_classes < 1:
            raise ValueError(f"`num_classes` must be >= 1. Received: num_classes={num_classes}")
        if upsampler is not None and not isinstance(upsampler, GuidedUpsampler):
            raise ValueError(
                f"`upsampler` must be a GuidedUpsampler or None. Received: upsampler={type(upsampler).__name__}"
            )
        name = kwargs.pop("name", "hfgd")

        # === Layers ===
        normalization = input_normalization_layer(input_normalization)
        class_kernels = ClassKernels(num_classes, name="class_kernels")
        to_float32_high = keras.layers.Activation("linear", dtype="float32", name="logits_high_float32")
        # float32 policy: the input-size logits are interpolated and returned in float32.
        resize_to_input = ResizeLike(dtype="float32", name="resize_to_input")

        # === Functional Model ===
        images = keras.Input(shape=image_shape, name="images")
        normalized = normalization(images)
        features = backbone(normalized)
        guidance = context_encoder(features["C5"])
        logits_high = class_kernels(guidance)
        if upsampler is None:
            logits = logits_high
        else:
            # The image has no trainable ancestor, so it needs no stop-gradient.
            upsampler_inputs = {
                level: normalized
                if level == IMAGE_KEY
                else StopGradient(stop_gradient_backbone, name=f"stop_gradient_{level.lower()}")(features[level])
                for level in upsampler.required_features
                if level != "C5"
            }
            upsampler_guidance = StopGradient(stop_gradient_guidance, name="stop_gradient_guidance")(guidance)
            upsampled = upsampler(upsampler_inputs, upsampler_guidance)
            if share_class_kernels:
                logits = class_kernels(upsampled, stop_gradient=stop_gradient_class_kernels)
            else:
                logits = ClassKernels(num_classes, name="upsampler_classifier")(upsampled)
        outputs = {"logits": resize_to_input(logits, images)}
        if upsampler is not None:
            outputs["logits_high"] = to_float32_high(logits_high)
        super().__init__(inputs=images, outputs=outputs, name=name, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.context_encoder = context_encoder
        self.upsampler = upsampler
        self.class_kernels = class_kernels
        self.num_classes = num_classes
        self.stop_gradient_backbone = stop_gradient_backbone
        self.stop_gradient_guidance = stop_gradient_guidance
        self.stop_gradient_class_kernels = stop_gradient_class_kernels
        self.share_class_kernels = share_class_kernels
        self.input_normalization = input_normalization
        self.image_shape = tuple(image_shape)

    def variable_groups(self):
        """Returns the trainable variables by part: `backbone`, `context_encoder`, `class_kernels`,
        `upsampler` (its layers and its own classifier, if any). Used by tests and optimizers."""
        groups = {
            "backbone": list(self.backbone.trainable_variables),
            "context_encoder": list(self.context_encoder.trainable_variables),
            "class_kernels": list(self.class_kernels.trainable_variables),
            "upsampler": [],
        }
        if self.upsampler is not None:
            groups["upsampler"] = list(self.upsampler.trainable_variables)
        grouped = {id(v) for vs in groups.values() for v in vs}
        groups["upsampler"] += [v for v in self.trainable_variables if id(v) not in grouped]
        return groups

    def get_config(self):
        return segmenter_config(
            self,
            {"backbone": self.backbone, "context_encoder": self.context_encoder, "upsampler": self.upsampler},
            stop_gradient_backbone=self.stop_gradient_backbone,
            stop_gradient_guidance=self.stop_gradient_guidance,
            stop_gradient_class_kernels=self.stop_gradient_class_kernels,
            share_class_kernels=self.share_class_kernels,
        )

    @classmethod
    def from_config(cls, config):
        return segmenter_from_config(cls, config, ("backbone", "context_encoder", "upsampler"))
