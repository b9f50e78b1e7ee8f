"""The embedded end-to-end demo: `python scripts/demo.py --flagfile=experiments/demo.cfg`.

The command is `hfgd_tf/cli/demo.py` (installed as `hfgd-demo`); `--help` prints its usage and flags.
"""

from hfgd_tf.cli.demo import run

if __name__ == "__main__":
    run()
