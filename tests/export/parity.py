"""What the per-format parity tests share: one tiny segmenter with non-trivial BatchNorm statistics, its
Keras outputs, and the parity bounds every float32 format must meet."""

import numpy as np

from hfgd_tf.export import SegmentationServingModel
from hfgd_tf.models import build_model
from tests.conftest import random_images, tiny_model_config

# Max abs logit error relative to the Keras logits' range, and the share of pixels whose class must agree.
MAX_RELATIVE_LOGIT_ERROR = 1e-4
MIN_CLASS_AGREEMENT = 0.999
CLASS_NAMES = ["road", "sky", "car", "person"]
COLORMAP = [(128, 64, 128), (70, 130, 180), (0, 0, 142), (220, 20, 60)]


def tiny_segmenter():
    model = build_model(tiny_model_config())
    # Make BN statistics non-trivial so that inference mode matters.
    for _ in range(2):
        model(random_images(batch=2, seed=3), training=True)
    return model


def uint8_images(batch, height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, height, width, 3)).astype(np.uint8)


def keras_outputs(model, images):
    return {name: value.numpy() for name, value in SegmentationServingModel(model)(images).items()}


def assert_parity(outputs, expected):
    """The bounds of a float32 export: logits, probabilities and class ids against Keras's."""
    logits = expected["logits"]
    assert outputs["logits"].shape == logits.shape and outputs["logits"].dtype == np.float32
    assert outputs["class_ids"].shape == logits.shape[:3] and outputs["class_ids"].dtype == np.int32
    error = np.abs(outputs["logits"] - logits).max() / (logits.max() - logits.min())
    assert error <= MAX_RELATIVE_LOGIT_ERROR, error
    np.testing.assert_allclose(outputs["probabilities"], expected["probabilities"], atol=1e-4)
    agreement = (outputs["class_ids"] == expected["class_ids"]).mean()
    assert agreement >= MIN_CLASS_AGREEMENT, agreement
    print(f"parity: max |logit error| / logit range {error:.3g}, class ids agree on {100 * agreement:.3f}% of pixels")
    return error, agreement
