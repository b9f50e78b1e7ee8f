"""hfgd_tf: HFGD (High-level Feature Guided Decoder) semantic segmentation in TensorFlow/Keras 3.

Reference: Huang et al., "HFGD: High-level Feature Guided Decoder for Semantic Segmentation",
arXiv:2303.08646.

Package layout (dependency direction points down):

    train, evaluation, export   training loop, metrics/inference, SavedModel serving
    models                      HFGDSegmenter and baselines, `build_model`
    backbones                   ResNet (dilated, deep stem), feature dicts S1, C2..C5 (no S1 for ConvNeXt, Swin)
    layers                      class kernels, CAE, guided upsampler, SemanticFPN
    data                        dataset registry, TFRecords, tf.data pipelines (imports no model code)
"""

__version__ = "0.1.0"
