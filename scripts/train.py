"""Trains a segmenter: `python scripts/train.py --flagfile=experiments/<experiment>.cfg`.

The command is `hfgd_tf/cli/train.py` (installed as `hfgd-train`); `--help` prints its usage and flags.
"""

from hfgd_tf.cli.train import run

if __name__ == "__main__":
    run()
