"""ONNX export parity: the .onnx file, run by ONNX Runtime, predicts what Keras does at any size and batch."""

import pytest

from hfgd_tf.export import ExportConfig, export_model, load_exported, read_export_labels
from tests.export.parity import CLASS_NAMES, COLORMAP, assert_parity, keras_outputs, tiny_segmenter, uint8_images

pytest.importorskip("onnxruntime", reason="ONNX Runtime (onnxruntime) not installed: pip install 'hfgd_tf[deploy]'")
pytest.importorskip(
    "tf2onnx", reason="tf2onnx (Keras's ONNX exporter on TensorFlow) not installed: pip install 'hfgd_tf[deploy]'"
)


@pytest.mark.slow
def test_float32_onnx_matches_keras_at_several_sizes(tmp_path):
    model = tiny_segmenter()
    export_dir = export_model(model, str(tmp_path / "export"), ExportConfig("onnx"), CLASS_NAMES, COLORMAP)
    runtime = load_exported(export_dir)
    assert (runtime.format, runtime.quantize, runtime.input_size) == ("onnx", "none", None)
    for batch, height, width in ((2, 64, 96), (1, 57, 41)):
        images = uint8_images(batch, height, width, seed=height)
        assert_parity(runtime.predict(images), keras_outputs(model, images))
    assert read_export_labels(export_dir) == (CLASS_NAMES, COLORMAP)
