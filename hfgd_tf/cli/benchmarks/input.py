"""`scripts/benchmark.py --suite=input`: is input the bottleneck? Training-pipeline images/s (1 and 2 parallel
calls) on real records beside the training step rate of a model at the same crop, measured in the same
process (ratios matter; these machines are noisy).
"""

import dataclasses

from absl import flags

from hfgd_tf.cli import flags as cli_flags
from hfgd_tf.cli.benchmarking import pipeline_images_per_second, training_images_per_second
from hfgd_tf.cli.benchmarks import define_records_flags

FLAGS = flags.FLAGS


def define_flags():
    define_records_flags("Batch size of both the pipeline and the training steps.")
    flags.DEFINE_integer("pipeline_batches", 30, "Batches timed per pipeline setting (after 3 warm-up batches).")
    flags.DEFINE_integer("train_steps", 5, "Training steps timed (after 2 warm-up steps).")
    flags.DEFINE_string("backbone", "resnet50", "Backbone of the HFGD model whose step rate is measured.")
    flags.DEFINE_integer("num_channels", 256, "D of the HFGD model.")


def main(argv):
    try:
        config = cli_flags.data_config_from_flags()
        from hfgd_tf.models import ModelConfig

        model_config = ModelConfig(
            num_classes=config.info.num_classes,
            backbone=FLAGS.backbone,
            num_channels=FLAGS.num_channels,
            norm_method="batch_norm",
        )
    except ValueError as error:
        cli_flags.config_error(error)
    print(
        f"dataset {config.dataset} at {config.data_dir}, crop {config.crop_height}x{config.crop_width}, batch {FLAGS.batch_size}"
    )
    rates = {}
    for calls in (1, 2):
        rates[calls] = pipeline_images_per_second(
            dataclasses.replace(config, num_parallel_calls=calls), FLAGS.batch_size, FLAGS.pipeline_batches
        )
        print(f"input pipeline, num_parallel_calls={calls}: {rates[calls]:8.1f} images/s")
    from hfgd_tf.models import build_model

    training = training_images_per_second(build_model(model_config), config, FLAGS.batch_size, FLAGS.train_steps)
    print(f"HFGD-{FLAGS.backbone} training step (fp32, this device): {training:8.2f} images/s")
    best = max(rates.values())
    verdict = "input is NOT the bottleneck" if best > 1.5 * training else "input may limit training"
    print(f"input / training ratio: {best / training:.1f}x -> {verdict}")
