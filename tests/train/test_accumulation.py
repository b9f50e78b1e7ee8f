"""Gradient accumulation: N micro-batches of B make one update equal to one step with a batch of N * B."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.data import DataConfig
from hfgd_tf.evaluation import EvalConfig
from hfgd_tf.train import OptimizerConfig, TrainConfig, Trainer
from tests.conftest import tiny_model_config


def _trainer(strategy, data_dir, checkpoint_dir, batch_size, accumulation_steps, loss="cross_entropy", **train):
    keras.utils.set_random_seed(0)
    return Trainer(
        # GroupNorm: BatchNorm statistics would differ between micro-batches and the whole batch.
        tiny_model_config(num_classes=8, norm_method="group_norm"),
        DataConfig("synthetic_streets", data_dir, crop_height=32, crop_width=32, shuffle_buffer=8),
        # SGD with momentum, L2 decay in the loss (once per update) and a poly schedule over 2 updates.
        OptimizerConfig(initial_lr=0.05, weight_decay=1e-3),
        # Two updates, a checkpoint after each.
        TrainConfig(
            checkpoint_dir=checkpoint_dir,
            batch_size=batch_size,
            accumulation_steps=accumulation_steps,
            train_epoch=2,
            epoch_steps=1,
            loss=loss,
            evaluate_every_epoch=False,
            log_every_steps=1,
            **train,
        ),
        EvalConfig(eval_batch_size=2),
        strategy=strategy,
    )


def _assert_same_weights(expected, actual, initial):
    changed = 0
    for a, b, start in zip(expected.model.weights, actual.model.weights, initial):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-6, err_msg=a.path)
        changed += int(not np.allclose(a.numpy(), start))
    assert changed > len(initial) // 3, "the updates must actually change the weights"


# lr(k) = 0.05 * (1 - k / 2) ** 0.9 after k of the 2 updates (k micro-batch pairs, not 2k micro-batches).
LR_AFTER = {1: 0.05 * 0.5**0.9, 2: 0.0}


def _assert_schedule_counts_updates(trainer, updates):
    assert int(trainer.optimizer.iterations.numpy()) == updates
    assert float(trainer.optimizer.learning_rate) == pytest.approx(LR_AFTER[updates], rel=1e-6, abs=1e-9)


def _device():
    return tf.distribute.OneDeviceStrategy(tf.config.list_logical_devices("CPU")[0].name)


@pytest.fixture(scope="module")
def whole(synthetic_records, tmp_path_factory):
    """Two plain updates with batch 4: (trainer, initial weights)."""
    trainer = _trainer(
        _device(), synthetic_records, str(tmp_path_factory.mktemp("whole")), batch_size=4, accumulation_steps=1
    )
    initial = [w.numpy() for w in trainer.model.weights]
    trainer.train()
    return trainer, initial


@pytest.mark.slow
def test_two_micro_batches_equal_one_double_batch_and_resume_counts_updates(synthetic_records, tmp_path, whole):
    whole, initial = whole
    # The accumulated run is killed after its first update and resumed: the data stream must resume
    # after 2 micro-batches, not after 1.
    first = _trainer(_device(), synthetic_records, str(tmp_path), batch_size=2, accumulation_steps=2)
    np.testing.assert_array_equal(first.model.weights[0].numpy(), initial[0])
    first.train_config = dataclasses.replace(first.train_config, train_epoch=1)
    first.train()
    _assert_schedule_counts_updates(first, 1)
    accumulated = _trainer(_device(), synthetic_records, str(tmp_path), batch_size=2, accumulation_steps=2)
    assert accumulated.restore() == 1
    accumulated.train()
    _assert_schedule_counts_updates(accumulated, 2)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-2")
    np.testing.assert_allclose(
        float(accumulated.last_step_outputs["total"]), float(whole.last_step_outputs["total"]), rtol=1e-5
    )
    _assert_same_weights(whole, accumulated, initial)


@pytest.mark.slow
def test_accumulation_on_two_replicas_equals_one_double_batch_on_one(
    synthetic_records, tmp_path, whole, mirrored_strategy
):
    whole, initial = whole
    # Two replicas with one image each per micro-batch, two micro-batches per update.
    accumulated = _trainer(mirrored_strategy, synthetic_records, str(tmp_path), batch_size=2, accumulation_steps=2)
    accumulated.train()
    _assert_schedule_counts_updates(accumulated, 2)
    _assert_same_weights(whole, accumulated, initial)


@pytest.mark.slow
def test_accumulation_with_float16_loss_scaling_trains(synthetic_records, tmp_path):
    trainer = _trainer(
        _device(), synthetic_records, str(tmp_path), batch_size=2, accumulation_steps=2, mixed_precision="float16"
    )
    before = [v.numpy() for v in trainer.model.trainable_variables]
    trainer.train()
    assert int(trainer.optimizer.iterations.numpy()) == 2
    assert float(trainer.last_step_outputs["update_applied"]) == 1.0
    changed = sum(not np.array_equal(b, v.numpy()) for b, v in zip(before, trainer.model.trainable_variables))
    assert changed > len(before) // 3
    assert all(np.isfinite(v.numpy()).all() for v in trainer.model.weights)


def test_accumulation_steps_is_validated_and_refused_with_ohem(synthetic_records, tmp_path):
    with pytest.raises(ValueError, match="accumulation_steps must be >= 1"):
        TrainConfig(checkpoint_dir=str(tmp_path), accumulation_steps=0)
    with pytest.raises(ValueError, match="'ohem' cannot be combined with accumulation_steps > 1"):
        _trainer(None, synthetic_records, str(tmp_path), batch_size=2, accumulation_steps=2, loss="ohem")


@pytest.mark.slow
def test_accumulation_on_swin_sums_its_sparse_position_bias_gradients(synthetic_records, tmp_path):
    """Swin's relative position bias is a gather: its gradient is IndexedSlices, which must be summed densely."""
    keras.utils.set_random_seed(0)
    trainer = Trainer(
        tiny_model_config(num_classes=8, backbone="swin_tiny_test", norm_method="group_norm", drop_path_rate=0.0),
        DataConfig("synthetic_streets", synthetic_records, crop_height=64, crop_width=64, shuffle_buffer=8),
        OptimizerConfig(initial_lr=0.01),
        TrainConfig(
            checkpoint_dir=str(tmp_path),
            batch_size=2,
            accumulation_steps=2,
            train_epoch=1,
            epoch_steps=1,
            evaluate_every_epoch=False,
        ),
        EvalConfig(eval_batch_size=2),
        strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
    )
    tables = [v for v in trainer.model.backbone.trainable_variables if "relative_position" in v.path]
    before = [v.numpy() for v in tables]
    trainer.train()
    assert tables and any(not np.array_equal(v.numpy(), b) for v, b in zip(tables, before))
