"""Converts a dataset in its official layout into sharded TFRecords with a manifest.

The command is `hfgd_tf/cli/convert_tfrecord.py` (installed as `hfgd-convert-tfrecord`); `--help` prints its usage and flags.
"""

from hfgd_tf.cli.convert_tfrecord import run

if __name__ == "__main__":
    run()
