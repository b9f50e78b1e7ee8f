"""`scripts/train.py` that pauses inside the save of one checkpoint, for the kill-during-save test.

The pause comes after `ckpt-N`'s files are written and before the `checkpoint` state file names it
(and before older checkpoints are deleted). The process writes `$HFGD_TEST_SAVE_MARKER` and sleeps
there, so that the test can SIGKILL it in the middle of the save. N is `$HFGD_TEST_PAUSE_AT`.
"""

import os
import runpy
import sys
import time

from tensorflow.python.checkpoint import checkpoint_management

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_record_state = checkpoint_management.CheckpointManager._record_state


def _paused_record_state(self):
    if self._latest_checkpoint.endswith(f"ckpt-{os.environ['HFGD_TEST_PAUSE_AT']}"):
        with open(os.environ["HFGD_TEST_SAVE_MARKER"], "w") as handle:
            handle.write(self._latest_checkpoint)
        time.sleep(600)
    _record_state(self)


checkpoint_management.CheckpointManager._record_state = _paused_record_state

if __name__ == "__main__":
    script = os.path.join(ROOT, "scripts", "train.py")
    sys.path.insert(0, os.path.dirname(script))
    sys.argv = [script] + sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
