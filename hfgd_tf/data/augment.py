"""Joint image/label augmentation of the authors' recipe, with stateless randomness keyed by an example seed.

Hand-written with `tf.image` rather than keras-cv layers because keras-cv 0.9's `RandomCrop` raises
NotImplementedError for masks and its other layers return float masks and fill by their own rules
(they return float masks and cannot crop masks), while the authors' recipe needs scale-in-steps, pad with the ignore label, crop, and labels
resized only with nearest neighbour. Every random draw is a stateless op seeded by `(seed, index)`, so
an example's augmentation does not depend on parallelism, and resuming at step N reproduces it.

Images are float32 in [0, 255]; labels int32 `[H, W]`.
"""

import tensorflow as tf

IMAGE_PAD_VALUE = 127.5  # the mean pixel: 0 after the [-1, 1] input normalisation


def _seed(seed, salt):
    return tf.stack([tf.cast(seed[0], tf.int64), tf.cast(seed[1], tf.int64) * 16 + salt])


def random_scale(image, label, seed, min_scale, max_scale, scale_step):
    """Resizes by a random factor from {min, min + step, ..., max} (aspect kept; nearest for labels)."""
    if min_scale == max_scale == 1.0:
        return image, label
    if scale_step > 0:
        num_steps = int(round((max_scale - min_scale) / scale_step)) + 1
        index = tf.random.stateless_uniform([], _seed(seed, 1), 0, num_steps, dtype=tf.int32)
        scale = min_scale + tf.cast(index, tf.float32) * scale_step
    else:
        scale = tf.random.stateless_uniform([], _seed(seed, 1), min_scale, max_scale)
    size = tf.cast(tf.round(tf.cast(tf.shape(label), tf.float32) * scale), tf.int32)
    size = tf.maximum(size, 1)
    image = tf.image.resize(image, size, method="bilinear")
    label = tf.image.resize(label[..., None], size, method="nearest")[..., 0]
    return image, label


def random_brightness(image, seed, max_delta, probability=0.5):
    apply = tf.random.stateless_uniform([], _seed(seed, 2)) < probability
    delta = tf.random.stateless_uniform([], _seed(seed, 3), -max_delta, max_delta)
    return tf.where(apply, tf.clip_by_value(image + delta, 0.0, 255.0), image)


def photometric_distortion(image, seed, lower=0.5, upper=1.5, probability=0.5):
    """Random contrast and saturation in [lower, upper], each applied with `probability`."""
    normalized = image / 255.0
    apply_contrast = tf.random.stateless_uniform([], _seed(seed, 4)) < probability
    contrasted = tf.image.stateless_random_contrast(normalized, lower, upper, _seed(seed, 5))
    normalized = tf.where(apply_contrast, contrasted, normalized)
    apply_saturation = tf.random.stateless_uniform([], _seed(seed, 6)) < probability
    saturated = tf.image.stateless_random_saturation(normalized, lower, upper, _seed(seed, 7))
    normalized = tf.where(apply_saturation, saturated, normalized)
    return tf.clip_by_value(normalized * 255.0, 0.0, 255.0)


def pad_to_size(image, label, height, width, ignore_label):
    """Pads bottom/right to at least `height` x `width`: the mean pixel for images, ignore for labels."""
    shape = tf.shape(label)
    pad_h = tf.maximum(height - shape[0], 0)
    pad_w = tf.maximum(width - shape[1], 0)
    image = tf.pad(image - IMAGE_PAD_VALUE, [[0, pad_h], [0, pad_w], [0, 0]]) + IMAGE_PAD_VALUE
    label = tf.pad(label - ignore_label, [[0, pad_h], [0, pad_w]]) + ignore_label
    return image, label


def random_crop(image, label, seed, height, width):
    """Crops the same random `height` x `width` window from image and label (both at least that big)."""
    shape = tf.shape(label)
    offset_h = tf.random.stateless_uniform([], _seed(seed, 8), 0, shape[0] - height + 1, dtype=tf.int32)
    offset_w = tf.random.stateless_uniform([], _seed(seed, 9), 0, shape[1] - width + 1, dtype=tf.int32)
    image = image[offset_h : offset_h + height, offset_w : offset_w + width]
    label = label[offset_h : offset_h + height, offset_w : offset_w + width]
    return tf.ensure_shape(image, [height, width, 3]), tf.ensure_shape(label, [height, width])


def random_flip(image, label, seed, probability=0.5):
    flip = tf.random.stateless_uniform([], _seed(seed, 10)) < probability
    image = tf.where(flip, image[:, ::-1], image)
    label = tf.where(flip, label[:, ::-1], label)
    return image, label


def augment_for_training(image, label, seed, config, ignore_label):
    """The authors' training augmentation, in their order.

    Args:
        image: float32 `[H, W, 3]` in [0, 255].
        label: int32 `[H, W]`.
        seed: int64 `[2]`. Stateless seed of this example.
        config: `DataConfig`.
        ignore_label: int.

    Returns:
        image float32 `[crop_height, crop_width, 3]`, label int32 `[crop_height, crop_width]`.
    """
    image, label = random_scale(image, label, seed, config.min_scale, config.max_scale, config.scale_step)
    if config.random_brightness:
        image = random_brightness(image, seed, config.brightness_max_delta)
    if config.photo_metric_distortion:
        image = photometric_distortion(image, seed)
    image, label = pad_to_size(image, label, config.crop_height, config.crop_width, ignore_label)
    image, label = random_crop(image, label, seed, config.crop_height, config.crop_width)
    if config.random_flip:
        image, label = random_flip(image, label, seed)
    return image, label
