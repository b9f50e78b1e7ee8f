"""Evaluation: confusion-matrix metrics, multi-scale/flip/sliding-window inference, split evaluation."""

from hfgd_tf.evaluation.config import EvalConfig
from hfgd_tf.evaluation.evaluator import evaluate, write_results
from hfgd_tf.evaluation.inference import predict_logits
from hfgd_tf.evaluation.metrics import confusion_matrix, format_metrics_table, segmentation_metrics

__all__ = [
    "EvalConfig",
    "confusion_matrix",
    "evaluate",
    "format_metrics_table",
    "predict_logits",
    "segmentation_metrics",
    "write_results",
]
