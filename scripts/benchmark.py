"""Benchmarks, each reported as ratios to a peer measured in the same process: `python scripts/benchmark.py
--suite=models|deploy|stats|input|sources|train`.

The command is `hfgd_tf/cli/benchmarks/__init__.py` (installed as `hfgd-benchmark`); `--help` prints its usage.
"""

from hfgd_tf.cli.benchmarks import run

if __name__ == "__main__":
    run()
