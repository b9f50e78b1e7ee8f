"""`python -m hfgd_tf.cli.benchmarks`: the benchmark command."""

from hfgd_tf.cli.benchmarks import run

run()
