"""Every experiments/*.cfg flagfile parses with scripts/train.py's flags into valid configs."""

import glob
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

CHECK = textwrap.dedent(
    """
    import sys
    from hfgd_tf.cli import flags as cli_flags
    from absl import flags
    cli_flags.define_all()
    flags.DEFINE_string("output_dir", "", "demo.py's flag, also accepted here")
    FLAGS = flags.FLAGS
    for path in sys.argv[1:]:
        FLAGS.unparse_flags()
        FLAGS(cli_flags.expand_flagfiles(["train.py", "--flagfile=" + path, "--checkpoint_dir=/tmp/unused"]))
        model = cli_flags.model_config_from_flags()
        data = cli_flags.data_config_from_flags()
        cli_flags.optimizer_config_from_flags()
        cli_flags.train_config_from_flags()
        cli_flags.eval_config_from_flags()
        print(path, data.dataset, model.backbone, model.num_classes)
    """
)


@pytest.mark.slow
def test_every_flagfile_builds_valid_configs():
    paths = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "experiments", "*.cfg")))
    assert len(paths) >= 16
    result = subprocess.run([sys.executable, "-c", CHECK, *paths], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["experiments/pascal_context_r50_hfgd.cfg"] == "pascal_context resnet50 59"
    assert lines["experiments/coco_stuff_164k_swin_t_hfgd.cfg"] == "coco_stuff_164k swin_tiny 171"
    assert lines["experiments/cityscapes_convnext_t_hfgd.cfg"] == "cityscapes convnext_tiny 19"
    assert lines["experiments/camvid_r50_hfgd.cfg"] == "camvid resnet50 11"
    for dataset in ("pascal_context", "coco_stuff_164k", "cityscapes"):
        for backbone in ("r50", "r101", "convnext_t", "swin_t"):
            assert f"experiments/{dataset}_{backbone}_hfgd.cfg" in lines


@pytest.mark.slow
def test_included_flagfiles_resolve_next_to_the_including_file_from_any_directory(tmp_path):
    # The experiments include their dataset's flagfile by a path relative to themselves, so a script run
    # from elsewhere (here: tmp_path) reads the same flags; train.py stops at the missing records, not before.
    experiment = os.path.join(ROOT, "experiments", "demo.cfg")
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "scripts", "train.py"),
            f"--flagfile={experiment}",
            f"--data_dir={tmp_path / 'no_records'}",
            f"--checkpoint_dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "Invalid flags: --data_dir" in result.stderr, result.stderr[-2000:]


def test_flagfile_includes_expand_in_place_and_refuse_missing_or_circular_ones(tmp_path):
    from hfgd_tf.cli import flags as cli_flags

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.cfg").write_text("# comment\n--batch_size=2\n\n--seed=1\n")
    (tmp_path / "sub" / "exp.cfg").write_text("--flagfile=base.cfg\n--batch_size=4\n")
    assert cli_flags.expand_flagfiles(["x", "--seed=0", f"--flagfile={tmp_path / 'sub' / 'exp.cfg'}", "--seed=5"]) == [
        "x",
        "--seed=0",
        "--batch_size=2",
        "--seed=1",
        "--batch_size=4",
        "--seed=5",
    ]
    (tmp_path / "sub" / "bad.cfg").write_text("--flagfile=nowhere.cfg\n")
    with pytest.raises(ValueError) as error:
        cli_flags.expand_flagfiles(["x", f"--flagfile={tmp_path / 'sub' / 'bad.cfg'}"])
    assert f"--flagfile=nowhere.cfg (included from {tmp_path / 'sub' / 'bad.cfg'}): no such file" in str(error.value)
    (tmp_path / "sub" / "loop.cfg").write_text("--flagfile=loop.cfg\n")
    with pytest.raises(ValueError, match="includes itself"):
        cli_flags.expand_flagfiles(["x", f"--flagfile={tmp_path / 'sub' / 'loop.cfg'}"])
