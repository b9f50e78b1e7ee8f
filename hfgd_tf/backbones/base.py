"""The one project base class of the backbones: config round trip and the stride table."""

import keras

from hfgd_tf.layers.policy import dtype_policy_scope


class FeatureBackbone(keras.Model):
    """A functional model returning the feature dict `{S1, C2, C3, C4, C5}` (no `S1` for a backbone without
    a stride-2 level: ConvNeXt, Swin; the OS2 upsampler then makes S1 itself).

    Subclasses build their graph in `__init__`, store every constructor argument as an attribute of the
    same name, list those names in `CONFIG_KEYS` and set `output_stride` (the stride of C5).
    """

    CONFIG_KEYS = ()

    @property
    def feature_strides(self):
        """dict: output stride of each feature key the backbone returns (dilated stages keep the stride of
        the stage before)."""
        stride = self.output_stride
        strides = {"S1": 2, "C2": 4, "C3": min(8, stride), "C4": min(16, stride), "C5": stride}
        return {key: value for key, value in strides.items() if key in self.output}

    def get_config(self):
        config = {key: getattr(self, key) for key in self.CONFIG_KEYS}
        # The dtype policy (e.g. "mixed_bfloat16") the layers were built with, so that a load rebuilds them so.
        config.update(name=self.name, trainable=self.trainable, dtype=self.dtype_policy.name)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        with dtype_policy_scope(config.pop("dtype", None)):
            return cls(**config)
