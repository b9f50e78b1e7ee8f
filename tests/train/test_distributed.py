"""One step on 2 replicas (MirroredStrategy over two logical CPUs) equals one step on 1 replica."""

import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.data import DataConfig
from hfgd_tf.data.synthetic import write_synthetic_tfrecords
from hfgd_tf.evaluation import EvalConfig
from hfgd_tf.train import OptimizerConfig, TrainConfig, Trainer
from tests.conftest import tiny_model_config


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    return write_synthetic_tfrecords(str(tmp_path_factory.mktemp("synthetic")), 16, 4, 64, 64, examples_per_shard=8)


def _train(strategy, data_dir, checkpoint_dir, steps=2):
    trainer = Trainer(
        tiny_model_config(num_classes=8, norm_method="sync_batch_norm"),
        DataConfig("synthetic_streets", data_dir, crop_height=48, crop_width=48, shuffle_buffer=8),
        OptimizerConfig(initial_lr=0.05),
        TrainConfig(
            checkpoint_dir=checkpoint_dir, batch_size=4, train_epoch=1, epoch_steps=steps,
            log_every_steps=1, evaluate_every_epoch=False,
        ),
        EvalConfig(eval_batch_size=4),
        strategy=strategy,
    )
    trainer.train()
    return trainer


def test_two_logical_cpus_are_available():
    assert len(tf.config.list_logical_devices("CPU")) == 2


def test_two_replicas_match_one_replica_with_the_same_global_batch(synthetic_dir, tmp_path):
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    single = _train(tf.distribute.OneDeviceStrategy(devices[0]), synthetic_dir, str(tmp_path / "one"))
    mirrored = _train(tf.distribute.MirroredStrategy(devices), synthetic_dir, str(tmp_path / "two"))
    assert mirrored.strategy.num_replicas_in_sync == 2
    changed = 0
    for a, b, initial in zip(single.model.weights, mirrored.model.weights, _initial_weights()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=a.path)
        changed += int(not np.allclose(a.numpy(), initial))
    assert changed > len(single.model.weights) // 2, "the step must actually change the weights"


def _initial_weights():
    from hfgd_tf.models import build_model
    import keras

    keras.utils.set_random_seed(0)
    return [w.numpy() for w in build_model(tiny_model_config(num_classes=8, norm_method="sync_batch_norm")).weights]


def test_batch_not_divisible_by_replicas_is_rejected(synthetic_dir, tmp_path):
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    with pytest.raises(ValueError, match="divisible"):
        Trainer(
            tiny_model_config(num_classes=8),
            DataConfig("synthetic_streets", synthetic_dir),
            OptimizerConfig(),
            TrainConfig(checkpoint_dir=str(tmp_path), batch_size=3),
            EvalConfig(),
            strategy=tf.distribute.MirroredStrategy(devices),
        )
