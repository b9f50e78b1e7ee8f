"""Is input the bottleneck? Training-pipeline images/s (1 and 2 parallel calls) beside the training step
rate of a model at the same crop, measured in the same process (ratios matter; these machines are noisy).

    python scripts/convert_tfrecord.py --dataset=camvid --data_dir=../shared/data/camvid --output_dir=records/camvid
    python scripts/benchmark_input.py --dataset=camvid --data_dir=records/camvid --crop_height=352 --crop_width=480
"""

import dataclasses
import time

from absl import app, flags

import common_flags

common_flags.define_config_flags(common_flags.DataConfig)
flags.DEFINE_integer("batch_size", 8, "Batch size of both the pipeline and the training steps.")
flags.DEFINE_integer("pipeline_batches", 30, "Batches timed per pipeline setting (after 3 warm-up batches).")
flags.DEFINE_integer("train_steps", 5, "Training steps timed (after 2 warm-up steps).")
flags.DEFINE_string("backbone", "resnet50", "Backbone of the HFGD model whose step rate is measured.")
flags.DEFINE_integer("num_channels", 256, "D of the HFGD model.")
FLAGS = flags.FLAGS


def _pipeline_images_per_second(config, batch_size, batches):
    from hfgd_tf.data.pipeline import build_train_dataset

    iterator = iter(build_train_dataset(config, batch_size))
    for _ in range(3):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def _training_images_per_second(config, model_config, batch_size, steps):
    import tensorflow as tf

    from hfgd_tf.models import build_model
    from hfgd_tf.train.losses import hfgd_loss_terms

    model = build_model(model_config)
    optimizer = tf.keras.optimizers.SGD(0.01, momentum=0.9)
    images = tf.random.uniform([batch_size, config.crop_height, config.crop_width, 3], 0, 255)
    labels = tf.random.uniform([batch_size, config.crop_height, config.crop_width], 0, model_config.num_classes, tf.int32)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            terms = hfgd_loss_terms(labels, model(images, training=True), config.info.ignore_label)
            loss = sum(total / count for total, count in terms.values())
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    for _ in range(2):
        step().numpy()
    start = time.perf_counter()
    for _ in range(steps):
        step().numpy()
    return steps * batch_size / (time.perf_counter() - start)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        config = common_flags.data_config_from_flags()
        from hfgd_tf.models import ModelConfig

        model_config = ModelConfig(
            num_classes=config.info.num_classes, backbone=FLAGS.backbone, num_channels=FLAGS.num_channels,
            norm_method="batch_norm",
        )
    except ValueError as error:
        common_flags.config_error(error)
    print(f"dataset {config.dataset} at {config.data_dir}, crop {config.crop_height}x{config.crop_width}, batch {FLAGS.batch_size}")
    rates = {}
    for calls in (1, 2):
        rates[calls] = _pipeline_images_per_second(
            dataclasses.replace(config, num_parallel_calls=calls), FLAGS.batch_size, FLAGS.pipeline_batches
        )
        print(f"input pipeline, num_parallel_calls={calls}: {rates[calls]:8.1f} images/s")
    training = _training_images_per_second(config, model_config, FLAGS.batch_size, FLAGS.train_steps)
    print(f"HFGD-{FLAGS.backbone} training step (fp32, this device): {training:8.2f} images/s")
    best = max(rates.values())
    verdict = "input is NOT the bottleneck" if best > 1.5 * training else "input may limit training"
    print(f"input / training ratio: {best / training:.1f}x -> {verdict}")


if __name__ == "__main__":
    app.run(main)
