"""`scripts/benchmark.py --suite=train`: training step rate on 1 vs 2 replicas and evaluation time, on real
records, in one process. Takes every scripts/train.py flag.

Replicas are logical CPU devices when there is no GPU (set up before TensorFlow starts), so on a CPU
the 2-replica number measures the distribution overhead, not a speed-up. Ratios are printed against
the 1-replica run of the same process.
"""

import time

from absl import flags

from hfgd_tf.cli import flags as cli_flags

FLAGS = flags.FLAGS


def define_flags():
    cli_flags.define_all()
    flags.DEFINE_integer("benchmark_steps", 3, "Timed training steps per strategy (after 1 warm-up step).")
    flags.DEFINE_integer("logical_cpus", 2, "Logical CPU devices to create when there is no GPU.")
    flags.DEFINE_bool("benchmark_eval", True, "Also time one evaluation pass over the eval split.")


def _steps_per_second(trainer, steps):
    iterator = trainer.distributed_iterator()
    step = trainer.make_train_step()
    step(iterator)["total"].numpy()
    start = time.perf_counter()
    for _ in range(steps):
        step(iterator)["total"].numpy()
    return steps / (time.perf_counter() - start)


def main(argv):
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * FLAGS.logical_cpus)
    cli_flags.apply_authors_runtime_flags()  # before TF sets up its devices
    try:
        configs = dict(
            model_config=cli_flags.model_config_from_flags(),
            data_config=cli_flags.data_config_from_flags(),
            optimizer_config=cli_flags.optimizer_config_from_flags(),
            train_config=cli_flags.train_config_from_flags(
                checkpoint_dir=FLAGS.checkpoint_dir or "/tmp/hfgd_benchmark"
            ),
            eval_config=cli_flags.eval_config_from_flags(),
        )
    except ValueError as error:
        cli_flags.config_error(error)
    from hfgd_tf.train import Trainer

    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
        d.name for d in tf.config.list_logical_devices("CPU")
    ]
    results = {}
    for label, strategy in (
        ("1 replica", tf.distribute.OneDeviceStrategy(devices[0])),
        (f"{len(devices)} replicas", tf.distribute.MirroredStrategy(devices)),
    ):
        try:
            trainer = Trainer(**configs, strategy=strategy)
        except ValueError as error:
            cli_flags.config_error(error)
        results[label] = _steps_per_second(trainer, FLAGS.benchmark_steps)
        print(
            f"train {label:12s}: {results[label]:.3f} steps/s, "
            f"{results[label] * configs['train_config'].batch_size:.2f} images/s "
            f"({results[label] / results['1 replica']:.2f}x 1 replica)"
        )
        if label == "1 replica" and FLAGS.benchmark_eval:
            start = time.perf_counter()
            metrics = trainer.evaluate()
            print(
                f"eval: {metrics['num_images']} images in {time.perf_counter() - start:.1f} s "
                f"(protocol {metrics['protocol']}, untrained weights)"
            )
    model = configs["model_config"]
    print(
        f"model {model.backbone} D={model.num_channels} OS{model.output_stride}, batch {configs['train_config'].batch_size}"
    )
