"""The command-line layer: the one place that defines and reads absl FLAGS.

`flags` turns the config dataclasses (and the authors' flag names) into flags and the parsed flags back into
configs; `startup` imports TensorFlow without the CUDA probe noise of CPU-only machines; `benchmarks` holds
the suites of `scripts/benchmark.py` (each with its own flags), `benchmarking` what they measure alike. The
scripts in `scripts/` are thin entry points over these. Nothing else in the package imports this one (it imports no
TensorFlow itself, so `hfgd_tf.cli.startup` can run before TensorFlow is imported).
"""
