"""DeepLabV3+ decoder (Chen et al., ECCV 2018), the dilated-backbone baseline."""

import keras
import tensorflow as tf

from hfgd_tf.layers.cae import ASPPEncoder
from hfgd_tf.layers.conv_norm_act import ConvNormAct
from hfgd_tf.layers.normalization import normalize_norm_spec
from hfgd_tf.layers.resize import ResizeLike


@keras.saving.register_keras_serializable(package="hfgd_tf")
class DeepLabV3PlusDecoder(keras.layers.Layer):
    """ASPP on C5, upsampled to C2 and fused with a 48-channel projection of C2 by two 3x3 convs.

    Args:
        num_channels: int. Width of ASPP and the fusion convs (256 in the paper).
        dilation_rates: tuple of int. ASPP rates; (6, 12, 18) at backbone OS16, (12, 24, 36) at OS8.
        low_level_channels: int. Projection width of C2. Defaults to 48.
        norm: str or dict. Defaults to None (sync batch norm).

    Call arguments:
        features: dict with `C2` `[B, H/4, W/4, c2]` and `C5` `[B, H/os, W/os, c5]`.

    Returns:
        `[B, H/4, W/4, num_channels]`.
    """

    required_features = ("C2", "C5")
    output_stride = 4

    def __init__(self, num_channels, dilation_rates=(6, 12, 18), low_level_channels=48, norm=None, **kwargs):
        super().__init__(**kwargs)
        self.num_channels = num_channels
        self.dilation_rates = tuple(int(r) for r in dilation_rates)
        self.low_level_channels = low_level_channels
        self.norm = normalize_norm_spec(norm)
        policy = self.dtype_policy
        self.aspp = ASPPEncoder(
            num_channels, dilation_rates=self.dilation_rates, norm=self.norm, dtype=policy, name="aspp"
        )
        self.low_level_projection = ConvNormAct(
            low_level_channels, 1, norm=self.norm, dtype=policy, name="low_level_projection"
        )
        self.fusion1 = ConvNormAct(num_channels, 3, norm=self.norm, dtype=policy, name="fusion1")
        self.fusion2 = ConvNormAct(num_channels, 3, norm=self.norm, dtype=policy, name="fusion2")
        self.resize = ResizeLike(dtype=policy, name="resize")

    def build(self, features_shape):
        self.aspp.build(features_shape["C5"])
        self.low_level_projection.build(features_shape["C2"])
        self.fusion1.build((None, None, None, self.num_channels + self.low_level_channels))
        self.fusion2.build((None, None, None, self.num_channels))

    def call(self, features, training=None):
        context = self.aspp(features["C5"], training=training)
        low_level = self.low_level_projection(features["C2"], training=training)
        fused = tf.concat([self.resize(context, low_level), low_level], axis=-1)
        return self.fusion2(self.fusion1(fused, training=training), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_channels=self.num_channels,
            dilation_rates=self.dilation_rates,
            low_level_channels=self.low_level_channels,
            norm=self.norm,
        )
        return config
