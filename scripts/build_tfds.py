"""Builds a TFDS dataset from a manual download.

The command is `hfgd_tf/cli/build_tfds.py` (installed as `hfgd-build-tfds`); `--help` prints its usage and flags.
"""

from hfgd_tf.cli.build_tfds import run

if __name__ == "__main__":
    run()
