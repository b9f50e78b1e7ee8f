import numpy as np
import pytest

from hfgd_tf.evaluation import confusion_matrix, segmentation_metrics


def test_confusion_matrix_of_a_hand_made_4x4_map_with_ignored_pixels():
    labels = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 255], [2, 2, 255, 1]])
    predictions = np.array([[0, 1, 1, 1], [0, 0, 1, 2], [2, 2, 0, 1], [0, 2, 2, 1]])
    matrix = confusion_matrix(labels, predictions, num_classes=3, ignore_label=255).numpy()
    expected = np.array([[3, 1, 0], [0, 4, 1], [1, 0, 3]])
    np.testing.assert_array_equal(matrix, expected)


def test_ignored_pixels_do_not_count_whatever_is_predicted():
    labels = np.array([[0, 255], [1, 255]])
    first = confusion_matrix(labels, np.array([[0, 0], [1, 0]]), 2, 255).numpy()
    second = confusion_matrix(labels, np.array([[0, 1], [1, 1]]), 2, 255).numpy()
    np.testing.assert_array_equal(first, second)
    assert first.sum() == 2


def test_miou_matches_the_model_garden_hand_computed_case():
    # TF Model Garden's 6x6 case: IoUs 0.857 / 0.667, mean 0.762.
    labels = np.zeros((6, 6), int)
    labels[:, 3:] = 1
    predictions = labels.copy()
    predictions[0:3, 3] = 0  # 3 pixels of class 1 predicted as 0
    matrix = confusion_matrix(labels, predictions, 2, 255).numpy()
    metrics = segmentation_metrics(matrix, ["a", "b"])
    # Class 0: TP 18, FP 3 -> 18/21; class 1: TP 15, FN 3 -> 15/18.
    assert metrics["per_class_iou"]["a"] == pytest.approx(18 / 21)
    assert metrics["per_class_iou"]["b"] == pytest.approx(15 / 18)
    assert metrics["miou"] == pytest.approx((18 / 21 + 15 / 18) / 2)
    assert metrics["pixel_accuracy"] == pytest.approx(33 / 36)


def test_model_garden_values():
    matrix = np.array([[6, 1], [0, 2]])  # IoU 6/7 = 0.857, 2/3 = 0.667
    metrics = segmentation_metrics(matrix)
    assert round(metrics["per_class_iou"]["0"], 3) == 0.857
    assert round(metrics["per_class_iou"]["1"], 3) == 0.667
    assert round(metrics["miou"], 3) == 0.762


def test_absent_classes_are_nan_and_left_out_of_the_mean():
    matrix = np.array([[4, 0, 0], [0, 0, 0], [0, 0, 2]])
    metrics = segmentation_metrics(matrix)
    assert np.isnan(metrics["per_class_iou"]["1"])
    assert metrics["miou"] == 1.0
