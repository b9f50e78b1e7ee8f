"""Builds a TFDS dataset from a manual download (what `tfds build` does; the `tfds` CLI of
tensorflow-datasets 4.9.10 needs apache-beam just to start).

    python scripts/build_tfds.py --dataset=camvid --manual_dir=../shared/data/camvid --tfds_data_dir=tfds_data
    python scripts/build_tfds.py --dataset=cityscapes --manual_dir=/data/cityscapes --tfds_data_dir=tfds_data
    python scripts/build_tfds.py --dataset=cityscapes --tfds_name=cityscapes/semantic_segmentation \\
        --manual_dir=/data/cityscapes_zips --tfds_data_dir=tfds_data

Our builders (`hfgd_tf.data.tfds_builders`) read the official layout in `--manual_dir`; TFDS's own
`cityscapes/semantic_segmentation` reads `leftImg8bit_trainvaltest.zip` and `gtFine_trainvaltest.zip` there.
Train with `--data_source=tfds --tfds_data_dir=...` (and `--tfds_name=...` for TFDS's Cityscapes).
"""

import sys

from absl import flags

from hfgd_tf.cli import flags as cli_flags

flags.DEFINE_string("dataset", None, "Dataset name (see hfgd_tf.data.registry); picks our builder hfgd_<dataset>.")
flags.DEFINE_string("manual_dir", None, "The downloaded dataset (official layout, or TFDS's expected zips).")
flags.DEFINE_string("tfds_data_dir", "", "TFDS data_dir to write into; '' is TFDS's default (~/tensorflow_datasets).")
flags.DEFINE_string(
    "tfds_name", "", "Build this TFDS dataset instead of our builder (e.g. cityscapes/semantic_segmentation)."
)
flags.mark_flags_as_required(["dataset", "manual_dir"])
FLAGS = flags.FLAGS


def main(argv):
    cli_flags.check_output_paths(tfds_data_dir=(FLAGS.tfds_data_dir, "directory"))
    import tensorflow_datasets as tfds

    from hfgd_tf.data import tfds_builders
    from hfgd_tf.data.converter import ConversionError

    try:
        name = FLAGS.tfds_name or tfds_builders.tfds_name_for(FLAGS.dataset)
        # TFDS logs "Downloading and preparing dataset ..." even when it only reads --manual_dir.
        print(f"Building {name} from the local files in {FLAGS.manual_dir}: nothing is downloaded.", flush=True)
        builder = tfds.builder(name, data_dir=FLAGS.tfds_data_dir or None)
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=FLAGS.manual_dir))
    except (ValueError, ConversionError, AssertionError) as error:
        sys.stderr.write(f"TFDS build failed: {error}\n")
        sys.exit(2)
    splits = ", ".join(f"{split} {info.num_examples}" for split, info in builder.info.splits.items())
    print(f"Built {name} in {builder.data_dir}: {splits}")


def run():
    """`hfgd-build-tfds` (installed with the package) and `python scripts/build_tfds.py`."""
    cli_flags.run_command(main, __doc__)


if __name__ == "__main__":
    run()
