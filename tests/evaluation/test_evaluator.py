"""Evaluation over a split on 2 replicas (two logical CPUs) equals 1 replica, whatever the last batch holds."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.data import DataConfig
from hfgd_tf.data.synthetic import write_synthetic_tfrecords
from hfgd_tf.evaluation import EvalConfig, evaluate
from hfgd_tf.evaluation.evaluator import build_distributed_eval_dataset, global_eval_batch_size
from hfgd_tf.models import build_model
from tests.conftest import tiny_model_config

pytestmark = pytest.mark.slow

NUM_VAL = 5  # does not fill the last global batch of 2 replicas


@pytest.fixture(scope="module")
def data_config(tmp_path_factory):
    # Not the shared synthetic_records: NUM_VAL images, non-square (48x64) so that a height/width mix-up shows.
    data_dir = write_synthetic_tfrecords(
        str(tmp_path_factory.mktemp("synthetic")), 2, NUM_VAL, 48, 64, examples_per_shard=2
    )
    return DataConfig("synthetic_streets", data_dir)


def _evaluate(strategy, data_config, eval_config):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build_model(tiny_model_config(num_classes=8))
    dataset = build_distributed_eval_dataset(strategy, data_config, eval_config.eval_batch_size)
    info = data_config.info
    return evaluate(model, dataset, info.num_classes, info.ignore_label, eval_config, strategy=strategy)


def test_five_images_on_two_replicas_give_the_confusion_matrix_of_one_replica(data_config, mirrored_strategy):
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    protocol = dict(eval_scales=(0.75, 1.0), flip=True)
    single = _evaluate(
        tf.distribute.OneDeviceStrategy(devices[0]), data_config, EvalConfig(eval_batch_size=1, **protocol)
    )
    # The default 0: one image per replica, so the last step has one real image and one padded one.
    double = _evaluate(mirrored_strategy, data_config, EvalConfig(**protocol))
    assert double["num_images"] == single["num_images"] == NUM_VAL
    np.testing.assert_array_equal(np.array(double["confusion_matrix"]), np.array(single["confusion_matrix"]))


def test_padded_batches_have_static_shapes_and_padding_is_marked(data_config, mirrored_strategy):
    mirrored = mirrored_strategy
    batches = list(build_distributed_eval_dataset(mirrored, data_config, 4))
    assert len(batches) == 2  # ceil(5 / 4)
    valid = []
    for images, labels, flags in batches:
        for replica_images, replica_labels, replica_flags in zip(
            mirrored.experimental_local_results(images),
            mirrored.experimental_local_results(labels),
            mirrored.experimental_local_results(flags),
        ):
            assert replica_images.shape == (2, 48, 64, 3) and replica_labels.shape == (2, 48, 64)
            for label, flag in zip(replica_labels.numpy(), replica_flags.numpy()):
                valid.append(int(flag))
                if not flag:
                    assert (label == data_config.info.ignore_label).all()
    assert sorted(valid) == [0, 0, 0, 1, 1, 1, 1, 1]


def test_eval_batch_must_be_a_multiple_of_the_replicas():
    assert global_eval_batch_size(0, 2) == 2
    assert global_eval_batch_size(4, 2) == 4
    with pytest.raises(ValueError, match="multiple of the 2 replicas"):
        global_eval_batch_size(3, 2)
