"""Creating the `tf.distribute` strategy named by `TrainConfig.strategy`."""

import tensorflow as tf


def resolve_tpu(tpu):
    """Finds the TPU `tpu` with `TPUClusterResolver`, connects to it and initialises it; returns the resolver.

    The one entry point to a TPU for training and evaluation (scripts/train.py --tpu, scripts/evaluate.py
    --strategy=tpu --tpu).

    Args:
        tpu: str. TPU name, `grpc://` address, or "local" for a TPU VM's own chips.

    Raises:
        ValueError: the TPU cannot be found or reached (names the flag).
    """
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as error:
        raise ValueError(f"--tpu={tpu!r}: cannot find or initialise the TPU ({error})") from error
    return resolver


def create_strategy(name, tpu=""):
    """Returns a strategy.

    Args:
        name: str. "auto" (TPU if `tpu` is set, else MirroredStrategy over all local GPUs, else the
            one CPU device), "one_device", "mirrored" (all local GPUs, or all logical CPUs when there
            are no GPUs) or "tpu".
        tpu: str. TPU name or address for "tpu"/"auto".
    """
    if name == "tpu" or (name == "auto" and tpu):
        return tf.distribute.TPUStrategy(resolve_tpu(tpu))
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one_device" or (name == "auto" and len(gpus) <= 1):
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name in ("mirrored", "auto"):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    raise ValueError(f"Unknown strategy {name!r}; allowed: auto, one_device, mirrored, tpu")
