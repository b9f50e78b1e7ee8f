"""Predicts label maps for image files or folders with an export (any format) or a training run.

The command is `hfgd_tf/cli/predict.py` (installed as `hfgd-predict`); `--help` prints its usage and flags.
"""

from hfgd_tf.cli.predict import run

if __name__ == "__main__":
    run()
