"""Evaluates a training run or an export of it: `python scripts/evaluate.py --checkpoint_dir=runs/x`.

The command is `hfgd_tf/cli/evaluate.py` (installed as `hfgd-evaluate`); `--help` prints its usage and flags.
"""

from hfgd_tf.cli.evaluate import run

if __name__ == "__main__":
    run()
