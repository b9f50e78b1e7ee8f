"""Procedural street scenes with exact labels: the embedded dataset (no download, any size, any count).

Each scene is drawn from a seed: sky, a horizon, building facades with window grids, vegetation
blobs, a road in perspective with lane marks, sidewalks with tiles, cars (any colour, grey ones look
like the road), people and thin poles, drawn far-to-near so that near objects occlude far ones, plus
an ignore region (an ego-vehicle hood at the bottom and occasional lens smudges). Textures, colours,
scales and layouts vary per scene, so a model must use shape and context, not colour alone.
Classes and colours are `hfgd_tf.data.datasets.synthetic_streets.INFO`; the same seed always gives the same scene.
"""

import numpy as np

from hfgd_tf.data.dataset_info import IGNORE_LABEL
from hfgd_tf.data.datasets.synthetic_streets import INFO as SYNTHETIC_STREETS

SKY, BUILDING, ROAD, SIDEWALK, VEGETATION, CAR, PERSON, POLE = range(8)
NUM_CLASSES = SYNTHETIC_STREETS.num_classes


class _Canvas:
    """An RGB float image and its label map, painted together so they can never disagree."""

    def __init__(self, height, width, rng):
        self.height, self.width, self.rng = height, width, rng
        self.image = np.zeros((height, width, 3), np.float32)
        self.label = np.full((height, width), IGNORE_LABEL, np.uint8)
        self.rows, self.cols = np.mgrid[0:height, 0:width].astype(np.float32)

    def paint(self, mask, colour, label, noise=0.0):
        """Paints `colour` (+ per-pixel noise of this std) where `mask` is True, and labels it."""
        count = int(mask.sum())
        if not count:
            return
        pixels = np.broadcast_to(np.asarray(colour, np.float32), (count, 3)).copy()
        if noise:
            pixels += self.rng.normal(0.0, noise, (count, 1)) + self.rng.normal(0.0, noise / 3, (count, 3))
        self.image[mask] = pixels
        if label is not None:
            self.label[mask] = label

    def shade(self, mask, factor):
        """Multiplies the colour under `mask` by `factor` without touching the labels (texture)."""
        self.image[mask] *= factor


def _random_colour(rng, base=None, spread=40.0):
    if base is None:
        return rng.uniform(20, 235, 3)
    return np.clip(np.asarray(base, np.float32) + rng.uniform(-spread, spread, 3), 0, 255)


def _draw_sky(canvas, horizon):
    rng = canvas.rng
    top = _random_colour(rng, (110, 160, 220), 35)
    bottom = _random_colour(rng, (200, 215, 235), 25)
    t = np.clip(canvas.rows / max(horizon, 1.0), 0, 1)[..., None]
    gradient = top * (1 - t) + bottom * t
    mask = canvas.rows < horizon + canvas.height * 0.15
    canvas.paint(mask, 0, SKY)
    canvas.image[mask] = gradient[mask] + rng.normal(0, 2.0, (int(mask.sum()), 1))


def _draw_buildings(canvas, horizon):
    rng = canvas.rng
    x = rng.uniform(-0.1, 0.05) * canvas.width
    while x < canvas.width:
        width = rng.uniform(0.12, 0.35) * canvas.width
        top = rng.uniform(0.02, 0.8) * horizon
        mask = (canvas.cols >= x) & (canvas.cols < x + width) & (canvas.rows >= top) & (canvas.rows < horizon + 4)
        if rng.uniform() < 0.25:  # gaps between buildings let the sky through
            x += width * rng.uniform(0.3, 0.8)
            continue
        canvas.paint(mask, _random_colour(rng, (120, 110, 100), 60), BUILDING, noise=6.0)
        window_w, window_h = rng.uniform(3, 7), rng.uniform(3, 7)
        period_x, period_y = window_w * rng.uniform(1.6, 2.6), window_h * rng.uniform(1.6, 2.6)
        windows = mask & (((canvas.cols - x) % period_x) < window_w) & (((canvas.rows - top) % period_y) < window_h)
        canvas.shade(windows, rng.uniform(0.35, 0.7))
        x += width


def _blob(canvas, center_row, center_col, radius_row, radius_col, roughness):
    """An ellipse whose border is perturbed by a few random harmonics (leaves, bushes, smudges)."""
    rng = canvas.rng
    angle = np.arctan2(canvas.rows - center_row, canvas.cols - center_col)
    radius = np.ones_like(angle)
    for harmonic in (3, 5, 7):
        radius += roughness * rng.uniform(-1, 1) * np.sin(harmonic * angle + rng.uniform(0, 2 * np.pi))
    distance = ((canvas.rows - center_row) / radius_row) ** 2 + ((canvas.cols - center_col) / radius_col) ** 2
    return distance < radius**2


def _draw_vegetation(canvas, horizon):
    rng = canvas.rng
    for _ in range(rng.integers(0, 4)):
        size = rng.uniform(0.06, 0.2) * canvas.height
        mask = _blob(
            canvas,
            horizon - rng.uniform(0, 1.5) * size,
            rng.uniform(0, canvas.width),
            size,
            size * rng.uniform(0.8, 1.6),
            0.15,
        )
        canvas.paint(mask, _random_colour(rng, (70, 130, 50), 30), VEGETATION, noise=22.0)


def _draw_ground(canvas, horizon):
    """Road in perspective with lane marks; sidewalks on both sides with tiles."""
    rng = canvas.rng
    below = canvas.rows >= horizon
    depth = np.clip((canvas.rows - horizon) / max(canvas.height - horizon, 1.0), 0, 1)
    vanish = canvas.width * rng.uniform(0.35, 0.65)
    half_width = canvas.width * (0.02 + depth * rng.uniform(0.45, 0.7))
    road = below & (np.abs(canvas.cols - vanish) < half_width)
    canvas.paint(below & ~road, _random_colour(rng, (175, 160, 150), 35), SIDEWALK, noise=5.0)
    tile = rng.uniform(4, 8)
    canvas.shade(below & ~road & (((canvas.cols % tile) < 1) | (((canvas.rows - horizon) % tile) < 1)), 0.75)
    canvas.paint(road, _random_colour(rng, (95, 95, 100), 20), ROAD, noise=7.0)
    # Dashed centre line: painted white but labelled road, as in real datasets.
    dash = rng.uniform(4, 10)
    marks = road & (np.abs(canvas.cols - vanish) < 0.5 + depth * 2.5) & (((canvas.rows - horizon) % (2 * dash)) < dash)
    canvas.paint(marks, (235, 235, 225), ROAD, noise=4.0)
    return vanish, half_width


def _object_scale(canvas, row, horizon):
    return max(0.15, (row - horizon) / max(canvas.height - horizon, 1.0))


def _car(canvas, horizon, row, col, scale):
    rng = canvas.rng
    width = canvas.width * 0.28 * scale * rng.uniform(0.8, 1.2)
    height = width * rng.uniform(0.45, 0.6)
    body = (np.abs(canvas.cols - col) < width / 2) & (canvas.rows > row - height * 0.65) & (canvas.rows < row)
    cabin = (
        (np.abs(canvas.cols - col) < width * 0.32) & (canvas.rows > row - height) & (canvas.rows <= row - height * 0.6)
    )
    colour = rng.choice([_random_colour(rng), _random_colour(rng, (100, 100, 105), 10)])
    canvas.paint(body | cabin, colour, CAR, noise=4.0)
    canvas.shade(cabin & (np.abs(canvas.cols - col) < width * 0.27) & (canvas.rows > row - height * 0.93), 0.35)
    for side in (-1, 1):
        wheel = ((canvas.rows - row) ** 2 + (canvas.cols - col - side * width * 0.3) ** 2) < (height * 0.18) ** 2
        canvas.paint(wheel, (25, 25, 25), CAR, noise=3.0)


def _person(canvas, row, col, scale):
    rng = canvas.rng
    height = canvas.height * 0.5 * scale * rng.uniform(0.8, 1.2)
    body = _blob(canvas, row - height * 0.45, col, height * 0.38, height * 0.13, 0.05)
    head = ((canvas.rows - (row - height * 0.9)) ** 2 + (canvas.cols - col) ** 2) < (height * 0.1) ** 2
    canvas.paint(body, _random_colour(rng), PERSON, noise=8.0)
    canvas.paint(head, _random_colour(rng, (200, 160, 130), 40), PERSON, noise=4.0)


def _pole(canvas, horizon, row, col, scale):
    rng = canvas.rng
    thickness = max(1.5, 4.0 * scale)
    top = max(0.0, horizon - canvas.height * rng.uniform(0.2, 0.5) * (0.5 + scale))
    mask = (np.abs(canvas.cols - col) < thickness / 2) & (canvas.rows >= top) & (canvas.rows < row)
    colour = _random_colour(rng, (110, 110, 110), 50)
    canvas.paint(mask, colour, POLE, noise=3.0)
    if rng.uniform() < 0.5:  # a lamp arm or sign board: still pole
        arm = (
            (canvas.rows >= top)
            & (canvas.rows < top + thickness + 1)
            & (canvas.cols > col)
            & (canvas.cols < col + 6 * thickness + 4)
        )
        canvas.paint(arm, colour, POLE, noise=3.0)


def _draw_objects(canvas, horizon, vanish, half_width):
    rng = canvas.rng
    objects = []
    for _ in range(rng.integers(1, 5)):
        row = rng.uniform(horizon + 6, canvas.height)
        reach = canvas.width * (0.02 + (row - horizon) / max(canvas.height - horizon, 1) * 0.5)
        objects.append(("car", row, vanish + rng.uniform(-0.8, 0.8) * reach))
    for _ in range(rng.integers(1, 5)):
        row = rng.uniform(horizon + 4, canvas.height)
        side = rng.choice([-1, 1])
        objects.append(
            (
                "person",
                row,
                vanish + side * canvas.width * rng.uniform(0.25, 0.5) * (0.3 + (row - horizon) / canvas.height),
            )
        )
    for _ in range(rng.integers(1, 4)):
        row = rng.uniform(horizon + 2, canvas.height)
        side = rng.choice([-1, 1])
        objects.append(
            (
                "pole",
                row,
                vanish + side * canvas.width * rng.uniform(0.3, 0.6) * (0.3 + (row - horizon) / canvas.height),
            )
        )
    # Far to near: nearer (lower) objects occlude farther ones.
    for kind, row, col in sorted(objects, key=lambda item: item[1]):
        scale = _object_scale(canvas, row, horizon)
        if kind == "car":
            _car(canvas, horizon, row, col, scale)
        elif kind == "person":
            _person(canvas, row, col, scale)
        else:
            _pole(canvas, horizon, row, col, scale)


def _draw_ignore_regions(canvas):
    rng = canvas.rng
    hood = rng.uniform(0.0, 0.1) * canvas.height
    if hood > 2:
        curve = canvas.height - hood + (2 * canvas.cols / canvas.width - 1) ** 2 * hood * 0.6
        canvas.paint(canvas.rows > curve, _random_colour(rng, (40, 40, 45), 15), IGNORE_LABEL, noise=3.0)
    if rng.uniform() < 0.2:
        size = rng.uniform(0.04, 0.1) * canvas.height
        smudge = _blob(canvas, rng.uniform(0, canvas.height), rng.uniform(0, canvas.width), size, size, 0.2)
        canvas.paint(smudge, _random_colour(rng, (128, 128, 128), 60), IGNORE_LABEL, noise=10.0)


def generate_scene(seed, height=128, width=160):
    """Draws one street scene.

    Args:
        seed: int. The same seed always gives the same scene.
        height, width: int. Image size; at least 32 each.

    Returns:
        (image, label): uint8 `[height, width, 3]` and uint8 `[height, width]` with train ids
        0..7 (`SYNTHETIC_STREETS.class_names`) and `IGNORE_LABEL` for the ignore region.
    """
    if height < 32 or width < 32:
        raise ValueError(f"Synthetic scenes need height and width >= 32. Received: height={height}, width={width}")
    rng = np.random.default_rng(seed)
    canvas = _Canvas(height, width, rng)
    horizon = rng.uniform(0.3, 0.55) * height
    _draw_sky(canvas, horizon)
    _draw_buildings(canvas, horizon)
    _draw_vegetation(canvas, horizon)
    vanish, half_width = _draw_ground(canvas, horizon)
    _draw_objects(canvas, horizon, vanish, half_width)
    _draw_ignore_regions(canvas)
    # Global illumination change per scene (time of day, exposure).
    canvas.image *= rng.uniform(0.7, 1.2)
    image = np.clip(canvas.image, 0, 255).astype(np.uint8)
    return image, canvas.label


def generate_split(num_images, seed, height=128, width=160):
    """Yields `(name, image, label)` for `num_images` scenes; scene i uses seed `seed * 1_000_003 + i`."""
    for index in range(num_images):
        image, label = generate_scene(seed * 1_000_003 + index, height, width)
        yield f"scene_{seed}_{index:05d}", image, label


def write_synthetic_tfrecords(
    output_dir, num_train=300, num_val=60, height=128, width=160, seed=0, examples_per_shard=100
):
    """Writes the synthetic dataset as `train-K.tfrecord` / `val-K.tfrecord` shards and a manifest.

    Train and val use disjoint seeds (`seed` and `seed + 1`). An existing directory written with the
    same parameters is reused (the manifest records them as its `source`); otherwise its train and val
    splits are replaced whole.

    Returns:
        str: `output_dir`.
    """
    # Imported here so that scene generation itself needs only numpy.
    from hfgd_tf.data import converter, tfrecord

    parameters = dict(
        generator="hfgd_tf.data.synthetic", num_train=num_train, num_val=num_val, height=height, width=width, seed=seed
    )
    manifest = tfrecord.read_manifest(output_dir)
    if manifest is not None and manifest.get("source") == parameters:
        return output_dir
    splits = {}
    for split, count, split_seed in (("train", num_train, seed), ("val", num_val, seed + 1)):
        class_pixels = np.zeros(NUM_CLASSES, np.int64)
        with tfrecord.ShardWriter(output_dir, split, examples_per_shard, overwrite=True) as writer:
            for _, image, label in generate_split(count, split_seed, height, width):
                writer.write(tfrecord.make_example(tfrecord.encode_png(image), label))
                class_pixels += converter.class_pixel_counts(label, NUM_CLASSES)
        splits[split] = {
            "num_examples": writer.num_examples,
            "shards": converter.shard_entries(writer.paths),
            "class_pixels": class_pixels.tolist(),
        }
    converter.write_manifest(output_dir, SYNTHETIC_STREETS, splits, source=parameters)
    return output_dir
