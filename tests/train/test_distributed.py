"""One step on 2 replicas (MirroredStrategy over two logical CPUs) equals one step on 1 replica."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.data import DataConfig
from hfgd_tf.evaluation import EvalConfig
from hfgd_tf.layers.drop_path import DropPath
from hfgd_tf.train import OptimizerConfig, TrainConfig, Trainer
from tests.conftest import tiny_model_config


def _devices():
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def _trainer(strategy, data_dir, checkpoint_dir, steps=2, norm_method="sync_batch_norm", optimizer=None, **train):
    return Trainer(
        tiny_model_config(num_classes=8, norm_method=norm_method),
        DataConfig("synthetic_streets", data_dir, crop_height=48, crop_width=48, shuffle_buffer=8),
        optimizer or OptimizerConfig(initial_lr=0.05),
        TrainConfig(
            checkpoint_dir=checkpoint_dir,
            batch_size=4,
            train_epoch=1,
            epoch_steps=steps,
            log_every_steps=1,
            evaluate_every_epoch=False,
            **train,
        ),
        EvalConfig(eval_batch_size=4),
        strategy=strategy,
    )


def test_two_logical_cpus_are_available():
    assert len(tf.config.list_logical_devices("CPU")) == 2


# Each case trains 2 steps on 1 and on 2 replicas from the same initial weights and data. The clip norm
# is far below the gradient norm, so every step is clipped; clipping each replica's half before the sum
# would give a twice larger update.
CASES = {
    "sync_bn_sgd_clip": dict(optimizer=OptimizerConfig(initial_lr=0.5, gradient_clip_norm=0.1)),
    "float16_loss_scaling_sgd_clip": dict(
        optimizer=OptimizerConfig(initial_lr=0.5, gradient_clip_norm=0.1), mixed_precision="float16"
    ),
    # XLA-compiled forward/backward (GroupNorm: SyncBN is refused with XLA on >1 replica); warmup and the
    # backbone at 0.1x the LR. SGD, not AdamW: Adam's first steps divide by |g|, so the sign of a
    # near-zero gradient, which float32 summation order decides, moved one weight by 28% of the LR.
    "jit_compile_group_norm_sgd_backbone_lr": dict(
        norm_method="group_norm",
        jit_compile=True,
        optimizer=OptimizerConfig(initial_lr=0.05, warmup_steps=1, backbone_lr_multiplier=0.1),
    ),
}
# float16 convolution gradients differ by ~2e-4 between one and two partial sums; a per-replica clip
# would differ by the size of the update (~1e-2).
TOLERANCES = {"float16_loss_scaling_sgd_clip": dict(rtol=1e-2, atol=5e-4)}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_replicas_match_one_replica_with_the_same_global_batch(
    synthetic_records, tmp_path, case, mirrored_strategy
):
    runs = []
    for name, strategy in (("one", tf.distribute.OneDeviceStrategy(_devices()[0])), ("two", mirrored_strategy)):
        keras.utils.set_random_seed(0)
        trainer = _trainer(strategy, synthetic_records, str(tmp_path / name), **CASES[case])
        initial = [w.numpy() for w in trainer.model.weights]
        trainer.train()
        runs.append(trainer)
    single, mirrored = runs
    assert mirrored.strategy.num_replicas_in_sync == 2
    assert int(single.optimizer.iterations.numpy()) == int(mirrored.optimizer.iterations.numpy()) == 2
    clip = CASES[case]["optimizer"].gradient_clip_norm
    norms = [float(run.last_step_outputs["gradient_norm"]) for run in runs]
    np.testing.assert_allclose(norms[1], norms[0], rtol=5e-3)
    assert not clip or norms[1] > 3 * clip, "clipping must be active"
    changed, largest_change = 0, 0.0
    for a, b, start in zip(single.model.weights, mirrored.model.weights, initial):
        np.testing.assert_allclose(
            b.numpy(), a.numpy(), err_msg=a.path, **TOLERANCES.get(case, dict(rtol=1e-4, atol=1e-6))
        )
        changed += int(not np.allclose(a.numpy(), start))
        largest_change = max(largest_change, float(np.abs(a.numpy() - start).max()))
    assert changed > len(single.model.weights) // 2, "the steps must actually change the weights"
    print(case, "gradient norms", norms, "largest weight change", largest_change)


@pytest.mark.slow
def test_float16_overflow_on_one_replica_skips_the_step_on_both(synthetic_records, tmp_path, mirrored_strategy):
    trainer = _trainer(mirrored_strategy, synthetic_records, str(tmp_path), mixed_precision="float16")
    compute = trainer._gradient_fn
    overflow = tf.Variable(True, trainable=False)

    def overflow_on_replica_1(images, labels, count):
        # What a float16 overflow gives: an Inf in the (scaled) gradient of replica 1 only.
        losses, gradients = compute(images, labels, count)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        factor = tf.where(tf.logical_and(overflow, tf.equal(replica, 1)), np.inf, 1.0)
        return losses, [g * tf.cast(factor, g.dtype) for g in gradients]

    trainer._gradient_fn = overflow_on_replica_1
    iterator = trainer.distributed_iterator()
    step = trainer.make_train_step()
    scale = float(trainer.optimizer.dynamic_scale.numpy())
    before = [[c.numpy() for c in v.value.values] for v in trainer.model.trainable_variables]
    outputs = step(iterator)
    assert float(outputs["update_applied"]) == 0.0
    assert np.isfinite(float(outputs["total"]))
    for variable, copies in zip(trainer.model.trainable_variables, before):
        for replica, (component, old) in enumerate(zip(variable.value.values, copies)):
            np.testing.assert_array_equal(component.numpy(), old, err_msg=f"{variable.path} on replica {replica}")
    assert float(trainer.optimizer.dynamic_scale.numpy()) == scale / 2
    # The schedule follows the step counter: the skipped step counts.
    assert int(trainer.optimizer.iterations.numpy()) == 1
    schedule = trainer._inner_optimizer._learning_rate
    assert float(trainer.optimizer.learning_rate) == pytest.approx(float(schedule(1)))
    # Without the overflow the next step applies on both replicas, identically.
    overflow.assign(False)
    assert float(step(iterator)["update_applied"]) == 1.0
    changed = 0
    for variable, copies in zip(trainer.model.trainable_variables, before):
        first, second = (c.numpy() for c in variable.value.values)
        np.testing.assert_array_equal(first, second, err_msg=variable.path)
        assert np.isfinite(first).all(), variable.path
        changed += int(not np.array_equal(first, copies[0]))
    assert changed > len(before) // 2
    assert int(trainer.optimizer.iterations.numpy()) == 2


def test_jit_compile_with_sync_batch_norm_on_two_replicas_is_refused(synthetic_records, tmp_path, mirrored_strategy):
    with pytest.raises(ValueError, match="--norm_method=batch_norm.*group_norm"):
        _trainer(mirrored_strategy, synthetic_records, str(tmp_path), jit_compile=True)


def test_batch_not_divisible_by_replicas_is_rejected(synthetic_records, tmp_path, mirrored_strategy):
    with pytest.raises(ValueError, match="divisible"):
        Trainer(
            tiny_model_config(num_classes=8),
            DataConfig("synthetic_streets", synthetic_records),
            OptimizerConfig(),
            TrainConfig(checkpoint_dir=str(tmp_path), batch_size=3),
            EvalConfig(),
            strategy=mirrored_strategy,
        )


def test_eval_batch_not_a_multiple_of_the_replicas_is_rejected_at_start(synthetic_records, tmp_path, mirrored_strategy):
    with pytest.raises(ValueError, match="eval_batch_size.*multiple of the 2 replicas"):
        Trainer(
            tiny_model_config(num_classes=8),
            DataConfig("synthetic_streets", synthetic_records),
            OptimizerConfig(),
            TrainConfig(checkpoint_dir=str(tmp_path), batch_size=4),
            EvalConfig(eval_batch_size=3),
            strategy=mirrored_strategy,
        )


@pytest.mark.slow
def test_swin_with_drop_path_trains_and_saves_on_two_replicas(synthetic_records, tmp_path, mirrored_strategy):
    # Drop path call counters (int64 weights, one per replica) through mirrored steps and a checkpoint.
    trainer = Trainer(
        tiny_model_config(num_classes=8, backbone="swin_tiny_test", drop_path_rate=0.3, norm_method="sync_batch_norm"),
        DataConfig("synthetic_streets", synthetic_records, crop_height=48, crop_width=48, shuffle_buffer=8),
        OptimizerConfig(initial_lr=0.05),
        TrainConfig(
            checkpoint_dir=str(tmp_path), batch_size=4, train_epoch=1, epoch_steps=2, evaluate_every_epoch=False
        ),
        EvalConfig(eval_batch_size=4),
        strategy=mirrored_strategy,
    )
    trainer.train()
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-2")
    # One training call per step for the layers that drop (the first block's rate is 0: never called).
    layers = [layer for layer in trainer.model._flatten_layers() if isinstance(layer, DropPath) and layer.rate]
    assert layers and [int(layer.calls.numpy()) for layer in layers] == [2] * len(layers)
