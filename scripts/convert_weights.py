"""Converts a pretrained backbone checkpoint you already have into our backbone `.weights.h5`.

The command is `hfgd_tf/cli/convert_weights.py` (installed as `hfgd-convert-weights`); `--help` prints its usage and flags.
"""

from hfgd_tf.cli.convert_weights import run

if __name__ == "__main__":
    run()
