import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.train.losses import SegmentationLoss, is_decayed_variable, l2_weight_decay, pixel_cross_entropy_sum
from hfgd_tf.train.schedules import WarmupDecaySchedule


def test_cross_entropy_by_hand():
    logits = np.zeros((1, 1, 2, 3), np.float32)
    logits[0, 0, 0] = [2.0, 0.0, 0.0]
    labels = np.array([[[0, 2]]], np.int32)
    loss_sum, count = pixel_cross_entropy_sum(tf.constant(labels), tf.constant(logits), 255)
    expected = -np.log(np.exp(2) / (np.exp(2) + 2)) - np.log(1 / 3)
    assert float(count) == 2
    assert float(loss_sum) == pytest.approx(expected, rel=1e-6)


def test_an_ignored_pixel_changes_neither_sum_nor_count():
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(1, 2, 2, 3)), tf.float32)
    labels = tf.constant([[[0, 1], [2, 255]]], tf.int32)
    other_logits = tf.tensor_scatter_nd_update(logits, [[0, 1, 1]], [[9.0, -9.0, 3.0]])
    first = pixel_cross_entropy_sum(labels, logits, 255)
    second = pixel_cross_entropy_sum(labels, other_logits, 255)
    assert float(first[0]) == pytest.approx(float(second[0]))
    assert float(first[1]) == 3


def test_low_resolution_logits_are_upsampled_to_the_labels():
    loss_sum, count = pixel_cross_entropy_sum(tf.zeros([2, 8, 8], tf.int32), tf.zeros([2, 2, 2, 4]), 255)
    assert float(count) == 128
    assert float(loss_sum) == pytest.approx(128 * np.log(4), rel=1e-5)


def test_weight_decay_only_on_kernels_by_default():
    kernel = tf.Variable(tf.ones([2, 2]), name="kernel")
    bias = tf.Variable(tf.ones([2]), name="bias")
    assert is_decayed_variable(kernel) and not is_decayed_variable(bias)
    assert float(l2_weight_decay([kernel, bias], 0.1)) == pytest.approx(0.1 * 4 / 2)
    assert float(l2_weight_decay([kernel, bias], 0.1, decay_norm_vars=True)) == pytest.approx(0.1 * 6 / 2)


def test_poly_schedule_with_warmup():
    schedule = WarmupDecaySchedule(0.01, total_steps=110, decay_strategy="poly", power=0.9, warmup_steps=10)
    assert float(schedule(0)) == pytest.approx(0.001)
    assert float(schedule(9)) == pytest.approx(0.01)
    assert float(schedule(60)) == pytest.approx(0.01 * 0.5**0.9)
    assert float(schedule(110)) == pytest.approx(0.0)
    cosine = WarmupDecaySchedule(1.0, total_steps=100, decay_strategy="cosine")
    assert float(cosine(50)) == pytest.approx(0.5)


def test_class_weights_give_the_weighted_mean():
    logits = tf.constant(np.random.default_rng(1).normal(size=(1, 1, 3, 2)), tf.float32)
    labels = tf.constant([[[0, 1, 1]]], tf.int32)
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits).numpy()[0, 0]
    loss_sum, weight_sum = pixel_cross_entropy_sum(labels, logits, 255, class_weights=[2.0, 0.5])
    assert float(weight_sum) == pytest.approx(3.0)
    assert float(loss_sum) == pytest.approx(2.0 * per_pixel[0] + 0.5 * (per_pixel[1] + per_pixel[2]), rel=1e-6)


# === OHEM and focal loss: hand-computed cases, ignore label, class weights, both heads, replicas ===


def _logits_with_true_class_probability(probabilities, labels, num_classes=2):
    """`[1, 1, N, K]` logits whose softmax gives `probabilities[i]` to class `labels[i]` (the rest
    spread evenly), so that a test can state each pixel's p by hand."""
    p = np.asarray(probabilities, np.float64)
    rest = (1.0 - p) / (num_classes - 1)
    logits = np.repeat(np.log(rest)[:, None], num_classes, axis=1)
    for i, label in enumerate(labels):
        logits[i, label if label < num_classes else 0] = np.log(p[i])
    return tf.constant(logits[None, None], tf.float32), tf.constant(np.asarray(labels, np.int32)[None, None])


# Five supervised pixels of known true-class probability, and an ignored one that would be the hardest.
_P = [0.9, 0.6, 0.3, 0.8, 0.5, 0.01]
_LABELS = [0, 1, 0, 1, 0, 255]


@pytest.mark.parametrize(
    "min_kept, kept",
    [
        (0, [0.6, 0.3, 0.5]),  # p < 0.7 only
        (2, [0.6, 0.3, 0.5]),  # the threshold already keeps more than 2
        (4, [0.6, 0.3, 0.8, 0.5]),  # the 4 hardest supervised pixels: 0.3, 0.5, 0.6, 0.8
        (10, [0.9, 0.6, 0.3, 0.8, 0.5]),  # more than there are: every supervised pixel, never the ignored one
    ],
)
def test_ohem_keeps_pixels_under_the_threshold_or_among_the_min_kept_hardest(min_kept, kept):
    logits, labels = _logits_with_true_class_probability(_P, _LABELS)
    loss = SegmentationLoss("ohem", 255, ohem_threshold=0.7, ohem_min_kept=min_kept)
    shares = loss(labels, {"logits": logits})
    assert float(shares["loss_up"]) == pytest.approx(np.mean(-np.log(kept)), rel=1e-5)
    loss_sum, count = loss.sums(labels, logits)
    assert float(count) == len(kept)


def test_ohem_composes_class_weights():
    logits, labels = _logits_with_true_class_probability(_P, _LABELS)
    loss = SegmentationLoss("ohem", 255, class_weights=[2.0, 0.5], ohem_threshold=0.7, ohem_min_kept=4)
    # Kept: 0.6 (class 1), 0.3 (class 0), 0.8 (class 1), 0.5 (class 0).
    weights, p = np.array([0.5, 2.0, 0.5, 2.0]), np.array([0.6, 0.3, 0.8, 0.5])
    expected = np.sum(weights * -np.log(p)) / np.sum(weights)
    assert float(loss(labels, {"logits": logits})["loss_up"]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("gamma", [0.0, 2.0, 0.5])
def test_focal_loss_by_hand(gamma):
    logits, labels = _logits_with_true_class_probability(_P, _LABELS)
    p = np.array(_P[:5])
    expected = np.mean((1 - p) ** gamma * -np.log(p))
    loss = SegmentationLoss("focal", 255, focal_gamma=gamma)
    assert float(loss(labels, {"logits": logits})["loss_up"]) == pytest.approx(expected, rel=1e-5)
    weighted = SegmentationLoss("focal", 255, class_weights=[2.0, 0.5], focal_gamma=gamma)
    w = np.array([2.0, 0.5, 2.0, 0.5, 2.0])
    expected = np.sum(w * (1 - p) ** gamma * -np.log(p)) / np.sum(w)
    assert float(weighted(labels, {"logits": logits})["loss_up"]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["cross_entropy", "ohem", "focal"])
def test_both_heads_take_the_same_loss(name):
    rng = np.random.default_rng(0)
    labels = tf.constant(rng.integers(0, 3, (2, 16, 16)), tf.int32)
    logits = tf.constant(rng.normal(size=(2, 16, 16, 3)), tf.float32)
    logits_high = tf.constant(rng.normal(size=(2, 2, 2, 3)), tf.float32)
    loss = SegmentationLoss(name, 255, ohem_threshold=0.5, ohem_min_kept=100)
    shares = loss(labels, {"logits": logits, "logits_high": logits_high})
    upsampled = tf.image.resize(logits_high, (16, 16), method="bilinear")
    alone = loss(labels, {"logits": upsampled})["loss_up"]
    assert float(shares["loss_high"]) == pytest.approx(float(alone), rel=1e-6)
    assert float(shares["loss_up"]) == pytest.approx(float(loss(labels, {"logits": logits})["loss_up"]), rel=1e-6)


def test_cross_entropy_divides_by_the_given_global_count():
    logits, labels = _logits_with_true_class_probability(_P, _LABELS)
    loss = SegmentationLoss("cross_entropy", 255)
    share = loss(labels, {"logits": logits}, global_count=tf.constant(10.0))["loss_up"]
    assert float(share) == pytest.approx(np.sum(-np.log(_P[:5])) / 10.0, rel=1e-5)


def test_ohem_on_two_replicas_equals_one_replica():
    """The kept pixels and the normaliser are those of the global batch: replica 0 holds the easy
    images and replica 1 the hard ones (124 supervised pixels), so that the 180 kept pixels come from
    both, and a per-replica threshold or normaliser would give another loss."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (4, 8, 8)).astype(np.int32)
    labels[:, 0, :2] = 255
    logits = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    logits[:2] += 4.0 * np.eye(3, dtype=np.float32)[labels[:2].clip(0, 2)]  # easy half
    loss = SegmentationLoss("ohem", 255, class_weights=[1.0, 2.0, 0.5], ohem_threshold=0.3, ohem_min_kept=180)
    single = float(loss(tf.constant(labels), {"logits": tf.constant(logits)})["loss_up"])

    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    # Not the default collective ops: their instance keys are process-wide and would clash with the
    # all-reduces of another MirroredStrategy made later in the same test session.
    strategy = tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    assert strategy.num_replicas_in_sync == 2

    def part(context):
        index = context.replica_id_in_sync_group
        return tf.constant(labels[2 * index : 2 * index + 2]), tf.constant(logits[2 * index : 2 * index + 2])

    inputs = strategy.experimental_distribute_values_from_function(part)

    @tf.function
    def run(inputs):
        shares = strategy.run(lambda pair: loss(pair[0], {"logits": pair[1]})["loss_up"], args=(inputs,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, shares, axis=None)

    assert float(run(inputs)) == pytest.approx(single, rel=1e-5)


def _trainer(data_dir, checkpoint_dir, strategy=None, **train_overrides):
    from hfgd_tf.data import DataConfig
    from hfgd_tf.evaluation import EvalConfig
    from hfgd_tf.train import OptimizerConfig, TrainConfig, Trainer
    from tests.conftest import tiny_model_config

    return Trainer(
        tiny_model_config(num_classes=8, norm_method="sync_batch_norm"),
        DataConfig("synthetic_streets", data_dir, crop_height=48, crop_width=48, shuffle_buffer=8),
        OptimizerConfig(initial_lr=0.05),
        TrainConfig(
            checkpoint_dir=checkpoint_dir,
            batch_size=4,
            train_epoch=1,
            epoch_steps=1,
            log_every_steps=1,
            evaluate_every_epoch=False,
            **train_overrides,
        ),
        EvalConfig(eval_batch_size=2),
        strategy=strategy,
    )


@pytest.mark.parametrize("name", ["ohem", "focal"])
def test_trainer_uses_the_configured_loss_for_both_heads(synthetic_records, tmp_path, name):
    trainer = _trainer(
        synthetic_records,
        str(tmp_path),
        tf.distribute.get_strategy(),
        loss=name,
        ohem_threshold=0.1,
        ohem_min_kept=3000,
        focal_gamma=1.5,
    )
    images = tf.constant(np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 3)), tf.float32)
    labels = tf.constant(np.random.default_rng(1).integers(0, 8, (2, 48, 48)), tf.int32)
    count = tf.constant(2 * 48 * 48, tf.float32)
    losses, _ = trainer._loss_and_gradients(images, labels, count)
    # At initialisation p is about 1/8: OHEM keeps the 3000 hardest of the 4608 pixels, not all.
    expected = SegmentationLoss(name, 255, ohem_threshold=0.1, ohem_min_kept=3000, focal_gamma=1.5)(
        labels, trainer.model(images, training=True), count
    )
    assert set(expected) == {"loss_up", "loss_high"}
    for key in expected:
        assert float(losses[key]) == pytest.approx(float(expected[key]), rel=1e-5), key


def test_trainer_refuses_ohem_with_jit_compile(synthetic_records, tmp_path):
    with pytest.raises(ValueError, match="jit_compile"):
        _trainer(synthetic_records, str(tmp_path), strategy=tf.distribute.get_strategy(), loss="ohem", jit_compile=True)


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(loss="dice"), "loss"),
        (dict(ohem_threshold=0.0), "ohem_threshold"),
        (dict(focal_gamma=-1.0), "focal_gamma"),
    ],
)
def test_bad_loss_options_name_the_field(overrides, field):
    from hfgd_tf.train import TrainConfig

    with pytest.raises(ValueError, match=field):
        TrainConfig(checkpoint_dir="run", **overrides)
