"""Reading and checking results, and the page: the committed page is the one the committed JSONs give."""

import json
import os
import shutil

import pytest

import plan
import report
from tests.conftest import ROOT

RESULTS = os.path.join(ROOT, "experiments", "camvid_study", "results")


def _settings_of(row):
    return plan.StudySettings()


def _load(directory):
    return report.load_results(str(directory), plan.study_rows(), _settings_of, 11)


def test_the_committed_page_is_written_from_the_committed_results():
    from hfgd_tf.data.registry import get_dataset_spec

    import run

    results = _load(RESULTS)
    assert len(results) >= 30
    run.FLAGS(["run.py"])
    text = report.render_page(plan.study_rows(), results, run.settings_of,
                              list(get_dataset_spec("camvid").info.class_names), run.page_meta())
    with open(os.path.join(ROOT, "docs", "results.md"), encoding="utf-8") as handle:
        assert handle.read() == text


def test_a_half_written_or_misnamed_result_is_refused_by_name(tmp_path):
    (tmp_path / "B_hfgd__seed0.json").write_text('{"row": "B_hfgd", "seed"')
    with pytest.raises(ValueError, match="B_hfgd__seed0.json cannot be read as a study result"):
        _load(tmp_path)
    result = json.load(open(os.path.join(RESULTS, "B_hfgd__seed0.json")))
    (tmp_path / "B_hfgd__seed0.json").unlink()
    (tmp_path / "B_hfgd__seed1.json").write_text(json.dumps(result))
    with pytest.raises(ValueError, match="holds B_hfgd seed 0, so it must be named B_hfgd__seed0.json"):
        _load(tmp_path)
    (tmp_path / "B_hfgd__seed1.json").unlink()
    (tmp_path / "B_hfgd__seed0.json").write_text(json.dumps({**result, "miou": 31.6}))  # a percentage
    with pytest.raises(ValueError, match="miou is 31.6, not a number in"):
        _load(tmp_path)


def test_a_result_trained_otherwise_than_its_row_is_refused(tmp_path):
    shutil.copy(os.path.join(RESULTS, "B_hfgd__seed0.json"), tmp_path)
    assert [r["row"] for r in _load(tmp_path)] == ["B_hfgd"]
    result = json.load(open(tmp_path / "B_hfgd__seed0.json"))
    result["model_config"]["cae"] = "ppm"
    (tmp_path / "B_hfgd__seed0.json").write_text(json.dumps(result))
    with pytest.raises(ValueError, match="model_config.cae: 'ppm' then, 'transformer' now"):
        _load(tmp_path)
    result["model_config"]["cae"] = "transformer"
    result["settings"]["crop_height"] = 320  # other settings than the row's
    (tmp_path / "B_hfgd__seed0.json").write_text(json.dumps(result))
    with pytest.raises(ValueError, match="settings.crop_height: 320 then, 224 now"):
        _load(tmp_path)


def test_fine_tuning_results_from_two_pretrainings_are_refused(tmp_path):
    for name in ("A_hfgd__seed0.json", "A_sfpn__seed0.json"):
        shutil.copy(os.path.join(RESULTS, name), tmp_path)
    _load(tmp_path)
    result = json.load(open(tmp_path / "A_sfpn__seed0.json"))
    result["pretrained_backbone_sha256"] = "0" * 64
    (tmp_path / "A_sfpn__seed0.json").write_text(json.dumps(result))
    with pytest.raises(ValueError, match="Protocol A's fine-tuning results .* start from different pretrainings"):
        _load(tmp_path)


def test_claims_are_judged_with_holm_over_the_family():
    grouped = report.group(_load(RESULTS))
    judged, pooled = report.judge_claims(plan.study_rows(), grouped)
    verdicts = {claim.better + " vs " + claim.worse: (verdict["outcome"], stands) for claim, verdict, stands in judged}
    # Beyond its own bar, but not after Holm's correction over the 15 claims.
    assert verdicts["A_hfgd vs A_hfgd_unshared_kernels"] == ("does not hold", False)
    assert verdicts["A_hfgd vs A_sfpn"] == ("does not hold", True)
    assert pooled["A"][1] == 10 and pooled["B"][1] == 4
