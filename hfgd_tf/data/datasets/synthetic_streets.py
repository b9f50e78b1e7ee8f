"""The embedded synthetic street scenes (`hfgd_tf.data.synthetic`): 8 classes, ignore 255.

Records are written by `hfgd_tf.data.synthetic.write_synthetic_tfrecords` (or
`scripts/convert_tfrecord.py --dataset=synthetic_streets`), already in train ids.
"""

from hfgd_tf.data.dataset_info import DatasetInfo

INFO = DatasetInfo(
    name="synthetic_streets",
    class_names=("sky", "building", "road", "sidewalk", "vegetation", "car", "person", "pole"),
    colormap=(
        (70, 130, 180),
        (70, 70, 70),
        (128, 64, 128),
        (244, 35, 232),
        (107, 142, 35),
        (0, 0, 142),
        (220, 20, 60),
        (153, 153, 153),
    ),
    crop_size=(128, 128),
    eval_crop_size=(128, 160),
)
