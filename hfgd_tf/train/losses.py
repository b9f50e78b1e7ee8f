"""Segmentation losses: per-pixel softmax cross entropy with the ignore label weighted 0."""

import tensorflow as tf


def pixel_cross_entropy_sum(labels, logits, ignore_label, class_weights=None):
    """Sum of per-pixel cross entropy over supervised pixels, and their count.

    Args:
        labels: int32 `[B, H, W]`.
        logits: `[B, h, w, K]`; resized bilinearly to `[H, W]` when smaller (logits_high at OS32).
        ignore_label: int. Pixels with this label (or any label outside [0, K)) contribute nothing.
        class_weights: float `[K]` or None. Each pixel's loss and count are weighted by its class's
            weight, so `sum / count` is the weighted mean (as PyTorch's weighted cross entropy).

    Returns:
        (loss_sum, num_valid): float32 scalars (num_valid is the weight sum when weighted).
    """
    logits = tf.cast(logits, tf.float32)
    label_size = tf.shape(labels)[1:3]
    if logits.shape[1] != labels.shape[1] or logits.shape[2] != labels.shape[2] or logits.shape[1] is None:
        logits = tf.image.resize(logits, label_size, method="bilinear")
    safe_labels, weights = _pixel_weights(labels, tf.shape(logits)[-1], ignore_label, class_weights)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
    return tf.reduce_sum(losses * weights), tf.reduce_sum(weights)


def _pixel_weights(labels, num_classes, ignore_label, class_weights):
    valid = (labels != ignore_label) & (labels >= 0) & (labels < num_classes)
    safe_labels = tf.where(valid, labels, tf.zeros_like(labels))
    weights = tf.cast(valid, tf.float32)
    if class_weights is not None:
        weights *= tf.gather(tf.cast(class_weights, tf.float32), safe_labels)
    return safe_labels, weights


def supervised_pixel_count(labels, num_classes, ignore_label, class_weights=None):
    """The `num_valid` of `pixel_cross_entropy_sum`, from the labels alone (weighted when given)."""
    return tf.reduce_sum(_pixel_weights(labels, num_classes, ignore_label, class_weights)[1])


def hfgd_loss_terms(labels, outputs, ignore_label, class_weights=None):
    """Loss sums of the model's outputs: `{"loss_up": (sum, count), "loss_high": (sum, count)}`.

    `loss_up` is on `logits` (the prediction); `loss_high` on `logits_high` when the model has it.
    """
    terms = {"loss_up": pixel_cross_entropy_sum(labels, outputs["logits"], ignore_label, class_weights)}
    if "logits_high" in outputs:
        terms["loss_high"] = pixel_cross_entropy_sum(labels, outputs["logits_high"], ignore_label, class_weights)
    return terms


def l2_weight_decay(variables, weight_decay, decay_norm_vars=False):
    """`weight_decay * sum(v^2) / 2` over convolution/dense kernels (and norm/bias vars if asked)."""
    if not weight_decay:
        return tf.constant(0.0)
    selected = [v for v in variables if decay_norm_vars or is_decayed_variable(v)]
    if not selected:
        return tf.constant(0.0)
    return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in selected])


def is_decayed_variable(variable):
    """Kernels decay; biases, norm parameters and position tables do not (SPEC §5)."""
    name = variable.path if hasattr(variable, "path") else variable.name
    return name.endswith("kernel") or name.endswith("kernel:0")
