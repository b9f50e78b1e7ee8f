"""Shared fixtures: seeding, tiny configs, the CamVid location (skipped with a reason when absent)."""

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
        help="Also run the tests marked slow (scripts end to end, training, multi-worker, kill/resume). "
        "CI and the README's test command run them.",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run_slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run_slow (CI and the README's test command do)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains or runs scripts end to end (tens of seconds)")
    # The scripts import the package: the ones the tests start in subprocesses import this checkout's, not an
    # installed copy's.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
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
