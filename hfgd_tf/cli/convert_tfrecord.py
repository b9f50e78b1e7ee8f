"""Converts a dataset in its official layout into sharded TFRecords with a manifest.

    python scripts/convert_tfrecord.py --dataset=camvid --data_dir=../shared/data/camvid --output_dir=records/camvid
    python scripts/convert_tfrecord.py --dataset=cityscapes --data_dir=/data/cityscapes --output_dir=records/cityscapes
    python scripts/convert_tfrecord.py --dataset=folder --data_dir=my_data --output_dir=records/my_data

Layouts are described in `hfgd_tf/data/datasets/<dataset>.py`. A split that --output_dir already holds is
refused (no stale shards are left mixed with new ones) unless --overwrite replaces it whole. `--dataset=synthetic_streets` writes the
embedded synthetic dataset (no --data_dir).
"""

import os
import sys
import time

from absl import flags

from hfgd_tf.cli import flags as cli_flags

flags.DEFINE_string("dataset", None, "Dataset name (see hfgd_tf.data.registry).")
flags.DEFINE_string("data_dir", "", "The dataset's root folder in its official layout.")
flags.DEFINE_string("output_dir", None, "Where shards and manifest.json go.")
flags.DEFINE_list("split", [], "Splits to convert; default: the dataset's train and val.")
flags.DEFINE_integer("examples_per_shard", 500, "Examples per shard file.")
flags.DEFINE_integer("num_workers", 4, "Threads reading and encoding samples.")
flags.DEFINE_enum(
    "on_error", "stop", ["stop", "skip"], "At a bad sample: stop, or skip it and report it in the manifest."
)
flags.DEFINE_bool("compress", True, "ZLIB-compress the shards (the authors' default).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_bool(
    "overwrite",
    False,
    "Replace splits that --output_dir already holds (old shards removed once the new ones are complete). "
    "Without it, a split with shards in --output_dir is refused before anything is converted.",
)
flags.DEFINE_integer("synthetic_num_train", 400, "synthetic_streets only: training scenes.")
flags.DEFINE_integer("synthetic_num_val", 100, "synthetic_streets only: validation scenes.")
cli_flags.define_authors_flags()
flags.mark_flags_as_required(["dataset", "output_dir"])
FLAGS = flags.FLAGS


def main(argv):
    cli_flags.check_output_paths(output_dir=(FLAGS.output_dir, "directory"))
    import tensorflow as tf

    from hfgd_tf.data.converter import ConversionError, ConvertOptions, convert_split, write_manifest
    from hfgd_tf.data.datasets import folder
    from hfgd_tf.data.registry import get_dataset_spec
    from hfgd_tf.data.synthetic import write_synthetic_tfrecords
    from hfgd_tf.data.tfrecord import check_split_is_empty

    try:
        spec = get_dataset_spec(FLAGS.dataset)
        if FLAGS.dataset == "synthetic_streets":
            write_synthetic_tfrecords(FLAGS.output_dir, FLAGS.synthetic_num_train, FLAGS.synthetic_num_val)
            print(f"Wrote synthetic_streets records to {FLAGS.output_dir}")
            return
        if not FLAGS.data_dir or not tf.io.gfile.isdir(FLAGS.data_dir):
            raise ValueError(f"--data_dir {FLAGS.data_dir!r} is not a directory")
        options = ConvertOptions(
            examples_per_shard=FLAGS.examples_per_shard,
            num_workers=FLAGS.num_workers,
            on_error=FLAGS.on_error,
            compression="ZLIB" if FLAGS.compress else "",
            progress=FLAGS.progress,
            overwrite=FLAGS.overwrite,
        )
        info, label_fn = spec.info, spec.label_table
        if FLAGS.dataset == "folder":
            info, label_fn = folder.info_from_classes(FLAGS.data_dir), folder.label_converter(FLAGS.data_dir)
        splits = FLAGS.split or [s for s in ("train", "val") if s in spec.splits]
        unknown = [s for s in splits if s not in spec.splits and FLAGS.dataset != "folder"]
        if unknown:
            raise ValueError(f"--split {unknown} not in {FLAGS.dataset}'s splits {list(spec.splits)}")
        if not FLAGS.overwrite:
            for split in splits:  # before any work, not after converting the first split
                check_split_is_empty(FLAGS.output_dir, split)
        results, start = {}, time.time()
        for split in splits:
            samples = spec.list_samples(FLAGS.data_dir, split)
            results[split] = convert_split(samples, FLAGS.output_dir, split, info, label_fn, options)
        path = write_manifest(FLAGS.output_dir, info, results, source={"data_dir": os.path.abspath(FLAGS.data_dir)})
    except (ValueError, ConversionError) as error:
        sys.stderr.write(f"Conversion failed: {error}\n")
        sys.exit(2)
    for split, result in results.items():
        print(
            f"{split}: {result['num_examples']} examples in {len(result['shards'])} shards, "
            f"{result['num_skipped']} skipped, {result['seconds']} s"
        )
    print(f"Done in {time.time() - start:.1f} s. Manifest: {path}")


def run():
    """`hfgd-convert-tfrecord` (installed with the package) and `python scripts/convert_tfrecord.py`."""
    cli_flags.run_command(main, __doc__)


if __name__ == "__main__":
    run()
