"""Shared fixtures: seeding, tiny configs, the standard synthetic dataset, the CamVid location (skipped with a
reason when absent)."""

import hashlib
import os

import keras
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMVID_DIR = os.path.join(os.path.dirname(ROOT), "shared", "data", "camvid")


def pytest_addoption(parser):
    parser.addoption(
        "--run_slow",
        action="store_true",
        default=False,
        help="Also run the tests marked slow (scripts end to end, training, exports, full-size backbones, "
        "multi-worker, kill/resume). CI and the README's test command run them.",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run_slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run_slow (CI and the README's test command do)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: trains, exports, builds a full-size backbone or runs scripts (seconds to minutes)"
    )
    # The scripts import the package: the ones the tests start in subprocesses import this checkout's, not an
    # installed copy's.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return  # the pytest-xdist controller runs no test, and importing TensorFlow here delays its workers' start
    # Two logical CPU devices for the whole session, so that MirroredStrategy / synchronised BatchNorm
    # code paths run with 2 replicas (this must happen before TensorFlow initialises its devices).
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)
    yield


# The standard small synthetic dataset: 16 train and 4 val street scenes of 64x64 in shards of 8 (train-0,
# train-1, val-0). A test that needs other sizes or counts writes its own and says why.
SYNTHETIC_RECORDS = dict(num_train=16, num_val=4, height=64, width=64, examples_per_shard=8)


def _file_digests(directory):
    digests = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(parent, name)
            with open(path, "rb") as handle:
                digests[os.path.relpath(path, directory)] = hashlib.sha256(handle.read()).hexdigest()
    return digests


@pytest.fixture(scope="session")
def synthetic_records(tmp_path_factory):
    """The directory of the standard synthetic dataset (`SYNTHETIC_RECORDS`), written once per session (per
    xdist worker). Tests share it, so they only read it: to damage, edit or convert records, copy it first
    (`shutil.copytree`). At the end of the session it is checked to be exactly as written."""
    from hfgd_tf.data.synthetic import write_synthetic_tfrecords

    data_dir = write_synthetic_tfrecords(str(tmp_path_factory.mktemp("synthetic_records")), **SYNTHETIC_RECORDS)
    written = _file_digests(data_dir)
    yield data_dir
    assert _file_digests(data_dir) == written, (
        f"a test changed the shared synthetic_records directory {data_dir}: copy it (shutil.copytree) before writing"
    )


@pytest.fixture
def camvid_dir():
    if not os.path.isdir(CAMVID_DIR):
        pytest.skip(f"CamVid not found at {CAMVID_DIR} (it lives in ../shared/data/camvid beside the project)")
    return CAMVID_DIR


def tiny_model_config(**overrides):
    from hfgd_tf.models import ModelConfig

    arguments = dict(num_classes=4, backbone="resnet_tiny", num_channels=16, cae_num_heads=4, norm_method="batch_norm")
    arguments.update(overrides)
    return ModelConfig(**arguments)


def random_images(batch=2, height=64, width=64, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, height, width, 3)).astype("float32")


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    Strategies created one after another in a process number their collective ops from the same keys,
    so a second strategy's all-reduce can meet a first one's of another shape ("Shape mismatch in the
    collective instance"); a real run has one strategy, and so do the tests.
    """
    import tensorflow as tf

    return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
