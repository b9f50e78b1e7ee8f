"""OpenVINO export parity: the IR (.xml/.bin), run by the OpenVINO runtime on CPU, predicts what Keras does."""

import pytest

from hfgd_tf.export import ExportConfig, export_model, load_exported, read_export_labels
from tests.export.parity import CLASS_NAMES, COLORMAP, assert_parity, keras_outputs, tiny_segmenter, uint8_images

pytest.importorskip("openvino", reason="OpenVINO runtime (openvino) not installed: pip install 'hfgd_tf[deploy]'")


@pytest.mark.slow
def test_float32_openvino_matches_keras_at_several_sizes(tmp_path):
    model = tiny_segmenter()
    export_dir = export_model(model, str(tmp_path / "export"), ExportConfig("openvino"), CLASS_NAMES, COLORMAP)
    runtime = load_exported(export_dir)
    assert (runtime.format, runtime.quantize, runtime.input_size) == ("openvino", "none", None)
    for batch, height, width in ((2, 64, 96), (1, 57, 41)):
        images = uint8_images(batch, height, width, seed=height)
        assert_parity(runtime.predict(images), keras_outputs(model, images))
    assert read_export_labels(export_dir) == (CLASS_NAMES, COLORMAP)
