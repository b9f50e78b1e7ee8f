"""File access through `tf.io.gfile` (local paths, `gs://`, `ram://`, ...) and small files written so
that a crash never leaves a half-written one under the final name."""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile

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


def file_sha256(path):
    """The hex SHA-256 of the file `path` (any `tf.io.gfile` filesystem), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_file(path):
    """Whether `path` (any `tf.io.gfile` filesystem) is an existing file, not a directory."""
    return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)


def read_bytes(path):
    """The content of the file `path` (any `tf.io.gfile` filesystem)."""
    with tf.io.gfile.GFile(path, "rb") as handle:
        return handle.read()


@contextlib.contextmanager
def local_copy(path):
    """A local file name holding the content of `path`, for readers that need one (Keras `load_weights`).

    A local `path` is yielded as it is; any other (`gs://`, `ram://`) is copied through `tf.io.gfile`
    into a temporary file with the same name (Keras picks the format by its suffix), removed on exit.
    """
    if "://" not in path:
        yield path
        return
    directory = tempfile.mkdtemp(prefix="hfgd_local_copy_")
    try:
        local = os.path.join(directory, os.path.basename(path.rstrip("/")))
        with tf.io.gfile.GFile(path, "rb") as source, open(local, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        yield local
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def read_json(path):
    """The JSON content of `path` (any `tf.io.gfile` filesystem)."""
    with tf.io.gfile.GFile(path, "r") as handle:
        text = handle.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path!r} is not valid JSON (cut short or damaged? {error}): copy it again or rewrite it"
        ) from None


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


def _exists(path):
    try:
        return tf.io.gfile.exists(path)
    except tf.errors.OpError:  # e.g. a path under a regular file on some filesystems
        return False


def output_path_problem(path, kind="directory"):
    """Why `path` cannot be written as a `kind` ("directory" or "file"), or None when it can.

    Creates nothing, so that a run refused by a later check leaves no directory behind. The path
    itself must be of its kind when it exists; otherwise the nearest existing ancestor must be a
    directory (not a regular file somewhere up the path) and, for local paths, writable by this
    process. On object stores (`gs://`) a missing "directory" is normal and permissions are only
    known at write time: there only the existing path's kind is checked.
    """
    if kind not in ("directory", "file"):
        raise ValueError(f"kind must be 'directory' or 'file'. Received: {kind!r}")
    remote = "://" in path
    if not remote:
        path = os.path.abspath(path)
    if _exists(path):
        is_directory = tf.io.gfile.isdir(path)
        if kind == "directory" and not is_directory:
            return f"{path!r} is a file, not a directory"
        if kind == "file" and is_directory:
            return f"{path!r} is a directory, not a file"
        existing = path if is_directory else os.path.dirname(path)
    else:
        existing = os.path.dirname(path.rstrip("/"))
        while existing and not _exists(existing) and existing != os.path.dirname(existing):
            existing = os.path.dirname(existing)
        if existing and _exists(existing) and not tf.io.gfile.isdir(existing):
            return f"{existing!r} (on the way to it) is a file, not a directory"
    if not remote and not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing!r} is not writable by this process"
    return None


def check_output_paths(paths):
    """Checks every output path of a script before it does any work.

    Args:
        paths: dict flag name -> `(path, kind)`, kind "directory" or "file"; empty paths are skipped.

    Raises:
        ValueError: naming the first flag whose path cannot be written, and why.
    """
    for flag_name, (path, kind) in paths.items():
        if not path:
            continue
        problem = output_path_problem(path, kind)
        if problem:
            raise ValueError(f"--{flag_name}={path!r} cannot be written as a {kind}: {problem}")
