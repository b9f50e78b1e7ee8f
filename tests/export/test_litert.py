"""LiteRT export parity: the .tflite file, run by ai-edge-litert's interpreter, predicts what Keras does."""

import numpy as np
import pytest
import tensorflow as tf

from hfgd_tf.export import ExportConfig, export_model, load_exported, read_export_format, read_export_labels
from tests.export.parity import CLASS_NAMES, COLORMAP, assert_parity, keras_outputs, tiny_segmenter, uint8_images

pytest.importorskip(
    "ai_edge_litert", reason="LiteRT runtime (ai-edge-litert) not installed: pip install 'hfgd_tf[deploy]'"
)

HEIGHT, WIDTH = 64, 96


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = tiny_segmenter()
    export_dir = str(tmp_path_factory.mktemp("litert") / "export")
    export_model(
        model, export_dir, ExportConfig("litert", export_height=HEIGHT, export_width=WIDTH), CLASS_NAMES, COLORMAP
    )
    return model, export_dir


@pytest.mark.slow
def test_float32_litert_matches_keras_logits_and_class_ids(exported):
    model, export_dir = exported
    images = uint8_images(3, HEIGHT, WIDTH)  # a batch of 3 through a batch-1 file
    runtime = load_exported(export_dir)
    assert (runtime.format, runtime.quantize, runtime.input_size) == ("litert", "none", (HEIGHT, WIDTH))
    assert_parity(runtime.predict(images), keras_outputs(model, images))
    assert read_export_labels(export_dir) == (CLASS_NAMES, COLORMAP)
    assert read_export_format(export_dir)["model_file"] == "model.tflite"


@pytest.mark.slow
def test_another_size_is_refused_unless_resized_and_then_matches_keras(exported):
    model, export_dir = exported
    runtime = load_exported(export_dir)
    images = uint8_images(1, 40, 50, seed=1)
    with pytest.raises(ValueError, match=r"takes 64x96 images; received 40x50.*resize"):
        runtime.predict(images)
    outputs = runtime.predict(images, resize=True)
    assert outputs["class_ids"].shape == (1, 40, 50) and outputs["logits"].shape == (1, 40, 50, 4)
    np.testing.assert_array_equal(outputs["class_ids"], outputs["logits"].argmax(-1))
    # What a caller serving another size gets from Keras: the image resized to the export size (bilinear,
    # rounded to uint8), the model's logits there resized back (bilinear); the file must predict the same.
    resized = tf.cast(tf.round(tf.image.resize(images, (HEIGHT, WIDTH), method="bilinear")), tf.uint8).numpy()
    logits = tf.image.resize(keras_outputs(model, resized)["logits"], (40, 50), method="bilinear")
    expected = {
        "logits": logits.numpy(),
        "probabilities": tf.nn.softmax(logits, axis=-1).numpy(),
        "class_ids": tf.argmax(logits, axis=-1, output_type=tf.int32).numpy(),
    }
    assert_parity(outputs, expected)
