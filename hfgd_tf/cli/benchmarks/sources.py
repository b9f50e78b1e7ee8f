"""`scripts/benchmark.py --suite=sources`: images/s of the input pipeline reading TFRecord shards vs a TFDS
build of the same data (scripts/build_tfds.py), in one process (runs alternate, A B A B, so that machine
noise hits both; the median is reported).

Both sources decode the same JPEG/PNG bytes and run the same augmentation; the training rate is for
augmented crops (`--crop_height/--crop_width`), the evaluation rate for full-resolution decoded images.
"""

import dataclasses
import statistics
import time

from absl import flags

from hfgd_tf.cli import flags as cli_flags
from hfgd_tf.cli.benchmarking import pipeline_images_per_second
from hfgd_tf.cli.benchmarks import define_records_flags

FLAGS = flags.FLAGS


def define_flags():
    define_records_flags("Training batch size.")
    flags.DEFINE_integer("train_batches", 40, "Training batches timed per run (after 3 warm-up batches).")
    flags.DEFINE_integer("repeats", 3, "Runs per source (alternating).")


def _eval_rate(config):
    from hfgd_tf.data.pipeline import build_eval_dataset

    start, count = time.perf_counter(), 0
    for images, _ in build_eval_dataset(config, batch_size=1):
        count += int(images.shape[0])
    return count / (time.perf_counter() - start), count


def main(argv):
    try:
        base = cli_flags.data_config_from_flags()
        configs = {
            "tfrecord": dataclasses.replace(base, data_source="tfrecord"),
            "tfds": dataclasses.replace(base, data_source="tfds"),
        }
    except ValueError as error:
        cli_flags.config_error(error)
    print(
        f"dataset {base.dataset}: records {base.data_dir!r}, TFDS {base.tfds_name or 'hfgd_' + base.dataset!r} in "
        f"{base.tfds_data_dir or '~/tensorflow_datasets'!r}; crop {base.crop_height}x{base.crop_width}, batch "
        f"{FLAGS.batch_size}, num_parallel_calls {base.num_parallel_calls}"
    )
    train, evaluation = {name: [] for name in configs}, {name: [] for name in configs}
    try:
        for _ in range(FLAGS.repeats):
            for name, config in configs.items():
                train[name].append(pipeline_images_per_second(config, FLAGS.batch_size, FLAGS.train_batches))
                rate, count = _eval_rate(config)
                evaluation[name].append(rate)
    except ValueError as error:
        cli_flags.config_error(error)
    print(
        f"| source | train images/s (augmented {base.crop_height}x{base.crop_width}) | eval images/s ({count} images, decoded) |"
    )
    print("| --- | --- | --- |")
    for name in configs:
        runs = ", ".join(f"{r:.1f}" for r in train[name])
        print(
            f"| {name} | {statistics.median(train[name]):.1f} (runs {runs}) | {statistics.median(evaluation[name]):.1f} |"
        )
    ratio = statistics.median(train["tfds"]) / statistics.median(train["tfrecord"])
    print(f"tfds / tfrecord training rate: {ratio:.2f}")
