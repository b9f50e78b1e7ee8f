"""The commands: each `scripts/<command>.py` is a wrapper over `hfgd_tf.cli.<command>.run`, installed as
`hfgd-<command>`, and `--help` prints the command's usage however it is started."""

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = sorted(name[: -len(".py")] for name in os.listdir(os.path.join(ROOT, "scripts")) if name.endswith(".py"))


def _module_of(command):
    return "hfgd_tf.cli.benchmarks" if command == "benchmark" else f"hfgd_tf.cli.{command}"


def _first_line_of_usage(command):
    """The first line of the command module's docstring, read without importing it (importing defines flags)."""
    relative = _module_of(command).replace(".", os.sep)
    path = (
        os.path.join(ROOT, relative, "__init__.py") if command == "benchmark" else os.path.join(ROOT, relative + ".py")
    )
    with open(path) as handle:
        return ast.get_docstring(ast.parse(handle.read())).splitlines()[0]


def test_every_script_only_runs_its_commands_run():
    assert SCRIPTS == sorted(
        [
            "benchmark",
            "build_tfds",
            "convert_tfrecord",
            "convert_weights",
            "demo",
            "evaluate",
            "export",
            "predict",
            "train",
        ]
    )
    for command in SCRIPTS:
        with open(os.path.join(ROOT, "scripts", f"{command}.py")) as handle:
            tree = ast.parse(handle.read())
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert [(node.module, [alias.name for alias in node.names]) for node in imports] == [
            (_module_of(command), ["run"])
        ], command
        # Nothing else runs at import: the docstring, the import and the __main__ guard.
        assert len(tree.body) == 3 and isinstance(tree.body[2], ast.If), command


@pytest.mark.slow
@pytest.mark.parametrize("started_as", ["console", "module"])
@pytest.mark.parametrize("command", ["evaluate", "benchmark"])
def test_help_prints_the_commands_usage_when_started_as_a_console_command_or_module(command, started_as):
    # A console command's __main__ is a generated wrapper without a docstring: `python -c` is the same case.
    start = (
        ["-c", f"from {_module_of(command)} import run; run()"]
        if started_as == "console"
        else ["-m", _module_of(command)]
    )
    result = subprocess.run(
        [sys.executable, *start, "--help"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # absl's --help exits with status 1 after printing the usage.
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert _first_line_of_usage(command) in result.stdout
    # The command's flags, defined in the package rather than in __main__, are listed too.
    assert ("\n  --checkpoint_dir:" if command == "evaluate" else "\n  --suite:") in result.stdout


def _installed_commands():
    try:
        distribution = importlib.metadata.distribution("hfgd_tf")
    except importlib.metadata.PackageNotFoundError:
        return None
    return {entry.name: entry.value for entry in distribution.entry_points if entry.group == "console_scripts"}


def test_each_script_is_installed_as_a_console_command():
    installed = _installed_commands()
    if installed is None:
        pytest.skip("hfgd_tf is not installed (pip install -e . installs the console commands)")
    assert installed == {f"hfgd-{command.replace('_', '-')}": f"{_module_of(command)}:run" for command in SCRIPTS}


@pytest.mark.slow
def test_an_installed_command_runs_and_names_a_missing_run_directory(tmp_path):
    if _installed_commands() is None or shutil.which("hfgd-evaluate") is None:
        pytest.skip("hfgd_tf's console commands are not installed (pip install -e .)")
    result = subprocess.run(
        ["hfgd-evaluate", f"--checkpoint_dir={tmp_path / 'missing'}"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "missing" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", SCRIPTS)
def test_a_stray_argument_stops_every_command_with_one_usage_error(command):
    # Every command refuses positional arguments the same way (exit status 2, the words named), before it reads a
    # file or trains. absl prints the key flags before a usage error: they are the command's own only when help
    # is asked for, so the error is not buried under the flag listing.
    # absl checks required flags first (its own clear error): give them, with values nothing reads.
    required = {
        "build_tfds": ["--dataset=camvid", "--manual_dir=nowhere"],
        "convert_tfrecord": ["--dataset=camvid", "--output_dir=nowhere"],
        "convert_weights": ["--source=nowhere", "--format=timm", "--backbone=resnet50", "--output=nowhere"],
    }.get(command, [])
    result = subprocess.run(
        [sys.executable, f"scripts/{command}.py", *required, "stray"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Unexpected arguments: ['stray']" in result.stderr and "Traceback" not in result.stderr
    assert not re.search(r"^\s+--\w+:", result.stderr + result.stdout, re.MULTILINE), result.stderr[-2000:]
