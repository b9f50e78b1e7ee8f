"""File access through `tf.io.gfile` (local paths, `gs://`, `ram://`, ...) and small files written so
that a crash never leaves a half-written one under the final name."""

import json
import os

import tensorflow as tf


def write_json_atomic(path, content):
    """Writes `content` as indented JSON to `path.incomplete`, then renames it to `path` (`tf.io.gfile`).

    The rename is atomic on local filesystems; on object stores (`gs://`) the final object appears
    whole once written.

    Returns:
        str: `path`.
    """
    directory = os.path.dirname(path)
    if directory:
        tf.io.gfile.makedirs(directory)
    temporary = path + ".incomplete"
    with tf.io.gfile.GFile(temporary, "w") as handle:
        handle.write(json.dumps(content, indent=2))
    tf.io.gfile.rename(temporary, path, overwrite=True)
    return path


def read_json(path):
    """The JSON content of `path` (any `tf.io.gfile` filesystem)."""
    with tf.io.gfile.GFile(path, "r") as handle:
        return json.loads(handle.read())


def write_bytes_atomic(path, data):
    """Writes `data` (bytes) to `path.incomplete`, then renames it to `path` (`tf.io.gfile`)."""
    directory = os.path.dirname(path)
    if directory:
        tf.io.gfile.makedirs(directory)
    temporary = path + ".incomplete"
    with tf.io.gfile.GFile(temporary, "wb") as handle:
        handle.write(data)
    tf.io.gfile.rename(temporary, path, overwrite=True)
    return path


def rename_directory(source, target):
    """Moves the directory `source` to `target` (which must not exist).

    Local paths: one atomic rename. Other filesystems (`scheme://`): file by file, then `source` is
    removed; object stores (gs://) rename directories that way anyway, and TF's `ram://` filesystem
    renames only the directory entry, not the files in it.
    """
    if "://" not in source:
        tf.io.gfile.rename(source, target)
        return target
    source = source.rstrip("/")
    for directory, _, files in tf.io.gfile.walk(source):
        relative = directory.rstrip("/")[len(source) :].lstrip("/")
        destination = os.path.join(target, relative) if relative else target
        tf.io.gfile.makedirs(destination)
        for name in files:
            tf.io.gfile.rename(os.path.join(directory, name), os.path.join(destination, name), overwrite=True)
    tf.io.gfile.rmtree(source)
    return target
