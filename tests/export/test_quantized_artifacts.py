"""Quantized exports really are quantized: the files hold int8 tensors (LiteRT), quantize/dequantize nodes and
int8 weights (ONNX), or float16 weights at about half the float32 size (LiteRT), not a float32 model under a
quantized name. (test_quantization.py checks that they keep the float32 mIoU.)"""

import os

import numpy as np
import pytest

from hfgd_tf.export import ExportConfig, export_model
from tests.export.parity import tiny_segmenter, uint8_images

# Three LiteRT conversions and two ONNX ones (with int8 calibration): over a minute on 2 CPU cores.
pytestmark = pytest.mark.slow
HEIGHT, WIDTH = 32, 48


def _calibration():
    images = [uint8_images(1, HEIGHT, WIDTH, seed=seed) for seed in range(4)]
    return lambda: iter(images)


@pytest.fixture(scope="module")
def model():
    return tiny_segmenter()


def _litert(model, directory, quantize):
    export_dir = export_model(
        model,
        str(directory / f"litert_{quantize}"),
        ExportConfig("litert", quantize, HEIGHT, WIDTH),
        calibration_images=_calibration() if quantize == "int8" else None,
    )
    return os.path.join(export_dir, "model.tflite")


def _tensor_dtypes(path):
    from ai_edge_litert.interpreter import Interpreter

    return [np.dtype(detail["dtype"]) for detail in Interpreter(model_path=path).get_tensor_details()]


def test_litert_int8_holds_int8_tensors_and_float16_halves_the_file(model, tmp_path):
    pytest.importorskip("ai_edge_litert", reason="LiteRT runtime (ai-edge-litert) not installed")
    paths = {quantize: _litert(model, tmp_path, quantize) for quantize in ("none", "float16", "int8")}
    dtypes = {quantize: _tensor_dtypes(path) for quantize, path in paths.items()}
    assert np.dtype(np.int8) not in dtypes["none"]
    assert np.dtype(np.float16) not in dtypes["none"]
    int8 = dtypes["int8"].count(np.dtype(np.int8))
    # Weights and activations: most of the convolutions' tensors, not a stray one.
    assert int8 > dtypes["int8"].count(np.dtype(np.float32)), dtypes["int8"]
    assert dtypes["float16"].count(np.dtype(np.float16)) > 10, dtypes["float16"]
    sizes = {quantize: os.path.getsize(path) for quantize, path in paths.items()}
    print(f"LiteRT sizes {sizes}; int8 file: {int8} int8 tensors of {len(dtypes['int8'])}")
    # float16 weights: about half the float32 file (the graph itself does not shrink); int8 about a quarter.
    assert 0.4 < sizes["float16"] / sizes["none"] < 0.65, sizes
    assert sizes["int8"] / sizes["none"] < 0.45, sizes


def test_onnx_int8_holds_quantize_dequantize_nodes_and_int8_weights(model, tmp_path):
    pytest.importorskip("onnxruntime", reason="ONNX Runtime (onnxruntime) not installed")
    pytest.importorskip("tf2onnx", reason="tf2onnx not installed")
    import onnx

    graphs = {}
    for quantize in ("none", "int8"):
        export_dir = export_model(
            model,
            str(tmp_path / f"onnx_{quantize}"),
            ExportConfig("onnx", quantize),
            calibration_images=_calibration() if quantize == "int8" else None,
        )
        graphs[quantize] = onnx.load(os.path.join(export_dir, "model.onnx")).graph

    def op_types(graph):
        return [node.op_type for node in graph.node]

    def int8_weights(graph):
        return [i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT8]

    assert "QuantizeLinear" not in op_types(graphs["none"]) and not int8_weights(graphs["none"])
    ops = op_types(graphs["int8"])
    print(
        f"ONNX int8: {ops.count('QuantizeLinear')} QuantizeLinear, {len(int8_weights(graphs['int8']))} int8 "
        f"initializers; float graph: {op_types(graphs['none']).count('Conv')} Conv"
    )
    assert ops.count("QuantizeLinear") > 5 and ops.count("DequantizeLinear") > 5, sorted(set(ops))
    # Per-channel int8 convolution kernels, at least one per convolution of the float graph.
    assert len(int8_weights(graphs["int8"])) >= op_types(graphs["none"]).count("Conv"), int8_weights(graphs["int8"])
