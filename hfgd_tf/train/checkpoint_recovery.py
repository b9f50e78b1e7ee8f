"""Finding the newest checkpoint of a run directory that can actually be read.

A checkpoint can be listed in the run's `checkpoint` state file and still be unreadable: a partial
copy from a bucket, a disk error, a file cut short outside TensorFlow's writer. TensorFlow finds out
only inside the restore, with a traceback from deep in its reader (`IndexError: Read less bytes than
requested`) that names no file. Here every tensor of a candidate is read once before it is restored
(TensorFlow's bundle reader checks each tensor's length and CRC32C as it reads it), newest first: an
unreadable checkpoint is named with its file and the reason, and the caller falls back to the next
older one and says how many steps that costs. Reading every tensor before restoring doubles the read
of the restored checkpoint (the second one comes from the page cache on local disks); that is the
price of never half-restoring a model from a checkpoint found bad midway.

Only checkpoints the state file records are candidates (newest recorded first): files of a save that
was killed before the state file named them were never committed and are not used. Without a state
file (e.g. a copy that missed it), the `ckpt-N` files on disk are the candidates, highest N first.
"""

import dataclasses
import os
import re

import tensorflow as tf

# `tf.train.CheckpointManager`'s default name: checkpoints are `ckpt-<step>`.
CHECKPOINT_PREFIX = "ckpt"
STATE_FILE = "checkpoint"


class UnreadableCheckpointError(ValueError):
    """No checkpoint that was asked for (or none of a run directory's) can be read; the message names
    each file, the reason, and what to do."""


@dataclasses.dataclass(frozen=True)
class UnreadableCheckpoint:
    """A checkpoint that failed to read.

    Attributes:
        path: str. The checkpoint prefix (`<dir>/ckpt-N`).
        reason: str. The file at fault and the reader's message, e.g.
            "ckpt-4.data-00000-of-00001 (1024 bytes): Read less bytes than requested".
    """

    path: str
    reason: str

    def __str__(self):
        return f"{os.path.basename(self.path)} ({self.reason})"


def checkpoint_step(path):
    """The step N of a `ckpt-N` prefix, or None for another name."""
    match = re.fullmatch(rf"{CHECKPOINT_PREFIX}-(\d+)", os.path.basename(path))
    return int(match.group(1)) if match else None


def recorded_checkpoints(checkpoint_dir):
    """The run's checkpoint prefixes, newest first (see the module docstring).

    Returns:
        list of str: absolute (or `scheme://`) checkpoint prefixes; [] for a directory without any.
    """
    if not tf.io.gfile.isdir(checkpoint_dir):
        return []
    state = tf.train.get_checkpoint_state(checkpoint_dir)
    if state is not None and state.model_checkpoint_path:
        paths = [state.model_checkpoint_path] + list(reversed(state.all_model_checkpoint_paths))
        paths = [path if os.path.isabs(path) or "://" in path else os.path.join(checkpoint_dir, path) for path in paths]
        return list(dict.fromkeys(paths))
    found = tf.io.gfile.glob(os.path.join(checkpoint_dir, f"{CHECKPOINT_PREFIX}-*.index"))
    prefixes = [path[: -len(".index")] for path in found if checkpoint_step(path[: -len(".index")]) is not None]
    return sorted(prefixes, key=checkpoint_step, reverse=True)


def _describe(paths):
    described = []
    for path in paths:
        size = tf.io.gfile.stat(path).length if tf.io.gfile.exists(path) else None
        described.append(os.path.basename(path) + (f" ({size} bytes)" if size is not None else " (missing)"))
    return ", ".join(described)


def checkpoint_problem(path):
    """Why the checkpoint `path` (a prefix) cannot be read, or None when every tensor reads.

    Returns:
        str or None: the file at fault and the reader's message.
    """
    index = path + ".index"
    if not tf.io.gfile.exists(index):
        return f"{os.path.basename(index)} is missing"
    try:
        # The reader `restore` uses (`tf.train.load_checkpoint` would take a prefix for a directory on
        # filesystems such as ram://, where a prefix of file names lists as one).
        reader = tf.compat.v1.train.NewCheckpointReader(path)
    except Exception as error:  # the reader raises OpErrors, or IndexError/RuntimeError from its bindings
        return f"{_describe([index])}: {_first_line(error)}"
    try:
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:
        data = tf.io.gfile.glob(path + ".data-*") or [path + ".data-00000-of-00001"]
        return f"{_describe(data)}: {_first_line(error)}"
    return None


def _first_line(error):
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return f"{type(error).__name__}: {message.strip().splitlines()[0]}"


def newest_readable_checkpoint(checkpoint_dir, what_to_do):
    """The newest recorded checkpoint of `checkpoint_dir` that reads, and the newer ones that did not.

    Args:
        checkpoint_dir: str. A run directory.
        what_to_do: str. The end of the error message when no checkpoint reads (the caller's options).

    Returns:
        `(path, unreadable)`: `path` is None when the directory records no checkpoint; `unreadable`
        lists the newer checkpoints skipped (`UnreadableCheckpoint`), newest first.

    Raises:
        UnreadableCheckpointError: checkpoints are recorded but none reads.
    """
    unreadable = []
    candidates = recorded_checkpoints(checkpoint_dir)
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return path, unreadable
        unreadable.append(UnreadableCheckpoint(path, problem))
    if unreadable:
        raise UnreadableCheckpointError(
            f"No readable checkpoint in {checkpoint_dir!r}: {'; '.join(str(u) for u in unreadable)}. {what_to_do}"
        )
    return None, []


def steps_lost(restored, unreadable):
    """Steps between the newest unreadable checkpoint and the one restored (0 when none was skipped)."""
    newest = max((checkpoint_step(u.path) or 0 for u in unreadable), default=0)
    return max(0, newest - (checkpoint_step(restored) or 0))


def fallback_message(restored, unreadable, action="resuming from"):
    """The warning for a fall back from unreadable checkpoints to `restored`."""
    lost = steps_lost(restored, unreadable)
    skipped = "; ".join(f"{u.path} ({u.reason})" for u in unreadable)
    return (
        f"Unreadable checkpoint{'s' if len(unreadable) > 1 else ''} skipped: {skipped}. {action} "
        f"{os.path.basename(restored)}, the newest readable one: {lost} step{'s' if lost != 1 else ''} "
        f"{'are' if lost != 1 else 'is'} lost"
    )
