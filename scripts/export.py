"""Exports a training run for deployment: `python scripts/export.py --checkpoint_dir=runs/x --export_dir=exports/x`.

The command is `hfgd_tf/cli/export.py` (installed as `hfgd-export`); `--help` prints its usage and flags.
"""

from hfgd_tf.cli.export import run

if __name__ == "__main__":
    run()
