import numpy as np

from hfgd_tf.data.dataset_info import IGNORE_LABEL
from hfgd_tf.data.datasets.synthetic_streets import INFO as SYNTHETIC_STREETS
from hfgd_tf.data.synthetic import POLE, generate_scene


def test_same_seed_same_scene_and_different_seed_different_scene():
    image_a, label_a = generate_scene(7)
    image_b, label_b = generate_scene(7)
    np.testing.assert_array_equal(image_a, image_b)
    np.testing.assert_array_equal(label_a, label_b)
    assert not np.array_equal(generate_scene(8)[1], label_a)


def test_labels_are_train_ids_or_ignore_and_every_class_appears():
    seen = set()
    for seed in range(20):
        image, label = generate_scene(seed, 96, 128)
        assert image.shape == (96, 128, 3) and image.dtype == np.uint8
        assert label.shape == (96, 128)
        values = set(np.unique(label).tolist())
        assert values <= set(range(SYNTHETIC_STREETS.num_classes)) | {IGNORE_LABEL}
        seen |= values
    assert seen == set(range(SYNTHETIC_STREETS.num_classes)) | {IGNORE_LABEL}


def test_poles_are_thin_structures():
    widths = []
    for seed in range(10):
        _, label = generate_scene(seed)
        rows = (label == POLE).sum(1)
        widths += [w for w in rows if w > 0]
    assert np.median(widths) <= 4
