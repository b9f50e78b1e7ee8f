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
        "row": row, "protocol": "B", "seed": seed, "miou": miou, "pixel_accuracy": 0.75, "per_class_iou": {"road": 0.9},
        "params_m": 11.9, "gflops": 14.8, "steps": 1000, "train_cpu_seconds": 3600.0, "commit": "abc1234", "machine": "test", "settings": settings or {"backbone": "resnet18", "scratch_steps": 1000},
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
    _result(tmp_path, "B_hfgd", 1, 0.3301, 0)  # no wide-head seed 1: not in the table
    _result(tmp_path, "B_hfgd_wide_head", 0, 0.3012, 128)
    lines = head_comparison.head_accuracy_section(str(tmp_path))
    header, *rows = _table(lines)
    assert header[:5] == ["head", "backbone, D", "head width", "seed", "CamVid val mIoU (%)"]
    assert [(r[2], r[3], r[4]) for r in rows] == [("64", "0", "31.59"), ("128", "0", "30.12")]
    assert "Default minus D-wide head, paired by seed: +1.47 mIoU points (mean over the seeds both rows have, [0])" in "\n".join(lines)


def test_the_seed_noise_is_judged_as_the_results_page_judges_it(tmp_path):
    # docs/results.md's claim: every seed of both rows, each row's SD at least Protocol B's pooled one.
    _result(tmp_path, "B_hfgd", 0, 0.3159, 0)
    _result(tmp_path, "B_hfgd", 1, 0.3301, 0)
    _result(tmp_path, "B_hfgd_wide_head", 0, 0.3012, 128)
    _result(tmp_path, "B_sfpn", 0, 0.35, 0)
    _result(tmp_path, "B_sfpn", 1, 0.37, 0)
    _result(tmp_path, "A_sfpn", 0, 0.20, 0)  # Protocol A's spread does not enter Protocol B's
    _result(tmp_path, "A_sfpn", 1, 0.40, 0)
    text = "\n".join(head_comparison.head_accuracy_section(str(tmp_path)))
    # Pooled: sqrt((1.0082 + 2.0) / 2) = 1.2264 over 2 degrees of freedom. Mean 32.30 - 30.12 = +2.18 against
    # t(2) sqrt(1.2264^2 / 2 + 1.2264^2 / 1) = 4.303 x 1.502 = 6.46: within seed noise, a cost up to 4.28 not excluded.
    assert "(`B_hfgd` seeds [0, 1], `B_hfgd_wide_head` seeds [0])" in text
    assert "pooled over Protocol B's rows is 1.23 points over 2 degrees of freedom" in text
    assert ('the difference of the means is +2.18 points (95% bar ±6.46), verdict "no cost detected (a cost up to '
            '4.3 points is not excluded, 97.5% one-sided)"') in text


def test_a_default_head_clearly_below_the_wide_one_fails_the_claim(tmp_path):
    _result(tmp_path, "B_hfgd", 0, 0.300, 0)
    _result(tmp_path, "B_hfgd", 1, 0.302, 0)
    _result(tmp_path, "B_hfgd_wide_head", 0, 0.340, 128)
    text = "\n".join(head_comparison.head_accuracy_section(str(tmp_path)))
    # SD 0.14 over 1 degree of freedom: the bar t(1) x sqrt(0.14^2 / 2 + 0.14^2) = 12.71 x 0.17 = 2.20, less than
    # the 3.90 points below.
    assert "is 0.14 points over 1 degree of freedom" in text
    assert 'the difference of the means is -3.90 points (95% bar ±2.20), verdict "does not hold"' in text


def test_one_seed_says_the_seed_spread_is_not_measured(tmp_path):
    _result(tmp_path, "B_hfgd", 0, 0.3159, 0)
    _result(tmp_path, "B_hfgd_wide_head", 0, 0.3012, 128)
    text = "\n".join(head_comparison.head_accuracy_section(str(tmp_path)))
    assert "no Protocol B row has two seeds yet, so the seed spread is not measured" in text
    assert 'verdict "1 seed: no spread measured yet"' in text


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
        "{not json": "B_hfgd__seed0.json cannot be read as a result of scripts/run_ablations.py (Expecting",
        "[1, 2]": "B_hfgd__seed0.json is not a result of scripts/run_ablations.py (not a JSON object)",
    }.items():
        path.write_text(content)
        with pytest.raises(ValueError, match=re.escape(message)):
            head_comparison.head_accuracy_section(str(tmp_path))
    _result(tmp_path, "B_hfgd", 0, 0.3, 0, extra={"steps": True})
    with pytest.raises(ValueError, match="'steps' missing or not int"):
        head_comparison.head_accuracy_section(str(tmp_path))
    _result(tmp_path, "B_hfgd", 0, 0.3, 0, drop="miou")
    with pytest.raises(ValueError, match=r"B_hfgd__seed0.json is not a result .*\('miou' missing or not float\)"):
        head_comparison.head_accuracy_section(str(tmp_path))
    _result(tmp_path, "B_hfgd", 1, 0.3, 0, name="B_hfgd__seed0.json")  # seed 1 under seed 0's name
    with pytest.raises(ValueError, match="B_hfgd__seed0.json holds B_hfgd seed 1, so it must be named B_hfgd__seed1.json"):
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
