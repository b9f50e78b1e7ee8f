"""The command-line layer: the one place that defines and reads absl FLAGS.

`flags` turns the config dataclasses (and the authors' flag names) into flags and the parsed flags back into
configs; `startup` imports TensorFlow without the CUDA probe noise of CPU-only machines. One module per command
(`train`, `evaluate`, `export`, `predict`, `demo`, `convert_tfrecord`, `convert_weights`, `build_tfds`; each
defines its flags on import and has a `run()`), and `benchmarks`, the suites of the benchmark command (each with
its own flags; `benchmarking` holds what they measure alike). Each command runs as `python scripts/<command>.py`
(a two-line wrapper), `python -m hfgd_tf.cli.<command>` or, installed, as `hfgd-<command>` (`hfgd-train`,
`hfgd-convert-tfrecord`, ...). Import one command per process: their flags would clash. Nothing else in the package imports this one (it imports no
TensorFlow itself, so `hfgd_tf.cli.startup` can run before TensorFlow is imported).
"""
