"""The `get_config` / `from_config` that HFGDSegmenter and BaselineSegmenter share: their sub-layers serialized
by Keras, their own settings as they are, and the dtype policy their layers were built with restored on load."""

import keras

from hfgd_tf.layers.policy import dtype_policy_scope


def segmenter_config(segmenter, layers, **settings):
    """The config of `segmenter`: `layers` (name -> sub-layer or None) serialized, `settings` as given, plus what
    every segmenter stores (classes, input normalisation and shape, name, trainable, dtype policy)."""
    return {
        **{
            name: None if layer is None else keras.saving.serialize_keras_object(layer)
            for name, layer in layers.items()
        },
        **settings,
        "num_classes": segmenter.num_classes,
        "input_normalization": segmenter.input_normalization,
        "image_shape": segmenter.image_shape,
        "name": segmenter.name,
        "trainable": segmenter.trainable,
        # The dtype policy its layers were built with (build_model's `dtype_policy`), restored on load.
        "dtype": segmenter.dtype_policy.name,
    }


def segmenter_from_config(cls, config, layer_names):
    """`cls` rebuilt from `segmenter_config`'s output: the sub-layers in `layer_names` deserialized, all layers
    built under the stored dtype policy."""
    config = dict(config)
    with dtype_policy_scope(config.pop("dtype", None)):
        for name in layer_names:
            if config.get(name) is not None:
                config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)
