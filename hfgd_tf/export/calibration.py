"""Calibration images for int8 post-training quantization, read from a run's training records.

Integer quantization fixes each activation's range from the ranges seen on representative inputs; the
training split is the data the model was fitted to, so its images (not random noise) set those ranges.
"""

import numpy as np
import tensorflow as tf

from hfgd_tf.data.pipeline import _decoder, _read_records


def calibration_images(data_config, steps, height, width):
    """A callable returning an iterator over of `steps` uint8 `[1, height, width, 3]` numpy images.

    The first `steps` records of the training split (in file order, so that two exports calibrate alike) are
    decoded and resized (bilinear) to the export size, as a caller of a fixed-size export resizes its images.

    Args:
        data_config: `DataConfig` of the run (its `data_dir` and `train_split`).
        steps: int >= 1.
        height, width: int. The export's input size; 0 keeps each record's own size (an export of any size).

    Raises:
        ValueError: naming the split and its directory, when it has fewer than `steps` records.
    """
    # Read now (a few MB), so that a short split is an error here and not inside the converter.
    decode = _decoder(data_config)
    images = []
    for record in _read_records(data_config, data_config.train_split).take(steps):
        image, _ = decode(record)
        if height:
            image = tf.image.resize(image, (height, width), method="bilinear")
        images.append(np.clip(np.round(image.numpy()), 0, 255).astype(np.uint8)[None])
    if len(images) < steps:
        raise ValueError(
            f"--calibration_steps={steps} asks for more images than the {len(images)} records of the "
            f"{data_config.train_split!r} split in {data_config.data_dir!r}: lower --calibration_steps"
        )
    return lambda: iter(images)
