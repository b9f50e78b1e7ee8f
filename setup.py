"""hfgd_tf: HFGD (High-level Feature Guided Decoder) semantic segmentation in TensorFlow/Keras 3."""

import os

from setuptools import find_packages, setup

_HERE = os.path.dirname(os.path.abspath(__file__))


def _version():
    with open(os.path.join(_HERE, "hfgd_tf", "__init__.py")) as handle:
        for line in handle:
            if line.startswith("__version__"):
                return line.split("=")[1].strip().strip('"')
    raise RuntimeError("hfgd_tf/__init__.py has no __version__")


setup(
    name="hfgd_tf",
    version=_version(),
    description="HFGD: High-level Feature Guided Decoder for semantic segmentation, in TensorFlow/Keras 3",
    long_description=open(os.path.join(_HERE, "README.md")).read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["hfgd_tf", "hfgd_tf.*"]),
    # Versions known to work together; constraints.txt pins the exact set CI runs.
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "keras-cv==0.9.0",
        "tensorflow-datasets>=4.9.10,<5",
        # tensorflow-datasets 4.9.10 imports it to build any dataset (its `code_path`) but declares it only
        # for Python < 3.9.
        "importlib_resources>=6",
        "tensorboard>=2.21,<2.22",
        "numpy>=1.26,<2.5",
        "absl-py>=2.1",
        "pillow>=10",
        "h5py>=3.10",
        "safetensors>=0.4",  # reads PyTorch checkpoints with numpy (scripts/convert_weights.py); no torch
        "tqdm>=4.60",
    ],
    extras_require={
        # Tests, lint (ruff) and the layer contracts (import-linter); scipy for the CamVid study's tests.
        "test": ["pytest>=8", "pytest-xdist>=3.8", "scipy>=1.11", "ruff>=0.17,<0.18", "import-linter>=2.16,<3"],
        # --backbone=keras_hub:<Class>. 0.32 is the first keras-hub whose tensorflow-text allows TF 2.21 (0.31
        # needs tensorflow-text<2.21). It pins kagglesdk==0.1.28, which constraints.txt's kagglesdk/kagglehub
        # pins exclude: install this extra without `-c constraints.txt` (pip then takes kagglehub 1.0.2).
        "keras_hub": ["keras-hub>=0.32,<0.33"],
        # The CamVid study (experiments/camvid_study): Student's t quantiles and tails for its verdicts.
        "study": ["scipy>=1.11"],
        # scripts/export.py --format=litert|onnx|openvino and their runtimes (predict.py / evaluate.py
        # --exported). Keras exports ONNX through tf2onnx (which needs onnx) on the TensorFlow backend.
        "deploy": [
            "ai-edge-litert>=2.3,<2.4",
            "onnxruntime>=1.31,<1.32",
            "onnx>=1.23,<1.24",
            "tf2onnx>=1.17,<1.18",
            "openvino>=2026.4,<2026.5",
        ],
    },
    # The commands of scripts/ (python scripts/train.py ...), installed on the PATH as hfgd-train, ...
    entry_points={
        "console_scripts": [
            f"hfgd-{command.replace('_', '-')} = hfgd_tf.cli.{command}:run"
            for command in (
                "train",
                "evaluate",
                "export",
                "predict",
                "demo",
                "convert_tfrecord",
                "convert_weights",
                "build_tfds",
            )
        ]
        + ["hfgd-benchmark = hfgd_tf.cli.benchmarks:run"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
