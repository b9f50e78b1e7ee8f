import numpy as np
import pytest

from hfgd_tf.data import DataConfig, build_eval_dataset, build_train_dataset
from hfgd_tf.data.synthetic import write_synthetic_tfrecords


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    # Not the shared synthetic_records: non-square 64x80 images in uneven shards (10, 10, 4; 6 val).
    return write_synthetic_tfrecords(str(tmp_path_factory.mktemp("synthetic")), 24, 6, 64, 80, examples_per_shard=10)


def test_training_batches(synthetic_dir):
    config = DataConfig("synthetic_streets", synthetic_dir, crop_height=48, crop_width=40, shuffle_buffer=8)
    images, labels = next(iter(build_train_dataset(config, 4)))
    assert images.shape == (4, 48, 40, 3) and labels.shape == (4, 48, 40)
    assert images.dtype.name == "float32" and labels.dtype.name == "int32"
    assert set(np.unique(labels.numpy())) <= set(range(8)) | {255}


def test_resume_skips_to_the_same_batches(synthetic_dir):
    config = DataConfig("synthetic_streets", synthetic_dir, crop_height=32, crop_width=32, shuffle_buffer=8)
    uninterrupted = [labels.numpy() for _, labels in build_train_dataset(config, 4).take(9)]
    resumed = [labels.numpy() for _, labels in build_train_dataset(config, 4, initial_step=7).take(2)]
    np.testing.assert_array_equal(uninterrupted[7], resumed[0])
    np.testing.assert_array_equal(uninterrupted[8], resumed[1])


def test_eval_dataset_keeps_full_resolution_and_order(synthetic_dir):
    config = DataConfig("synthetic_streets", synthetic_dir)
    batches = list(build_eval_dataset(config, batch_size=4))
    assert [b[0].shape[0] for b in batches] == [4, 2]
    assert batches[0][1].shape == (4, 64, 80)
    again = list(build_eval_dataset(config, batch_size=4))
    np.testing.assert_array_equal(batches[0][1].numpy(), again[0][1].numpy())


def test_eval_padding_marks_padding_as_ignore(synthetic_dir):
    config = DataConfig("synthetic_streets", synthetic_dir, eval_crop_height=72, eval_crop_width=96)
    images, labels = next(iter(build_eval_dataset(config, batch_size=2)))
    assert labels.shape == (2, 72, 96)
    assert (labels.numpy()[:, 64:] == 255).all() and (labels.numpy()[:, :, 80:] == 255).all()


def test_eval_image_larger_than_the_eval_crop_is_a_clear_error(synthetic_dir):
    import tensorflow as tf

    config = DataConfig("synthetic_streets", synthetic_dir, eval_crop_height=32, eval_crop_width=96)
    with pytest.raises(tf.errors.InvalidArgumentError, match="eval_crop_height"):
        next(iter(build_eval_dataset(config, batch_size=2)))
