"""Inference: logits at input size, with multi-scale, flip and sliding-window options."""

import math

import tensorflow as tf


def _window_starts(size, window):
    """Window offsets with stride 2/3 of the window; the last window is aligned to the border."""
    if size <= window:
        return [0]
    stride = max(1, int(math.ceil(window * 2 / 3)))
    starts = list(range(0, size - window, stride))
    starts.append(size - window)
    return sorted(set(starts))


def _model_logits(model, images, scored_output="logits"):
    """The model's `scored_output` for `images`, as float32 logits at the images' size `[B, H, W, K]`.

    `logits` already come at the input size; `logits_high` (the OS32 guidance head) is resized bilinearly,
    as the training loss resizes it to the labels.
    """
    outputs = model(images, training=False)
    if scored_output not in outputs:
        raise ValueError(
            f"--scored_output={scored_output!r}: the model has no such output (it has {sorted(outputs)}); "
            "'logits_high' exists only for HFGD models with an upsampler"
        )
    logits = tf.cast(outputs[scored_output], tf.float32)
    if scored_output != "logits":
        logits = tf.image.resize(logits, tf.shape(images)[1:3], method="bilinear")
    return logits


def _sliding_window_logits(model, images, window_height, window_width, scored_output="logits"):
    """Predicts `[B, H, W, 3]` by windows and averages overlaps with a count map.

    Images smaller than the window are padded (mean pixel) and the padding is cropped from the logits.
    Memory stays bounded by one window's activations plus the `[B, H, W, K]` sum.
    """
    height, width = images.shape[1], images.shape[2]
    padded_h, padded_w = max(height, window_height), max(width, window_width)
    if (padded_h, padded_w) != (height, width):
        images = tf.pad(images - 127.5, [[0, 0], [0, padded_h - height], [0, padded_w - width], [0, 0]]) + 127.5
    total, counts = None, tf.zeros([1, padded_h, padded_w, 1])
    for top in _window_starts(padded_h, window_height):
        for left in _window_starts(padded_w, window_width):
            window = images[:, top : top + window_height, left : left + window_width]
            logits = _model_logits(model, window, scored_output)
            paddings = [[0, 0], [top, padded_h - top - window_height], [left, padded_w - left - window_width], [0, 0]]
            placed = tf.pad(logits, paddings)
            total = placed if total is None else total + placed
            counts += tf.pad(tf.ones([1, window_height, window_width, 1]), paddings)
    return (total / counts)[:, :height, :width]


def predict_logits(model, images, config=None):
    """Logits `[B, H, W, K]` float32 for images `[B, H, W, 3]` in [0, 255] under `config` (`EvalConfig`).

    Each scale resizes the input (bilinear), predicts (whole or by sliding window), resizes the logits
    back to `[H, W]`; flip adds the mirrored prediction; all logits are averaged. `config.scored_output`
    picks the model output that is scored (`logits`, or HFGD's guidance head `logits_high`).
    """
    scored_output = config.scored_output if config is not None else "logits"
    scales = config.eval_scales if config is not None else (1.0,)
    flip = config.flip if config is not None else False
    window = (config.sliding_window_height, config.sliding_window_width) if config is not None else (0, 0)
    images = tf.cast(images, tf.float32)
    size = tf.shape(images)[1:3]
    total, count = None, 0
    for scale in scales:
        scaled = images
        if scale != 1.0:
            scaled_size = tf.cast(tf.round(tf.cast(size, tf.float32) * scale), tf.int32)
            scaled = tf.image.resize(images, scaled_size, method="bilinear")
        variants = [scaled, tf.reverse(scaled, axis=[2])] if flip else [scaled]
        for index, variant in enumerate(variants):
            if window[0]:
                logits = _sliding_window_logits(model, variant, *window, scored_output=scored_output)
            else:
                logits = _model_logits(model, variant, scored_output)
            if index == 1:
                logits = tf.reverse(logits, axis=[2])
            if scale != 1.0:
                logits = tf.image.resize(logits, size, method="bilinear")
            total = logits if total is None else total + logits
            count += 1
    return total / count
