"""Building blocks of the HFGD decoder."""

from hfgd_tf.layers.cae import ASPPEncoder, ContextAugmentationEncoder, PPMEncoder, ProjectionEncoder
from hfgd_tf.layers.class_kernels import ClassKernels
from hfgd_tf.layers.conv_norm_act import ConvNormAct
from hfgd_tf.layers.position_encoding import SinePositionEncoding2D
from hfgd_tf.layers.resize import ResizeLike, StopGradient
from hfgd_tf.layers.semantic_fpn import GuidedUpsampler, SemanticFPN

__all__ = [
    "ASPPEncoder",
    "ClassKernels",
    "ContextAugmentationEncoder",
    "ConvNormAct",
    "GuidedUpsampler",
    "PPMEncoder",
    "ProjectionEncoder",
    "ResizeLike",
    "SemanticFPN",
    "SinePositionEncoding2D",
    "StopGradient",
]
