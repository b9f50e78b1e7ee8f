"""Every experiments/*.cfg flagfile parses with scripts/train.py's flags into valid configs."""

import glob
import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

CHECK = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, "scripts")
    import common_flags
    from absl import flags
    common_flags.define_all()
    flags.DEFINE_string("output_dir", "", "demo.py's flag, also accepted here")
    FLAGS = flags.FLAGS
    for path in sys.argv[1:]:
        FLAGS.unparse_flags()
        FLAGS(["train.py", "--flagfile=" + path, "--checkpoint_dir=/tmp/unused"])
        model = common_flags.model_config_from_flags()
        data = common_flags.data_config_from_flags()
        common_flags.optimizer_config_from_flags()
        common_flags.train_config_from_flags()
        common_flags.eval_config_from_flags()
        print(path, data.dataset, model.backbone, model.num_classes)
    """
)


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
