"""Normalization factory shared by every layer that normalises features.

A layer takes one `norm` argument (a method name or a dict of plain values) instead of three or four
hand-threaded norm settings, so that the choice is made once by the model builder.
"""

import keras

NORM_METHODS = ("batch_norm", "sync_batch_norm", "group_norm")

_DEFAULT_NORM = {
    "method": "sync_batch_norm",
    # Keras momentum semantics: moving = momentum * moving + (1 - momentum) * batch. The authors use
    # 0.9997 for 30k-iteration runs; 0.99 suits short runs and is our default (ModelConfig.bn_momentum).
    "momentum": 0.99,
    "epsilon": 1e-3,
    "groups": 32,
}


def normalize_norm_spec(norm):
    """Returns a complete norm spec dict from a method name, a partial dict or None.

    Args:
        norm: str, dict or None. A method in `NORM_METHODS`, or a dict with keys `method`, `momentum`,
            `epsilon`, `groups` (missing keys take defaults). None means the default
            (`sync_batch_norm`, which equals plain batch norm on one replica).

    Returns:
        dict with all four keys.

    Raises:
        ValueError: unknown method or key.
    """
    if norm is None:
        spec = {}
    elif isinstance(norm, str):
        spec = {"method": norm}
    elif isinstance(norm, dict):
        spec = dict(norm)
    else:
        raise ValueError(f"`norm` must be a method name or a dict. Received: norm={norm!r}")
    unknown = set(spec) - set(_DEFAULT_NORM)
    if unknown:
        raise ValueError(
            f"Unknown `norm` keys {sorted(unknown)}; allowed: {sorted(_DEFAULT_NORM)}. Received: norm={norm!r}"
        )
    full = {**_DEFAULT_NORM, **spec}
    if full["method"] not in NORM_METHODS:
        raise ValueError(f"`norm['method']` must be one of {NORM_METHODS}. Received: method={full['method']!r}")
    return full


def make_norm(norm, name, num_channels=None, dtype=None):
    """Creates the normalization layer described by `norm`.

    Args:
        norm: see `normalize_norm_spec`.
        name: str. Layer name.
        num_channels: int or None. Channels of the input; GroupNorm uses min(groups, num_channels)
            groups, reduced to a divisor of num_channels, so tiny widths work.
        dtype: dtype policy or None (the global policy).

    Returns:
        A `keras.layers.Layer`.
    """
    spec = normalize_norm_spec(norm)
    if spec["method"] == "group_norm":
        groups = spec["groups"]
        if num_channels is not None:
            groups = min(groups, num_channels)
            while num_channels % groups:
                groups -= 1
        return keras.layers.GroupNormalization(groups=groups, epsilon=spec["epsilon"], dtype=dtype, name=name)
    return keras.layers.BatchNormalization(
        momentum=spec["momentum"],
        epsilon=spec["epsilon"],
        synchronized=spec["method"] == "sync_batch_norm",
        dtype=dtype,
        name=name,
    )
