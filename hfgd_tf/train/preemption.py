"""Preemption: on SIGTERM, training saves a checkpoint at the next step boundary and stops cleanly.

Cloud schedulers (preemptible/spot VMs, Kubernetes, Slurm) send SIGTERM some seconds before they kill
a job. `PreemptionWatcher` turns the signal into a flag that the training loop reads between two
steps: the loop then saves `ckpt-<step>` (every worker calls the save, as `tf.distribute` requires;
CheckpointManager writes under a temporary name and commits with a rename, so no half-written
checkpoint is ever the latest one), stops, and the script exits with `PREEMPTED_EXIT_CODE`. Rerunning
the same command resumes at that step with the same data position (stateless per-epoch shuffles).

With several workers, the one that got the signal must stop all of them at the same step: every step
the workers sum their flags with one scalar all-reduce (only when there is more than one worker).
This plays the role of `tf.distribute.experimental.PreemptionCheckpointHandler` [ours: that handler
numbers checkpoints by its own run counter, attaches its counter to the checkpoint and reads back
through its own manager; the loop keeps its `ckpt-<step>` run directory instead].
"""

import signal
import threading

import tensorflow as tf
from absl import logging

from hfgd_tf.train.distribute import num_workers

# The exit status of a preempted run (as PreemptionCheckpointHandler's default outside Google Cloud):
# not 0, so that a scheduler reruns the job; not 1 or 2, so that it is not taken for an error.
PREEMPTED_EXIT_CODE = 42


class PreemptionWatcher:
    """A context manager that notices SIGTERM while the training loop runs.

    Args:
        strategy: `tf.distribute.Strategy` the loop trains under.
        signals: tuple of signal numbers to catch. Defaults to `(signal.SIGTERM,)`.

    Example:
        with PreemptionWatcher(strategy) as watcher:
            while step < total_steps:
                ...
                if watcher.stop_requested():
                    save(); break
    """

    def __init__(self, strategy, signals=(signal.SIGTERM,)):
        self._strategy = strategy
        self._signals = signals
        self._received = threading.Event()
        self._previous = {}
        self._multi_worker = num_workers(strategy) > 1
        self._agree = tf.function(self._sum_over_replicas) if self._multi_worker else None

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            logging.warning("Preemption: not in the main thread, SIGTERM will not save a checkpoint")
            return self
        for number in self._signals:
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}
        return False

    def _handle(self, number, frame):
        del frame
        logging.warning(
            "Received signal %d (preemption): saving a checkpoint at the end of this step, then stopping; the same "
            "signal again ends the process at once",
            number,
        )
        self._received.set()
        # A second signal (a stuck step or a long evaluation past the grace period) gets the previous
        # behaviour, by default ending the process.
        signal.signal(number, self._previous.get(number, signal.SIG_DFL))

    def _sum_over_replicas(self, flag):
        def replica_fn(value):
            # The identity puts the flag on the replica's device, where the all-reduce sends it.
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(value))

        per_replica = self._strategy.run(replica_fn, args=(flag,))
        return self._strategy.experimental_local_results(per_replica)[0]

    @property
    def received(self):
        """Whether this process got the signal."""
        return self._received.is_set()

    def stop_requested(self):
        """Whether to save and stop now; the same answer on every worker at the same step.

        Call it once per step on every worker (with several workers it runs a collective).
        """
        if not self._multi_worker:
            return self._received.is_set()
        flag = tf.constant(1.0 if self._received.is_set() else 0.0)
        return bool(self._agree(flag).numpy() > 0)
