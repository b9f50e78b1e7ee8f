"""Scoring an export refuses a dataset with other classes than the export predicts (by name, before a wrong mIoU)."""

import json
import types

import numpy as np
import pytest

from hfgd_tf.export.scoring import evaluate_exported
from tests.export.parity import CLASS_NAMES, COLORMAP

STREETS = ("sky", "building", "road", "sidewalk", "vegetation", "car", "person", "pole")


def _dataset():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1, 32, 48, 3)).astype(np.float32)
    labels = rng.integers(0, 4, (1, 32, 48)).astype(np.int32)
    return [(images, labels)]


def _exported(export_dir, num_classes=4):
    """An `ExportedModel` stand-in (a real export is scored in tests/scripts/test_deploy_scripts.py): its labels
    record as export_model writes it, and a 4-class model's outputs."""
    (export_dir / "assets").mkdir(parents=True)
    (export_dir / "assets" / "labels.json").write_text(json.dumps({"class_names": CLASS_NAMES, "colormap": COLORMAP}))

    def predict(images, resize=False):
        logits = np.zeros(images.shape[:3] + (num_classes,), np.float32)
        return {"class_ids": logits.argmax(-1).astype(np.int32), "probabilities": logits, "logits": logits}

    return types.SimpleNamespace(
        export_dir=str(export_dir), format="saved_model", quantize="none", input_size=None, predict=predict
    )


def test_an_export_of_other_classes_is_refused_by_name(tmp_path):
    exported = _exported(tmp_path / "export")
    # Its 4 classes (labels.json) against a dataset of 8, e.g. a run on synthetic_streets.
    with pytest.raises(
        ValueError,
        match=r"'.*export' predicts 4 classes \(its assets/labels.json names 4\), but the dataset evaluated has 8",
    ):
        evaluate_exported(exported, _dataset(), 8, 255, STREETS)
    # The same count, other names.
    with pytest.raises(
        ValueError,
        match=r"predicts other classes than the dataset evaluated \(class 1 is 'sky' in the export, 'building'",
    ):
        evaluate_exported(exported, _dataset(), 4, 255, ["road", "building", "car", "person"])
    # Without class names, the logits' channels tell.
    (tmp_path / "export" / "assets" / "labels.json").write_text(json.dumps({"class_names": [], "colormap": []}))
    with pytest.raises(ValueError, match=r"predicts 4 classes \(its logits have 4\), but the dataset evaluated has 8"):
        evaluate_exported(exported, _dataset(), 8, 255)
    metrics = evaluate_exported(exported, _dataset(), 4, 255, CLASS_NAMES)
    assert metrics["num_images"] == 1 and np.asarray(metrics["confusion_matrix"]).sum() == 32 * 48
