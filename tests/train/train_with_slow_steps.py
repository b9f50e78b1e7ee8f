"""`scripts/train.py` whose steps each take at least `$HFGD_TEST_STEP_SECONDS` seconds (a sleep after
the step), so that the preemption test's SIGTERM lands in the middle of training, not after it."""

import os
import runpy
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from hfgd_tf.train.trainer import Trainer  # noqa: E402

_make_train_step = Trainer.make_train_step


def _slow_make_train_step(self):
    step = _make_train_step(self)
    seconds = float(os.environ["HFGD_TEST_STEP_SECONDS"])

    def slow_step(iterator):
        outputs = step(iterator)
        time.sleep(seconds)
        return outputs

    return slow_step


Trainer.make_train_step = _slow_make_train_step

if __name__ == "__main__":
    script = os.path.join(ROOT, "scripts", "train.py")
    sys.path.insert(0, os.path.dirname(script))
    sys.argv = [script] + sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
