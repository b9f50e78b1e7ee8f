"""Reading and checking results, and the page: the committed page is the one the committed JSONs give."""

import json
import os
import shutil

import plan
import pytest
import report

from tests.conftest import ROOT

RESULTS = os.path.join(ROOT, "experiments", "camvid_study", "results")


def _settings_of(row):
    return plan.row_settings(row)


def _load(directory):
    return report.load_results(str(directory), plan.study_rows(), _settings_of, 11)


def test_the_committed_page_is_written_from_the_committed_results():
    import run

    from hfgd_tf.data.registry import get_dataset_spec

    results = _load(RESULTS)
    assert len(results) >= 30
    run.FLAGS(["run.py"])
    text = report.render_page(
        plan.study_rows(), results, run.settings_of, list(get_dataset_spec("camvid").info.class_names), run.page_meta()
    )
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


def _refused_once_edited(tmp_path, name, edit, message):
    """Copies the committed result `name` into `tmp_path` with `edit(result)` applied; loading it must raise
    ValueError matching `message`."""
    result = json.load(open(os.path.join(RESULTS, name)))
    edit(result)
    (tmp_path / name).write_text(json.dumps(result))
    with pytest.raises(ValueError, match=message):
        _load(tmp_path)


def test_a_result_trained_otherwise_than_its_row_is_refused(tmp_path):
    shutil.copy(os.path.join(RESULTS, "B_hfgd__seed0.json"), tmp_path)
    assert [r["row"] for r in _load(tmp_path)] == ["B_hfgd"]
    for edit, message in (
        (lambda r: r["model_config"].update(cae="ppm"), "model_config.cae: 'ppm' then, 'transformer' now"),
        # other settings than the row's
        (lambda r: r["settings"].update(crop_height=320), "settings.crop_height: 320 then, 224 now"),
    ):
        _refused_once_edited(tmp_path, "B_hfgd__seed0.json", edit, message)


def test_a_scoring_out_of_range_or_malformed_is_refused_by_name(tmp_path):
    def drop_car_everywhere(result):
        for scoring in [result, *(m for modes in result["scores"].values() for m in modes.values())]:
            scoring["per_class_iou"].pop("car")

    for edit, message in (
        (lambda r: r["scores"]["logits"]["sliding"].update(miou=35.9), r"scores.logits.sliding.miou is 35.9"),
        (lambda r: r.update(scores="x"), "'scores' must map logits / logits_high"),
        (lambda r: r["scores"].update(logits=[]), "scores.logits must map whole / sliding"),
        (lambda r: r["scores"]["logits_high"]["whole"]["per_class_iou"].pop("car"), "names other classes"),
        (lambda r: r.update(train_cpu_seconds=float("nan")), "'train_cpu_seconds' is nan"),
        (drop_car_everywhere, "per_class_iou has 10 classes, the dataset 11"),
    ):
        _refused_once_edited(tmp_path, "A2_hfgd__seed0.json", edit, message)


def test_a_new_result_must_record_every_config_it_is_compared_on(tmp_path):
    shutil.copy(os.path.join(RESULTS, "A2_hfgd__seed0.json"), tmp_path)
    assert [r["row"] for r in _load(tmp_path)] == ["A2_hfgd"]
    for edit, message in (
        (lambda r: r["data_config"].update(eval_crop_height=512), "data_config.eval_crop_height: 512 then, 360 now"),
        (lambda r: r["train_config"].update(batch_size=8), "train_config.batch_size: 8 then, 4 now"),
        (lambda r: r["optimizer_config"].update(warmup_steps=0), "optimizer_config.warmup_steps: 0 then, 50 now"),
        (lambda r: r.pop("data_config"), "data_config: missing then"),
        (lambda r: r["model_config"].pop("cae"), "model_config.cae: missing then, 'transformer' now"),
    ):
        _refused_once_edited(tmp_path, "A2_hfgd__seed0.json", edit, message)


def test_fine_tuning_results_from_two_pretrainings_are_refused(tmp_path):
    for name in ("A_hfgd__seed0.json", "A_sfpn__seed0.json"):
        shutil.copy(os.path.join(RESULTS, name), tmp_path)
    _load(tmp_path)
    result = json.load(open(tmp_path / "A_sfpn__seed0.json"))
    result["pretrained_backbone_sha256"] = "0" * 64
    (tmp_path / "A_sfpn__seed0.json").write_text(json.dumps(result))
    with pytest.raises(
        ValueError, match="The fine-tuning results from A_pretrain in .* start from different pretrainings"
    ):
        _load(tmp_path)


def test_claims_are_judged_with_holm_over_the_family():
    rows = plan.study_rows()

    def runs(row, *mious):
        return [{"row": row, "seed": seed, "miou": miou} for seed, miou in enumerate(mious)]

    # 3 seeds each, SD 0.01 (pooled over 4 degrees of freedom): +2.5 points is t = 3.06, p = 0.038, beyond the
    # claim's own 95% bar; Holm over the two claims with a bar asks p <= 0.025 of the smaller p, so it does not stand.
    grouped = report.group(
        runs("B_hfgd", 0.305, 0.315, 0.325) + runs("B_sfpn", 0.28, 0.29, 0.30) + runs("B_hfgd_no_cae", 0.315), rows
    )
    judged, pooled = report.judge_claims(rows, grouped)
    judged, pooled = judged["whole"], pooled["whole"]  # no sliding scores here: the family is the whole-frame one
    verdicts = {(claim.better, claim.worse): verdict for claim, verdict, _ in judged}
    standing = {(claim.better, claim.worse) for claim, _, stands in judged if stands}
    assert verdicts[("B_hfgd", "B_sfpn")]["outcome"] == "holds" and not standing
    assert verdicts[("B_hfgd", "B_sfpn")]["p"] == pytest.approx(0.0376, abs=5e-4)
    assert verdicts[("B_hfgd", "B_hfgd_no_cae")]["outcome"] == "within seed noise"
    assert verdicts[("PE_normalized", "PE_index")] is None and pooled["B"] == (pytest.approx(0.01), 4)
    # Twice the difference: p = 0.0019 stands after the correction too.
    grouped = report.group(
        runs("B_hfgd", 0.33, 0.34, 0.35) + runs("B_sfpn", 0.28, 0.29, 0.30) + runs("B_hfgd_no_cae", 0.34), rows
    )
    judged, _ = report.judge_claims(rows, grouped)
    assert {(claim.better, claim.worse) for claim, _, stands in judged["whole"] if stands} == {("B_hfgd", "B_sfpn")}


def test_a_difference_that_rounds_to_its_bar_is_shown_with_two_decimals():
    verdict = {"difference": -0.04207, "bar": 0.0419, "p": 0.049, "outcome": "does not hold"}
    assert report._verdict_cells(verdict, stands=False) == [
        "-4.21",
        "4.19",
        "does not hold; not after Holm's correction",
    ]
    verdict = {"difference": 0.031, "bar": 0.026, "p": 0.027, "outcome": "holds"}
    assert report._verdict_cells(verdict, stands=True) == ["+3.1", "2.6", "holds"]


def test_a_borrowed_seed_counts_for_both_rows_and_the_upsampler_gain_is_per_seed():
    rows = plan.study_rows("normalized")

    def result(row, seed, prediction, guidance):
        return {
            "row": row,
            "seed": seed,
            "miou": prediction,
            "params_m": 1.0,
            "gflops": 1.0,
            "train_cpu_seconds": 60.0,
            "train_processes": 1,
            "scores": {
                "logits": {"whole": {"miou": prediction}, "sliding": {"miou": prediction + 0.01}},
                "logits_high": {"whole": {"miou": guidance}, "sliding": {"miou": guidance}},
            },
        }

    grouped = report.group([result("PE_normalized", 0, 0.30, 0.29), result("B2_hfgd", 1, 0.32, 0.30)], rows)
    assert [r["seed"] for r in grouped["B2_hfgd"]] == [0, 1] and len(grouped["PE_normalized"]) == 1
    line = next(
        line
        for line in report._table([r for r in rows if r.protocol == "B'"], grouped)
        if line.startswith("| `B2_hfgd`")
    )
    # whole 30/32, sliding 31/33, guidance 29/30 both ways; the upsampler adds +1 and +2 points whole, +2 and +3 sliding.
    assert "| 2/3 | 31.0 ± 1.4 | 32.0 ± 1.4 | 29.5 ± 0.7 | 29.5 ± 0.7 | +1.5 ± 0.7 | +2.5 ± 0.7 |" in line


def test_the_position_encoding_rows_are_judged_with_the_spread_of_protocol_b_prime():
    rows = plan.study_rows("normalized")
    results = [
        {"row": row, "seed": seed, "miou": miou}
        for row, seed, miou in (
            ("PE_index", 0, 0.25),
            ("PE_normalized", 0, 0.30),
            ("B2_hfgd", 1, 0.31),
            ("B2_hfgd", 2, 0.32),
            ("B2_sfpn", 0, 0.33),
            ("B2_sfpn", 1, 0.34),
            ("B2_sfpn", 2, 0.35),
        )
    ]
    judged, pooled = report.judge_claims(rows, report.group(results, rows))
    verdict = next(v for claim, v, _ in judged["whole"] if claim.better == "PE_normalized")
    # B2_hfgd (with PE_normalized as its seed 0) and B2_sfpn both have SD 0.01 over 2 df: pooled 0.01 over 4 df.
    assert pooled["whole"]["B'"] == (pytest.approx(0.01), 4)
    assert verdict["bar"] == pytest.approx(2.7764 * (0.01 * 2**0.5), rel=1e-4) and verdict["outcome"] == "holds"


def test_the_upsampler_per_class_gain_is_the_seed_mean_of_prediction_minus_guidance():
    def result(seed, prediction, guidance, sliding=True):
        modes = ("whole", "sliding") if sliding else ("whole",)
        return {  # class c: no head ever scores it
            "seed": seed,
            "scores": {
                "logits": {m: {"per_class_iou": dict(zip("abc", (*prediction, 0.0)))} for m in modes},
                "logits_high": {m: {"per_class_iou": dict(zip("abc", (*guidance, 0.0)))} for m in modes},
            },
        }

    # a: 0.5-0.4 and 0.7-0.4 -> +0.2; b: 0.1-0.3 and 0.2-0.2 -> -0.1.
    added = report.upsampler_per_class([result(0, (0.5, 0.1), (0.4, 0.3)), result(1, (0.7, 0.2), (0.4, 0.2))], "ab")
    assert added["a"] == (pytest.approx(0.2), pytest.approx(0.2))
    assert added["b"] == (pytest.approx(-0.1), pytest.approx(-0.1))
    # A seed scored whole-image only leaves the row's sliding cell empty (not the other seed's mean); a run
    # without a guidance head, the row.
    partly = report.upsampler_per_class(
        [result(0, (0.5, 0.1), (0.4, 0.3)), result(1, (0.7, 0.2), (0.4, 0.2), False)], "ab"
    )
    assert partly["a"] == (pytest.approx(0.2), None)
    assert report.upsampler_per_class([{"seed": 0, "miou": 0.3}], "ab") == {}
    rows = [r for r in plan.study_rows("normalized") if r.name in ("B2_hfgd", "B2_sfpn", "PE_normalized")]
    table = report._upsampler_per_class_table(
        rows,
        {
            "B2_hfgd": [result(0, (0.5, 0.1), (0.4, 0.3))],
            "PE_normalized": [result(0, (0.5, 0.0), (0.4, 0.0))],
            "B2_sfpn": [{"seed": 0, "miou": 0.3}],
        },
        "abc",
    )
    # Class c: no head of any row scores it, no column; b: "·" where neither head of the row scores it.
    assert "| row | seeds | a | b |" in table
    assert "| `B2_hfgd` | 1 | +10.0 / +10.0 | -20.0 / -20.0 |" in table
    assert "| `PE_normalized` | 1 | +10.0 / +10.0 | · / · |" in table
    assert not any("B2_sfpn" in line for line in table)


def test_claims_are_judged_on_each_scoring_with_its_own_spread_and_holm_over_both():
    rows = plan.study_rows("normalized")

    def result(row, seed, whole, sliding=None):
        scored = {"whole": {"miou": whole}} | ({} if sliding is None else {"sliding": {"miou": sliding}})
        return {"row": row, "seed": seed, "miou": whole, "scores": {"logits": scored}}

    # Whole frame: SD 0.01 in every row; sliding: SD 0.03 in every row.
    results = [result("PE_normalized", 0, 0.30, 0.40)]  # B2_hfgd's seed 0
    results += [result("B2_hfgd", s, 0.30 + 0.01 * s, 0.40 + 0.03 * s) for s in (1, 2)]
    results += [result("B2_sfpn", s, 0.31 + 0.01 * s, 0.325 + 0.03 * s) for s in (0, 1, 2)]
    results += [{"row": "B_hfgd", "seed": 0, "miou": 0.3}, {"row": "B_sfpn", "seed": 0, "miou": 0.3}]
    judged, pooled = report.judge_claims(rows, report.group(results, rows))
    whole = next((v, stands) for claim, v, stands in judged["whole"] if claim.better == "B2_hfgd")
    sliding = next((v, stands) for claim, v, stands in judged["sliding"] if claim.better == "B2_hfgd")
    assert pooled["whole"]["B'"] == (pytest.approx(0.01), 4) and pooled["sliding"]["B'"] == (pytest.approx(0.03), 4)
    # HFGD 1 point below SemanticFPN whole-frame, 7.5 above by sliding window; bars t(4) * s * sqrt(2/3).
    assert whole[0]["difference"] == pytest.approx(-0.01) and whole[0]["outcome"] == "within seed noise"
    assert sliding[0]["difference"] == pytest.approx(0.075) and sliding[0]["outcome"] == "holds"
    assert whole[0]["bar"] == pytest.approx(2.7764 * 0.01 * (2 / 3) ** 0.5, rel=1e-4)
    assert sliding[0]["bar"] == pytest.approx(2.7764 * 0.03 * (2 / 3) ** 0.5, rel=1e-4)
    # One Holm family over both scorings: the sliding p (0.038) would stand alone (<= 0.05) but, the smaller of
    # two p's, must be <= 0.025.
    assert sliding[0]["p"] == pytest.approx(0.0376, abs=5e-4) and not sliding[1]
    # The first study's rows have no sliding score: no verdict there; the page says "-" for them.
    assert next(v for claim, v, _ in judged["sliding"] if claim.better == "B_hfgd") is None
    # A seed scored whole-frame only: no sliding verdict for the row, and the page says why.
    results[1] = result("B2_hfgd", 1, 0.31)
    grouped = report.group(results, rows)
    judged, _ = report.judge_claims(rows, grouped)
    assert next(v for claim, v, _ in judged["sliding"] if claim.better == "B2_hfgd") is None
    line = next(
        line
        for line in report._claims_section(rows, grouped)
        if line.startswith("| HFGD beats a jointly trained SemanticFPN (from scratch, chosen")
    )
    assert line.endswith("| within seed noise |  |  | not scored by sliding window on every seed |")


def test_the_reading_says_which_runs_finished_since_it_was_written():
    rows = plan.study_rows("normalized")
    finished = [{"row": "A2_sfpn", "seed": 0}, {"row": "PE_index", "seed": 0}]  # named in the plan's order
    reading = report.stamp_reading("HFGD's upsampler loses on trees.\n", finished, rows)
    assert reading.splitlines()[0] == "<!-- written with the results of: PE_index seed 0, A2_sfpn seed 0 -->"
    assert report.stamp_reading(reading, finished, rows) == reading  # a second stamp replaces the first
    section = report.reading_section(reading, finished, rows)
    assert section[:3] == ["## Reading (written by hand)", "", "Written with all 2 finished runs."]
    assert "HFGD's upsampler loses on trees." in section
    # A run finished since, one gone from the page: both named, the numbers flagged as possibly out of date.
    later = [{"row": "A2_sfpn", "seed": 0}, {"row": "A2_hfgd", "seed": 0}]
    assert report.reading_section(reading, later, rows)[2] == (
        "**Written before the latest results (finished since: A2_hfgd seed 0; no longer on the page: PE_index "
        "seed 0): its numbers may be out of date.**"
    )
    assert report.reading_section("", finished, rows) == []
    assert report.reading_section(report.stamp_reading("", finished, rows), finished, rows) == []  # nothing to read
    for unstamped in ("HFGD's upsampler loses on trees.\n", reading.replace(" -->", "", 1)):
        with pytest.raises(ValueError, match="first line must be"):
            report.reading_section(unstamped, finished, rows)


def test_a_reading_edited_while_the_study_runs_leaves_the_page_written_without_it(tmp_path, capsys):
    import run
    from absl.testing import flagsaver

    run.FLAGS(["run.py"])
    (tmp_path / "reading.md").write_text("The upsampler adds little.\n")  # no stamp
    with flagsaver.flagsaver(results_dir=str(tmp_path)):
        page = run.write_page(plan.study_rows(), _load(RESULTS))
    with open(page, encoding="utf-8") as handle:
        assert "The upsampler adds little." not in handle.read()
    assert f"{tmp_path / 'reading.md'}: the reading's first line must be" in capsys.readouterr().err
