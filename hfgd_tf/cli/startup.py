"""Starts TensorFlow for the scripts without the CUDA probe messages of CPU-only machines.

On a machine without an NVIDIA driver, importing TensorFlow prints "Could not find cuda drivers on your
machine", an error-level "failed call to cuInit" and CPU-instruction notes before the script has said a word;
none of it is actionable there. The first of them is written before TensorFlow's logging is set up, so no
log level hides it: the import and the device probe run with the process's stderr pointed at /dev/null (a
Python exception still propagates and is printed). Machines with an NVIDIA driver keep every message (there
they say why a GPU is not used). `TF_CPP_MIN_LOG_LEVEL` defaults to 1 (no C++ INFO lines, such as one line
per collective op and worker); set it (0 shows everything) or `HFGD_TF_SHOW_TF_STARTUP=1` to see them all.
TensorFlow's Python log lines are printed once (through absl's handler, not also through TensorFlow's own),
without the "Collective all_reduce tensors" notes logged again by every worker at every trace.
"""

import contextlib
import glob
import logging
import os


def _has_nvidia_driver():
    return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.isdir("/proc/driver/nvidia")


@contextlib.contextmanager
def _stderr_to_devnull():
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(null)
        os.close(saved)


# TensorFlow's INFO lines logged again each time a step function is traced, once per worker.
_REPEATED_TF_MESSAGES = (
    "Collective all_reduce tensors",
    "Collective all_gather tensors",
    "Collective batch_all_reduce",
)


class _DropRepeatedTensorFlowInfo(logging.Filter):
    def filter(self, record):
        return not (record.levelno <= logging.INFO and str(record.msg).startswith(_REPEATED_TF_MESSAGES))


def _one_line_per_tensorflow_log():
    """TensorFlow's Python logger prints through its own handler and again through absl's root handler
    ("INFO:tensorflow:..." then "I1205 ... the same"): keep absl's; drop the per-trace collective notes."""
    logger = logging.getLogger("tensorflow")
    logger.handlers = [h for h in logger.handlers if not isinstance(h, logging.StreamHandler)]
    logger.addFilter(_DropRepeatedTensorFlowInfo())


def import_tensorflow_quietly():
    """Imports TensorFlow (and probes its devices) without the CUDA probe output on CPU-only machines."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    verbose = bool(os.environ.get("HFGD_TF_SHOW_TF_STARTUP"))
    if verbose or _has_nvidia_driver():
        import tensorflow  # noqa: F401
    else:
        with _stderr_to_devnull():
            import tensorflow as tf

            # Listing physical devices runs cuInit (its error is printed then); it does not initialise the
            # runtime, so a multi-worker strategy can still be created afterwards.
            tf.config.list_physical_devices()
    if not verbose:
        import tensorflow as tf

        tf.get_logger()  # creates TensorFlow's logger with its handler, which the next line removes
        _one_line_per_tensorflow_log()
