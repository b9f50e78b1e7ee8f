"""Baselines HFGD is compared against: backbone -> decoder -> classifier, all trained jointly by one loss."""

import keras

from hfgd_tf.layers.class_kernels import ClassKernels
from hfgd_tf.layers.input_normalization import input_normalization_layer
from hfgd_tf.layers.resize import ResizeLike
from hfgd_tf.layers.semantic_fpn import IMAGE_KEY
from hfgd_tf.models.serialization import segmenter_config, segmenter_from_config


@keras.saving.register_keras_serializable(package="hfgd_tf")
class BaselineSegmenter(keras.Model):
    """A plain segmenter: the SemanticFPN (Kirillov et al., CVPR 2019) or DeepLabV3+ baseline.

    No stop-gradient, no context encoder, no high-level branch: the decoder and the backbone are
    fine-tuned together by one loss, which is exactly the setting HFGD argues contaminates the
    high-level features (SemanticFPN), or the dilated-backbone alternative (DeepLabV3+).

    Args:
        backbone: `keras.Model` returning `{C2, C3, C4, C5}` (and `S1` if it has a stride-2 level).
        decoder: `SemanticFPN` or `DeepLabV3PlusDecoder` (any layer with `required_features`; the
            key "image" gets the normalised image).
        num_classes: int. K.
        input_normalization: str. See `HFGDSegmenter`. Defaults to "minus_one_one".
        image_shape: tuple. Defaults to (None, None, 3).

    Call arguments:
        images: `[B, H, W, 3]` float in [0, 255].

    Returns:
        dict: `logits` `[B, H, W, K]` float32.
    """

    def __init__(
        self, backbone, decoder, num_classes, input_normalization="minus_one_one", image_shape=(None, None, 3), **kwargs
    ):
        if num_classes < 1:
            raise ValueError(f"`num_classes` must be >= 1. Received: num_classes={num_classes}")
        name = kwargs.pop("name", "baseline")
        images = keras.Input(shape=image_shape, name="images")
        normalized = input_normalization_layer(input_normalization)(images)
        features = {**backbone(normalized), IMAGE_KEY: normalized}
        decoded = decoder({key: features[key] for key in decoder.required_features})
        logits = ClassKernels(num_classes, name="classifier")(decoded)
        # float32 policy: the input-size logits are interpolated and returned in float32.
        outputs = {"logits": ResizeLike(dtype="float32", name="resize_to_input")(logits, images)}
        super().__init__(inputs=images, outputs=outputs, name=name, **kwargs)
        self.backbone = backbone
        self.decoder = decoder
        self.num_classes = num_classes
        self.input_normalization = input_normalization
        self.image_shape = tuple(image_shape)

    def get_config(self):
        return segmenter_config(self, {"backbone": self.backbone, "decoder": self.decoder})

    @classmethod
    def from_config(cls, config):
        return segmenter_from_config(cls, config, ("backbone", "decoder"))
