"""The README's two commands exist, and .ci/run runs exactly the README's test command."""

import os
import re

from tests.conftest import ROOT


def _read(*parts):
    with open(os.path.join(ROOT, *parts)) as handle:
        return handle.read()


def test_readme_has_the_demo_and_test_commands_and_ci_runs_the_test_command():
    blocks = re.findall(r"```bash\n(.*?)\n```", _read("README.md"), re.S)
    demo, tests = blocks[0].strip(), blocks[1].strip()
    assert "scripts/demo.py --flagfile=experiments/demo.cfg" in demo
    assert "pytest" in tests
    assert tests in _read(".ci", "run").splitlines()


def test_top_level_layout():
    allowed = {
        "hfgd_tf",
        "experiments",
        "scripts",
        "tests",
        "tools",
        "setup.py",
        "pyproject.toml",
        "README.md",
        "docs",
        "LICENSE",
        "constraints.txt",
        "CONTRIBUTING.md",
    }
    entries = {e for e in os.listdir(ROOT) if not e.startswith(".")}
    generated = {"demo_output", "runs", "hfgd_tf.egg-info", "build", "predictions"}
    assert entries - generated <= allowed, entries - generated - allowed


def test_gitignore_covers_every_output_folder_the_docs_write():
    ignored = {
        line.strip().strip("/") for line in _read(".gitignore").splitlines() if line and not line.startswith("#")
    }
    texts = _read("README.md") + "".join(
        _read("docs", name) for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md")
    )
    written = set(
        re.findall(
            r"--(?:output_dir|output|export_dir|tfds_data_dir|checkpoint_dir|saved_model)=([a-z_]+)(?:/|\s|$)", texts
        )
    )
    assert {"records", "tfds_data", "exports", "weights", "predictions", "runs"} <= written
    # docs/ is tracked (benchmarks write their pages there); "false"/"true" are flag values, not folders.
    assert written - {"docs", "false", "true"} <= ignored, written - ignored
