"""What the benchmark suites share (no flags here): the model zoo's rows, graph FLOPs, interleaved
median timings, and the input-pipeline vs training-step rates.

Imported by the suites of `scripts/benchmark.py` (`hfgd_tf.cli.benchmarks`) and the CamVid study, so that
every benchmark counts and times the same way.
"""

import statistics
import time

# key -> (description, ModelConfig overrides)
MODELS = {
    "hfgd_r50_os4": ("HFGD, ResNet-50, U-SFPN OS4", dict(backbone="resnet50", output_stride=4)),
    "hfgd_r50_os2": ("HFGD, ResNet-50, U-SFPN OS2", dict(backbone="resnet50", output_stride=2)),
    "hfgd_r50_os4_wide_head": (
        "HFGD, ResNet-50, U-SFPN OS4, D-wide head (before)",
        dict(backbone="resnet50", output_stride=4, upsampler_num_channels=256),
    ),
    "hfgd_r101_os4": ("HFGD, ResNet-101, U-SFPN OS4", dict(backbone="resnet101", output_stride=4)),
    "hfgd_r101_os2": ("HFGD, ResNet-101, U-SFPN OS2", dict(backbone="resnet101", output_stride=2)),
    "hfgd_convnext_t_os4": ("HFGD, ConvNeXt-T, U-SFPN OS4", dict(backbone="convnext_tiny", output_stride=4)),
    "hfgd_convnext_t_os2": ("HFGD, ConvNeXt-T, U-SFPN OS2", dict(backbone="convnext_tiny", output_stride=2)),
    "hfgd_swin_t_os4": ("HFGD, Swin-T, U-SFPN OS4", dict(backbone="swin_tiny", output_stride=4)),
    "hfgd_swin_t_os2": ("HFGD, Swin-T, U-SFPN OS2", dict(backbone="swin_tiny", output_stride=2)),
    "sfpn_r50": ("SemanticFPN baseline, ResNet-50, OS4", dict(backbone="resnet50", upsampler="sfpn", output_stride=4)),
    "high_level_r50": (
        "High-level branch only (CAE head, OS32), ResNet-50",
        dict(backbone="resnet50", upsampler="none"),
    ),
    "deeplabv3plus_r50_d8": (
        "DeepLabV3+ baseline, dilated ResNet-50 (OS8)",
        dict(backbone="resnet50", upsampler="deeplabv3plus", backbone_output_stride=8),
    ),
}


def cpu_model():
    """The CPU's model name (from /proc/cpuinfo on Linux), for the machine line of a results page."""
    import os
    import platform

    cpu = platform.processor() or "unknown CPU"
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return cpu


def graph_flops(model, size):
    """FLOPs of one forward pass at batch 1 (the profiler counts a multiply-add as 2 FLOPs).

    Args:
        model: a Keras model taking images `[1, size, size, 3]`.
        size: int or `(height, width)`.
    """
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    height, width = (size, size) if isinstance(size, int) else size
    function = tf.function(lambda images: model(images, training=False))
    graph = function.get_concrete_function(tf.TensorSpec([1, height, width, 3], tf.float32)).graph
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return model_analyzer.profile(graph, options=options).total_float_ops


def _block(outputs):
    """Waits for a call's outputs (a nest of tensors) to be computed."""
    import tensorflow as tf

    tf.nest.map_structure(lambda t: t.numpy(), outputs)


def median_seconds(calls, runs, warmup=2):
    """Median wall time of each zero-argument callable, timed interleaved (round-robin).

    Interleaving spreads the noise of a shared machine over every entry alike, so ratios between
    entries are more trustworthy than their absolute times.

    Args:
        calls: dict name -> callable returning tensors (waited for).
        runs: int. Timed rounds after `warmup` untimed calls of each.

    Returns:
        dict name -> median seconds.
    """
    for call in calls.values():
        for _ in range(warmup):
            _block(call())
    times = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            _block(call())
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def pipeline_images_per_second(config, batch_size, batches, warmup=3):
    """Images/s of the training input pipeline (`build_train_dataset`) of `config` (`DataConfig`)."""
    from hfgd_tf.data.pipeline import build_train_dataset

    iterator = iter(build_train_dataset(config, batch_size))
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def training_images_per_second(model, config, batch_size, steps, warmup=2, jit_compile=False):
    """Images/s of HFGD training steps (the project's loss terms, SGD) at `config`'s crop, random data."""
    import tensorflow as tf

    from hfgd_tf.train.losses import SegmentationLoss

    num_classes = config.info.num_classes
    optimizer = tf.keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(model.trainable_variables)
    images = tf.random.uniform([batch_size, config.crop_height, config.crop_width, 3], 0, 255)
    labels = tf.random.uniform([batch_size, config.crop_height, config.crop_width], 0, num_classes, tf.int32)
    loss_fn = SegmentationLoss(ignore_label=config.info.ignore_label)

    @tf.function(jit_compile=jit_compile)
    def step():
        with tf.GradientTape() as tape:
            loss = sum(loss_fn(labels, model(images, training=True)).values())
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    for _ in range(warmup):
        step().numpy()
    start = time.perf_counter()
    for _ in range(steps):
        step().numpy()
    return steps * batch_size / (time.perf_counter() - start)
