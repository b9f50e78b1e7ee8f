"""`hfgd_tf.files`: the output-path check every script runs before any work, and local copies of
remote files for readers that need a local name."""

import os
import stat
import uuid

import pytest
import tensorflow as tf

from hfgd_tf.files import check_output_paths, local_copy, output_path_problem, read_json


def test_an_output_directory_under_a_regular_file_is_named(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert (
        output_path_problem(str(blocker / "out" / "deeper"))
        == f"{str(blocker)!r} (on the way to it) is a file, not a directory"
    )
    assert output_path_problem(str(blocker)) == f"{str(blocker)!r} is a file, not a directory"
    with pytest.raises(
        ValueError, match=r"^--output_dir='.*a_file/out' cannot be written as a directory: '.*a_file' \(on the way"
    ):
        check_output_paths({"output_dir": (str(blocker / "out"), "directory")})


def test_an_output_file_that_is_a_directory_is_named(tmp_path):
    assert output_path_problem(str(tmp_path), "file") == f"{str(tmp_path)!r} is a directory, not a file"
    assert output_path_problem(str(tmp_path / "new" / "results.json"), "file") is None
    assert output_path_problem(str(tmp_path / "new" / "run")) is None
    assert not os.path.exists(tmp_path / "new")  # the check creates nothing


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_parent_is_named(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert output_path_problem(str(locked / "out")) == f"{str(locked)!r} is not writable by this process"
    finally:
        locked.chmod(stat.S_IRWXU)


def test_empty_paths_are_skipped_and_remote_paths_are_checked_by_kind():
    check_output_paths({"results_json": ("", "file")})
    root = f"ram://{uuid.uuid4().hex}"
    with tf.io.gfile.GFile(f"{root}/a_file", "w") as handle:
        handle.write("x")
    assert output_path_problem(f"{root}/a_file") == f"'{root}/a_file' is a file, not a directory"
    assert output_path_problem(f"{root}/a_file/out").startswith(f"'{root}/a_file' (on the way to it) is a file")
    assert output_path_problem(f"{root}/elsewhere/out") is None


def test_local_copy_of_a_remote_file_is_removed_afterwards(tmp_path):
    remote = f"ram://{uuid.uuid4().hex}/weights/model.weights.h5"
    with tf.io.gfile.GFile(remote, "wb") as handle:
        handle.write(b"\x01\x02")
    with local_copy(remote) as local:
        assert local.endswith("model.weights.h5") and "://" not in local
        with open(local, "rb") as handle:
            assert handle.read() == b"\x01\x02"
    assert not os.path.exists(local)
    with local_copy(str(tmp_path / "x.h5")) as local:
        assert local == str(tmp_path / "x.h5")


def test_a_damaged_json_file_is_named(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"miou": 0.')
    with pytest.raises(ValueError, match=r"metrics\.json' is not valid JSON \(cut short or damaged"):
        read_json(str(path))
