"""Segmentation losses: per-pixel softmax cross entropy, OHEM and focal loss, ignore label weighted 0.

One code path for every loss and both heads: `SegmentationLoss` computes a per-pixel loss and a
per-pixel weight (0 for ignored pixels, the class weight otherwise, and for OHEM 0 for the easy pixels
it drops), then returns `sum(loss * weight) / global normaliser` for `logits` and `logits_high` alike.
"""

import tensorflow as tf

LOSSES = ("cross_entropy", "ohem", "focal")


def _resize_to_labels(labels, logits):
    """float32 logits resized bilinearly to the label size `[B, H, W, K]` when they differ."""
    logits = tf.cast(logits, tf.float32)
    if logits.shape[1] != labels.shape[1] or logits.shape[2] != labels.shape[2] or logits.shape[1] is None:
        logits = tf.image.resize(logits, tf.shape(labels)[1:3], method="bilinear")
    return logits


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
    return SegmentationLoss("cross_entropy", ignore_label, class_weights).sums(labels, logits)


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


def _all_reduce_sum(value):
    """Sum over the replicas of the current `tf.distribute` replica context (identity with one)."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)


class SegmentationLoss:
    """The training loss of a segmenter, the same for each of its heads.

    - "cross_entropy": mean softmax cross entropy over the supervised pixels.
    - "focal" (Lin et al., ICCV 2017, softmax form): per pixel `-(1 - p)^gamma * log p`, p the
      probability of the true class; mean over the supervised pixels (gamma 0 is cross entropy).
    - "ohem" (online hard example mining, as in mmseg's `OHEMPixelSampler`): only the hard pixels
      count. A supervised pixel is kept if p < `ohem_threshold`, or if p is among the `ohem_min_kept`
      smallest p of the GLOBAL batch (all replicas: each replica's smallest values are gathered, so
      the k-th smallest is exact); ties at the k-th value are all kept, so at least
      min(ohem_min_kept, supervised pixels) are kept. The loss is the cross entropy summed over the
      kept pixels of the global batch divided by their (global) count. Unlike mmseg, whose `min_kept`
      counts per image of one GPU's batch, `ohem_min_kept` counts pixels of the whole global batch.

    Class weights multiply each pixel's loss and its share of the normaliser (a weighted mean), for
    every loss. The ignore label (and any label outside [0, K)) never counts.

    Args:
        loss: str. One of `LOSSES`. Defaults to "cross_entropy".
        ignore_label: int. Defaults to 255.
        class_weights: float `[K]` or None. Defaults to None.
        ohem_threshold: float. Probability below which a pixel is hard. Defaults to 0.7.
        ohem_min_kept: int. Minimum kept pixels in the global batch. Defaults to 100000.
        focal_gamma: float. Focusing parameter. Defaults to 2.0.

    Call arguments:
        labels: int `[B, H, W]` (this replica's part of the batch).
        outputs: dict of logits `[B, h, w, K]` (`logits`, and `logits_high` when the model has it),
            resized bilinearly to `[H, W]`.
        global_count: float scalar or None. The supervised (weighted) pixel count of the global
            batch, if already known; None computes it with a cross-replica sum.

    Returns:
        dict `{"loss_up": ..., "loss_high": ...}` of float32 scalars: this replica's share, so that
        the sum over replicas is the loss of the global batch (and its gradient).
    """

    def __init__(
        self,
        loss="cross_entropy",
        ignore_label=255,
        class_weights=None,
        ohem_threshold=0.7,
        ohem_min_kept=100000,
        focal_gamma=2.0,
    ):
        if loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {LOSSES}. Received: loss={loss!r}")
        if not 0.0 < ohem_threshold <= 1.0:
            raise ValueError(f"`ohem_threshold` must be in (0, 1]. Received: ohem_threshold={ohem_threshold}")
        if ohem_min_kept < 0 or focal_gamma < 0:
            raise ValueError(
                f"`ohem_min_kept` and `focal_gamma` must be >= 0. Received: {ohem_min_kept}, {focal_gamma}"
            )
        self.loss = loss
        self.ignore_label = ignore_label
        self.class_weights = class_weights
        self.ohem_threshold = float(ohem_threshold)
        self.ohem_min_kept = int(ohem_min_kept)
        self.focal_gamma = float(focal_gamma)

    def pixel_losses(self, labels, logits):
        """Per-pixel loss and weight, both `[B, H, W]` float32 (OHEM: weight 0 on dropped pixels)."""
        logits = _resize_to_labels(labels, logits)
        safe_labels, weights = _pixel_weights(labels, tf.shape(logits)[-1], self.ignore_label, self.class_weights)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
        if self.loss == "focal":
            probability = tf.exp(-cross_entropy)
            return (1.0 - probability) ** self.focal_gamma * cross_entropy, weights
        if self.loss == "ohem":
            weights *= tf.cast(self._ohem_kept(tf.stop_gradient(tf.exp(-cross_entropy)), weights > 0), tf.float32)
        return cross_entropy, weights

    def _ohem_kept(self, probability, valid):
        """Bool `[B, H, W]`: valid and (p < threshold, or p within the global `ohem_min_kept` smallest)."""
        kept = valid & (probability < self.ohem_threshold)
        k = self.ohem_min_kept
        if k == 0:
            return kept
        # Each replica's k smallest p (padded with +inf): the global k smallest are among them.
        candidates = tf.where(valid, probability, float("inf"))
        candidates = tf.concat([tf.reshape(candidates, [-1]), tf.fill([k], float("inf"))], axis=0)
        local_smallest = -tf.math.top_k(-candidates, k=k, sorted=False).values
        gathered = tf.distribute.get_replica_context().all_gather(local_smallest, axis=0)
        kth_smallest = -tf.math.top_k(-gathered, k=k, sorted=True).values[k - 1]
        return kept | (valid & (probability <= kth_smallest))

    def sums(self, labels, logits):
        """(loss_sum, weight_sum) of this replica: float32 scalars."""
        losses, weights = self.pixel_losses(labels, logits)
        return tf.reduce_sum(losses * weights), tf.reduce_sum(weights)

    def __call__(self, labels, outputs, global_count=None):
        shares = {}
        for name, key in (("loss_up", "logits"), ("loss_high", "logits_high")):
            if key not in outputs:
                continue
            loss_sum, weight_sum = self.sums(labels, outputs[key])
            if self.loss == "ohem" or global_count is None:
                # The kept pixels depend on the predictions: their global count needs a cross-replica sum.
                normaliser = _all_reduce_sum(tf.stop_gradient(weight_sum))
            else:
                normaliser = global_count
            shares[name] = loss_sum / tf.maximum(normaliser, 1e-6)
        return shares


def l2_weight_decay(variables, weight_decay, decay_norm_vars=False):
    """`weight_decay * sum(v^2) / 2` over convolution/dense kernels (and norm/bias vars if asked)."""
    if not weight_decay:
        return tf.constant(0.0)
    selected = [v for v in variables if decay_norm_vars or is_decayed_variable(v)]
    if not selected:
        return tf.constant(0.0)
    return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in selected])


def is_decayed_variable(variable):
    """Kernels decay; biases, norm parameters and position tables do not (as in the authors' code)."""
    name = variable.path if hasattr(variable, "path") else variable.name
    return name.endswith("kernel") or name.endswith("kernel:0")
