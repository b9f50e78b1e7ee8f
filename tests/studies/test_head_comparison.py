"""The head-accuracy section of docs/performance.md, from the CamVid study's result JSONs."""

import json
import os
import re

import pytest

from hfgd_tf.studies import head_comparison

HEADING = head_comparison.HEAD_ACCURACY_HEADING


def _result(directory, row, seed, miou, width, settings=None, backbone="resnet18", name=None, drop=None, extra=None):
    """A result file as scripts/run_ablations.py writes it (the fields the section reads)."""
    result = {
        "row": row, "seed": seed, "miou": miou, "pixel_accuracy": 0.75, "params_m": 11.9, "gflops": 14.8,
        "steps": 1000, "commit": "abc1234", "settings": settings or {"backbone": "resnet18", "scratch_steps": 1000},
        "model_config": {"backbone": backbone, "num_channels": 128, "upsampler_num_channels": width, "cae": "transformer"},
    }
    result.pop(drop, None)
    result.update(extra or {})
    with open(os.path.join(directory, name or f"{row}__seed{seed}.json"), "w") as handle:
        json.dump(result, handle)


def _table(lines):
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("| ") and "---" not in line]


def test_the_section_compares_the_seeds_both_rows_have(tmp_path):
    _result(tmp_path, "B_hfgd", 0, 0.3159, 0)
    _result(tmp_path, "B_hfgd", 1, 0.3300, 0)  # no wide-head seed 1: not compared
    _result(tmp_path, "B_hfgd_wide_head", 0, 0.3012, 128)
    lines = head_comparison.head_accuracy_section(str(tmp_path))
    header, *rows = _table(lines)
    assert header[:5] == ["head", "backbone, D", "head width", "seed", "CamVid val mIoU (%)"]
    assert [(r[2], r[3], r[4]) for r in rows] == [("64", "0", "31.59"), ("128", "0", "30.12")]
    text = "\n".join(lines)
    assert "Default minus D-wide head: +1.47 mIoU points (mean over seeds [0])" in text
    # stdev(31.59, 33.00) = 1.00; one seed compared: sqrt(2) x 1.00 = 1.41.
    assert "`B_hfgd`'s seeds [0, 1] have a sample standard deviation of 1.00 points" in text
    assert "varies by about sqrt(2/1) x that = 1.41 points, and only a difference beyond twice that (2.82 points" in text


def test_one_seed_says_the_seed_spread_is_not_measured(tmp_path):
    _result(tmp_path, "B_hfgd", 0, 0.3159, 0)
    _result(tmp_path, "B_hfgd_wide_head", 0, 0.3012, 128)
    text = "\n".join(head_comparison.head_accuracy_section(str(tmp_path)))
    assert "`B_hfgd` has one seed: how much the seed alone moves mIoU is not measured here yet" in text


@pytest.mark.parametrize(
    "wide, message",
    [
        (None, "Not measured yet: no seed finished for both rows"),
        (dict(settings={"backbone": "resnet50", "scratch_steps": 1000}),
         "Not comparable: seed 0 of the two rows: they ran with different study settings"),
        (dict(backbone="resnet50"), "their models differ in more than the head width: ['backbone']"),
        (dict(width=0), "the wide row's head is not D wide"),
        (dict(extra={"optimizer_config": {"initial_lr": 0.1}}), "their optimizer_config differ"),
    ],
)
def test_the_section_says_when_there_is_nothing_to_compare(tmp_path, wide, message):
    _result(tmp_path, "B_hfgd", 0, 0.3159, 0)
    if wide is not None:
        _result(tmp_path, "B_hfgd_wide_head", 0, 0.3012, **{"width": 128, **wide})
    lines = head_comparison.head_accuracy_section(str(tmp_path))
    assert message in lines[-1] and not _table(lines)


def test_broken_results_are_named(tmp_path):
    path = tmp_path / "B_hfgd__seed0.json"
    for content, message in {
        "{not json": "B_hfgd__seed0.json: not a result of scripts/run_ablations.py (Expecting",
        "[1, 2]": "B_hfgd__seed0.json: not a result of scripts/run_ablations.py (not a JSON object)",
    }.items():
        path.write_text(content)
        with pytest.raises(ValueError, match=re.escape(message)):
            head_comparison.head_accuracy_section(str(tmp_path))
    _result(tmp_path, "B_hfgd", 0, 0.3, 0, extra={"steps": True})
    with pytest.raises(ValueError, match="'steps' missing or not int"):
        head_comparison.head_accuracy_section(str(tmp_path))
    _result(tmp_path, "B_hfgd", 0, 0.3, 0, drop="miou")
    with pytest.raises(ValueError, match=r"B_hfgd__seed0.json: .*\('miou' missing or not float\)"):
        head_comparison.head_accuracy_section(str(tmp_path))
    _result(tmp_path, "B_hfgd", 1, 0.3, 0, name="B_hfgd__seed0.json")  # seed 1 under seed 0's name
    with pytest.raises(ValueError, match="its JSON is row 'B_hfgd' seed 1, not what the file name says"):
        head_comparison.head_accuracy_section(str(tmp_path))


@pytest.mark.parametrize(
    "page",
    [
        "# Performance\n\n## Targets\n\nkept\n",  # no section yet: appended
        f"# Performance\n\n## Targets\n\nkept\n\n{HEADING}\n\nold text\n",  # last
        f"# Performance\n\n{HEADING}\n\nold text\n\n## Targets\n\nkept\n",  # in the middle (a full run's page)
    ],
)
def test_rewrite_replaces_only_the_section(tmp_path, page):
    _result(tmp_path, "B_hfgd", 0, 0.3159, 0)
    _result(tmp_path, "B_hfgd_wide_head", 0, 0.3012, 128)
    path = tmp_path / "performance.md"
    path.write_text(page)
    for _ in range(2):  # a second rewrite replaces the section instead of adding one
        head_comparison.rewrite_section(str(path), str(tmp_path))
    text = path.read_text()
    assert text.count(HEADING) == 1 and "old text" not in text and "+1.47 mIoU points" in text
    assert text.startswith("# Performance\n\n") and "## Targets\n\nkept\n" in text
    assert "\n\n\n" not in text
    with pytest.raises(ValueError, match="does not exist"):
        head_comparison.rewrite_section(str(tmp_path / "none.md"), str(tmp_path))
