"""Resuming the training stream: the same batches as an uninterrupted run, without reading consumed epochs."""

import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.data import DataConfig, build_train_dataset
from hfgd_tf.data.synthetic import write_synthetic_tfrecords

STEPS_PER_EPOCH = 6  # 24 records, batch 4


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    # Not the shared synthetic_records: 24 records (STEPS_PER_EPOCH) in uneven shards of 10, 10 and 4.
    data_dir = write_synthetic_tfrecords(
        str(tmp_path_factory.mktemp("synthetic")), 24, 2, 32, 32, examples_per_shard=10
    )
    return DataConfig("synthetic_streets", data_dir, crop_height=32, crop_width=32, shuffle_buffer=8)


def test_resume_in_a_later_epoch_gives_the_uninterrupted_batches(config):
    uninterrupted = [labels.numpy() for _, labels in build_train_dataset(config, 4).take(3 * STEPS_PER_EPOCH)]
    for step in (1, STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH + 2):
        resumed = [labels.numpy() for _, labels in build_train_dataset(config, 4, initial_step=step).take(2)]
        np.testing.assert_array_equal(resumed[0], uninterrupted[step], err_msg=f"step {step}")
        np.testing.assert_array_equal(resumed[1], uninterrupted[step + 1], err_msg=f"step {step}")


def test_resume_does_not_read_the_consumed_epochs(config, monkeypatch):
    reads = []
    real = tf.data.TFRecordDataset

    def counting(*args, **kwargs):
        def count(record):
            reads.append(1)
            return record

        return real(*args, **kwargs).map(lambda r: tf.py_function(count, [r], tf.string))

    monkeypatch.setattr(tf.data, "TFRecordDataset", counting)

    def records_read(step):
        reads.clear()
        next(iter(build_train_dataset(config, 4, initial_step=step)))
        return len(reads)

    early, late = records_read(1), records_read(10 * STEPS_PER_EPOCH + 1)
    # Both skip 4 records of their epoch; skipping by reading would read 10 more epochs (240 records).
    assert late - early < 24, (early, late)
