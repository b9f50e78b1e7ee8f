"""The CamVid study's design: splits, configs and the results page (no training here)."""

import dataclasses
import json
import math
import pathlib

import pytest

from hfgd_tf.studies import camvid_ablations as study

CLASSES = ["sky", "road"]


def _stems():
    return [f"0001TP_{i:06d}" for i in range(8)] + [f"0006R0_f{i:05d}" for i in range(4)] + [
        f"0016E5_{i:05d}" for i in range(12)
    ]


def test_holdback_takes_a_block_of_every_sequence_away_from_val():
    pretrain, finetune = study.holdback_split(list(reversed(_stems())), 0.25)
    assert finetune == ["0001TP_000006", "0001TP_000007", "0006R0_f00003", "0016E5_00009", "0016E5_00010", "0016E5_00011"]
    assert sorted(pretrain + finetune) == sorted(_stems()) and not set(pretrain) & set(finetune)
    # Val frames near the end of 0016E5: its first block is held back instead.
    pretrain, finetune = study.holdback_split(_stems(), 0.25, avoid=["0016E5_00010", "0016E5_00012"])
    assert finetune == ["0001TP_000006", "0001TP_000007", "0006R0_f00003", "0016E5_00000", "0016E5_00001", "0016E5_00002"]
    assert sorted(pretrain + finetune) == sorted(_stems())
    with pytest.raises(ValueError, match="not <sequence>_<frame number>"):
        study.holdback_split(["0016E5"], 0.25)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(study.StudySettings)])
def test_settings_key_changes_with_any_setting(field):
    settings = study.StudySettings()
    assert study.settings_key(settings) == study.settings_key(study.StudySettings())
    value = getattr(settings, field)
    other = value + "_other" if isinstance(value, str) else value / 2 if isinstance(value, float) else value * 2
    assert study.settings_key(settings) != study.settings_key(dataclasses.replace(settings, **{field: other}))


@pytest.mark.parametrize("claim", study.CLAIMS, ids=lambda claim: f"{claim.better}-vs-{claim.worse}")
def test_the_two_rows_of_a_claim_differ_only_in_what_their_rows_override(claim):
    """Two compared runs at one seed: every resolved config field that differs is one the rows set on purpose."""
    rows = {row.name: row for row in study.study_rows()}
    better, worse = rows[claim.better], rows[claim.worse]
    assert better.protocol == worse.protocol == claim.protocol

    def configs(row):
        backbone = "pretrained.weights.h5" if row.stage == "finetune" else ""
        return [dataclasses.asdict(c) for c in study.run_configs(row, 0, study.StudySettings(), "r", "run", 11, backbone)]

    differing = {key for a, b in zip(configs(better), configs(worse)) for key in a if a[key] != b[key]}
    intended = {*better.model, *worse.model, *better.train, *worse.train}
    assert differing and differing <= intended, differing - intended


def test_the_page_says_which_end_of_each_real_sequence_is_held_back(camvid_dir):
    """The page's sentence on the held-back blocks is a literal: checked here against the real CamVid frames."""
    from hfgd_tf.data.registry import get_dataset_spec

    spec = get_dataset_spec("camvid")
    train = [s.name for s in spec.list_samples(camvid_dir, "train")]
    val = [s.name for s in spec.list_samples(camvid_dir, "val")]
    _, finetune = study.holdback_split(train, study.StudySettings().holdback_fraction, avoid=val)
    for sequence, end in (("0001TP", "last"), ("0006R0", "last"), ("0016E5", "first")):
        frames = sorted(name for name in train if name.startswith(sequence))
        held = sorted(name for name in finetune if name.startswith(sequence))
        assert held == (frames[: len(held)] if end == "first" else frames[-len(held):]), sequence
    page = study.render_report(study.study_rows(), study.StudySettings(), [], {
        "command": "c", "machine": "m", "source": "docs/results", "commits": [], "missing": []}, CLASSES)
    assert "the first frames of 0016E5, the last of the other two" in page


def test_rows_are_unique_and_cover_the_issue():
    rows = study.study_rows()
    names = [row.name for row in rows]
    assert len(names) == len(set(names)) and rows[0].stage == "pretrain"
    assert all(len(row.seeds) >= 3 for row in rows if row.stage == "finetune")
    assert len({r.name: r for r in rows}["B_sfpn"].seeds) >= 2 and len({r.name: r for r in rows}["B_hfgd"].seeds) >= 2
    by_name = {row.name: row for row in rows}
    # Protocol A: the issue's fine-tuned rows; Protocol B: its ablations from scratch, with what each changes.
    assert {"A_frozen", "A_sfpn", "A_hfgd", "A_hfgd_no_stop_gradients", "A_hfgd_unshared_kernels"} <= set(names)
    assert by_name["B_hfgd_no_cae"].model == {"cae": "none"}
    assert by_name["B_hfgd_no_stop_gradients"].model == study.NO_STOP_GRADIENTS
    assert by_name["B_hfgd_unshared_kernels"].model == {"share_class_kernels": False}
    assert by_name["B_high_level_only"].model == {"upsampler": "none"}
    assert by_name["B_hfgd_os8"].model == {"output_stride": 8} and by_name["B_hfgd_os2"].model == {"output_stride": 2}
    assert by_name["B_hfgd"].model == {} and by_name["B_sfpn"].model == {"upsampler": "sfpn"}
    assert by_name["B_deeplabv3plus"].model == {"upsampler": "deeplabv3plus"}
    assert all(row.stage == "scratch" for row in rows if row.protocol == "B")
    for claim in study.CLAIMS:
        assert claim.better in names and claim.worse in names and claim.kind in ("better", "not_worse")


def test_run_configs_follow_the_protocols(tmp_path):
    settings = study.StudySettings(scratch_steps=500, finetune_steps=250, epoch_steps=250)
    rows = {row.name: row for row in study.study_rows()}
    model, data, optimizer, train, _ = study.run_configs(rows["A_sfpn"], 2, settings, "rec", str(tmp_path), 11, "bb.weights.h5")
    assert (model.upsampler, model.backbone_weights_path, data.train_split, data.seed, train.seed) == (
        "sfpn", "bb.weights.h5", study.FINETUNE_SPLIT, 2, 2)
    assert optimizer.backbone_lr_multiplier == 0.1 and optimizer.warmup_steps == settings.finetune_warmup_steps
    assert train.total_steps == settings.finetune_steps and not train.evaluate_every_epoch
    model, data, optimizer, train, _ = study.run_configs(rows["B_hfgd_wide_head"], 0, settings, "rec", str(tmp_path), 11)
    assert model.upsampler_width == settings.num_channels and model.backbone_weights_path == ""
    assert (data.train_split, optimizer.backbone_lr_multiplier, train.total_steps) == ("train", 1.0, 500)
    model = study.run_configs(rows["B_hfgd"], 0, settings, "rec", str(tmp_path), 11)[0]
    assert model.upsampler_width == settings.num_channels // 2
    assert study.run_configs(rows["B_deeplabv3plus"], 0, settings, "rec", str(tmp_path), 11)[0].backbone_output_stride == 16
    assert study.run_configs(rows["A_frozen"], 0, settings, "rec", str(tmp_path), 11)[3].freeze_backbone
    with pytest.raises(ValueError, match="scratch_steps=300 must be a multiple of StudySettings.epoch_steps=250"):
        dataclasses.replace(settings, scratch_steps=300)


def _result(row, seed, miou, **extra):
    return {"row": row, "protocol": row.split("_")[0], "seed": seed, "miou": miou, "steps": 1000, "train_seconds": 7200.0, "train_cpu_seconds": 120.0,
            "eval_seconds": 6.0, "eval_cpu_seconds": 12.0, "train_processes": 1, "params_m": 1.0, "gflops": 2.0,
            "per_class_iou": {"sky": miou + 0.1, "road": miou - 0.1}, "commit": "abc1234", "train_config": {}, "machine": "test CPU", **extra}


def test_students_t_gives_the_bar_for_the_degrees_of_freedom():
    assert study.student_t_tail(2, 1) == pytest.approx(1 - 2 / 3.141592653589793 * 1.1071487177940904)  # atan 2
    assert study.student_t_tail(2, 2) == pytest.approx(1 - 2 / 6 ** 0.5)
    assert study.student_t_tail(2, 10_000) == pytest.approx(0.0455, abs=1e-3)  # the normal's 4.55%
    # Far out, where the p-values of Holm's correction can fall: 1 - 2 atan(x) / pi, 1 - x / sqrt(2 + x^2).
    assert study.student_t_tail(1000, 1) == pytest.approx(1 - 2 / 3.141592653589793 * math.atan(1000), rel=1e-6)
    assert study.student_t_tail(3000, 2) == pytest.approx(1 - 3000 / math.sqrt(2 + 3000 ** 2), rel=1e-4)
    assert study.student_t_tail(0, 3) == pytest.approx(1.0)
    # Published two-sided 95% critical values.
    for degrees, value in ((1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (10_000, 1.960)):
        assert study.t_critical(degrees) == pytest.approx(value, abs=1e-3), degrees


def test_holm_keeps_the_verdicts_that_survive_judging_every_claim_at_once():
    # The textbook case: sorted 0.005 <= 0.05/4, 0.01 <= 0.05/3, 0.03 > 0.05/2: two rejected, then it stops (0.04 too).
    assert study.holm_rejections([0.01, 0.04, 0.03, 0.005]) == 2
    assert study.holm_rejections([0.001, 0.002]) == 2 and study.holm_rejections([0.03, 0.04]) == 0
    assert study.holm_rejections([]) == 0
    # Step-down, not Bonferroni: 0.04 > 0.05 / 2 would fail Bonferroni, but Holm compares it with 0.05 / 1.
    assert study.holm_rejections([0.04, 0.02]) == 2
    # A difference exactly at a claim's 95% bar has p = 5%.
    results = [_result("B_sfpn", s, 0.30 + s / 100) for s in range(3)] + [_result("B_hfgd", s, 0.30 + s / 100) for s in range(3)]
    grouped = study.aggregate(results)
    claim = study.claim_between("B_hfgd", "B_sfpn")
    bar = study.claim_verdict(claim, grouped)[2]
    grouped["B_hfgd"]["miou"] = [m + bar for m in grouped["B_hfgd"]["miou"]]
    assert study.claim_p_value(claim, grouped) == pytest.approx(0.05, abs=1e-6)
    assert study.claim_p_value(claim._replace(worse="B_hfgd_os2"), grouped) is None  # not run
    # Every seed alike (no spread at all): a difference is beyond any bar, no difference is nothing.
    alike = study.aggregate([_result("B_sfpn", s, 0.30) for s in range(3)] + [_result("B_hfgd", s, 0.31) for s in range(3)])
    assert study.claim_p_value(claim, alike) == 0.0 and study.claim_verdict(claim, alike)[1] == "holds"
    alike["B_hfgd"]["miou"] = [0.30] * 3
    assert study.claim_p_value(claim, alike) == 1.0


def test_the_page_says_which_verdicts_stand_when_every_claim_is_judged_at_once():
    rows = [row for row in study.study_rows() if row.protocol == "B"]
    # SD 1 point over 4 degrees of freedom (two three-seed rows), bar 2.8 x 0.82 = 2.3 points between them and
    # 2.8 x 1.15 = 3.2 between a one-seed row and B_hfgd: B_sfpn at +10 (p ~ 1e-4) stands under Holm over the
    # 8 claims with a bar (0.05 / 8); the CAE at +3.5 (p ~ 0.04 > 0.05 / 7) passes its own bar only.
    results = [_result("B_sfpn", s, 0.30 + s / 100) for s in range(3)] + [_result("B_hfgd", s, 0.40 + s / 100) for s in range(3)]
    results += [_result("B_hfgd_no_cae", 0, 0.375)] + [_result(name, 0, 0.41) for name in (
        "B_hfgd_no_stop_gradients", "B_hfgd_unshared_kernels", "B_high_level_only", "B_hfgd_os8", "B_hfgd_os2",
        "B_hfgd_wide_head")]
    meta = {"command": "c", "machine": "m", "source": "docs/results", "commits": [], "missing": []}
    page = study.render_report(rows, study.StudySettings(), results, meta, CLASSES)
    assert ("Judged as one family (Holm's step-down correction over the 8 claims with a bar: the chance that any "
            "verdict comes from seed noise alone is then at most 5%, under the same assumption of alike seed "
            "spreads), 1 of the 2 verdicts stands: \"HFGD beats a jointly trained SemanticFPN (from scratch)\" holds, "
            "+10.0. The other (\"The CAE helps\" holds, +3.5) passes its own claim's bar, a 5% test, but not the "
            "correction: if no row truly differed, about 0.4 such verdicts would come by chance alone among 8 "
            "claims.") in page
    # The claims table marks the verdict Holm drops in its own cell, and only that one.
    cae_line = next(line for line in page.splitlines() if line.startswith("| The CAE helps |"))
    assert cae_line.endswith("| +3.5 | 3.2 | holds; not after Holm's correction over all claims |")
    assert page.count(study.HOLM_CAVEAT) == 1  # the Protocol B reading waits for B_deeplabv3plus
    headline = study.render_headline(study.study_rows(), results)
    assert "over the 8 claims on docs/results.md with a bar" in headline
    assert "1 of the 2 verdicts stands: \"HFGD beats a jointly trained SemanticFPN (from scratch)\" holds, +10.0." in headline
    # No decided verdict: nothing to correct, no sentence.
    within = [{**r, "miou": 0.41 if r["row"] not in ("B_sfpn", "B_hfgd") else 0.40 + r["seed"] / 100} for r in results]
    assert "Judged as one family" not in study.render_report(rows, study.StudySettings(), within, meta, CLASSES)


def test_the_readings_say_which_decided_verdicts_holm_drops():
    # Protocol B: B_sfpn at +10 stands under Holm, the CAE at +3.5 passes its own bar only (as above).
    rows = [row for row in study.study_rows() if row.protocol == "B"]
    results = [_result("B_sfpn", s, 0.30 + s / 100) for s in range(3)] + [_result("B_hfgd", s, 0.40 + s / 100) for s in range(3)]
    results += [_result("B_hfgd_no_cae", 0, 0.375)] + [_result(name, 0, 0.41) for name in (
        "B_hfgd_no_stop_gradients", "B_hfgd_unshared_kernels", "B_high_level_only", "B_hfgd_os8", "B_hfgd_os2",
        "B_hfgd_wide_head", "B_deeplabv3plus")]
    reading = "\n".join(study.protocol_b_reading(rows, study.aggregate(results), study.StudySettings()))
    assert "SemanticFPN (31.0 ± 1.0 mIoU at 2.0 GFLOPs): +10.0 (above, beyond the 95% bar);" in reading
    assert "the CAE +3.5 (helps; not after Holm's correction over all claims); the stop-gradients +0.0 (within" in reading
    assert reading.count(study.HOLM_CAVEAT) == 1
    # Protocol A: the shared kernels at -2.0 pass their own bar (1.8 points) but not Holm's over the 7 claims;
    # the stop-gradients at -3.0 stand.
    base = {"A_pretrain": 0.35, "A_frozen": 0.28, "A_hfgd_unshared_kernels": 0.26}
    reading = _reading({**base, "A_sfpn": 0.33, "A_hfgd_no_stop_gradients": 0.31, "A_hfgd": 0.28})
    assert "`A_hfgd_unshared_kernels` -2.0 (does not hold; not after Holm's correction over all claims)." in reading
    assert "(`A_hfgd` vs `A_hfgd_no_stop_gradients`): -3.0 (does not hold)." in reading
    assert ("For it: Shared class kernels help (pretrained backbone) +2.0 (holds; not after Holm's correction over "
            "all claims). Against it: HFGD beats") in reading
    # A comparison no claim makes, or an undecided one, gets no caveat.
    assert study.claim_for("B_hfgd", "B_deeplabv3plus") is None
    assert study.holm_caveat(study.claim_for("B_hfgd", "B_deeplabv3plus"), "holds", set()) == ""
    assert study.holm_caveat(study.claim_for("B_hfgd", "B_sfpn"), "within seed noise", set()) == ""
    assert study.holm_caveat(study.claim_for("B_hfgd_os2", "B_hfgd"), "holds", set()) == study.HOLM_CAVEAT
    os2_claim = study.claim_between("B_hfgd_os2", "B_hfgd")
    assert study.claim_for("B_hfgd", "B_hfgd_os2") == os2_claim  # either way round
    assert study.holm_caveat(study.claim_for("B_hfgd", "B_hfgd_os2"), "holds", {os2_claim}) == ""


def test_verdicts_need_the_95_percent_bar_and_a_measured_spread():
    # Own SDs 1.41 and 0.71 points over 2 degrees of freedom: bar 4.303 x 1.12 = 4.8 points.
    assert study.verdict_bar([0.50, 0.52], [0.40, 0.41]) == pytest.approx(4.3027 * 0.000125 ** 0.5, rel=1e-4)
    assert study.verdict([0.50, 0.52], [0.40, 0.41])[1] == "holds"
    assert study.verdict([0.40, 0.41], [0.50, 0.52])[1] == "does not hold"
    assert study.verdict([0.50, 0.56], [0.49, 0.50])[1] == "within seed noise"  # 3.5 points < 4.303 x 3.04
    # More than two standard errors apart (2 x 2.06 = 4.1 points), not t(2) = 4.3 of them (8.9 points).
    assert study.verdict([0.50, 0.545], [0.475, 0.485]) == (pytest.approx(0.0425), "within seed noise")
    # One seed: no verdict without a pooled spread. With one of 0.5 points, SE = 0.71 points: over 2 degrees of
    # freedom the bar is 3.0 points, over 1000 it is 1.4.
    assert study.verdict([0.52], [0.50])[1] == study.NO_SPREAD
    assert study.verdict_bar([0.52], [0.50]) is None
    assert study.verdict([0.52], [0.50], pooled=(0.005, 2))[1] == "within seed noise"
    assert study.verdict([0.52], [0.50], pooled=(0.005, 1000))[1] == "holds"
    assert study.verdict([0.51], [0.50], pooled=(0.005, 1000))[1] == "within seed noise"
    # Seeds that happen to agree do not narrow the bar below the pooled spread (t(4) x 0.82 = 2.3 points).
    assert study.verdict([0.50, 0.50, 0.50], [0.4999] * 3)[1] == "holds"  # no pooled spread: their own, zero
    assert study.verdict([0.50, 0.50, 0.50], [0.4999] * 3, pooled=(0.01, 4))[1] == "within seed noise"
    assert study.verdict([0.52, 0.52, 0.52], [0.50] * 3, pooled=(0.01, 4))[1] == "within seed noise"
    assert study.verdict([0.525, 0.525, 0.525], [0.50] * 3, pooled=(0.01, 4))[1] == "holds"


def test_a_not_worse_claim_is_a_test_for_a_cost_and_names_the_cost_not_excluded():
    claim = next(claim for claim in study.CLAIMS if claim.kind == "not_worse")
    assert (claim.better, claim.worse) == ("B_hfgd", "B_hfgd_wide_head")
    # Pooled Protocol B SD 1 point over 2 degrees of freedom: the bar between two one-seed rows is 6.1 points.
    for better, outcome in (
        (0.51, "no cost detected (a cost up to 5.1 points is not excluded, 97.5% one-sided)"),
        (0.49, "no cost detected (a cost up to 7.1 points is not excluded, 97.5% one-sided)"),
        (0.57, "holds"),
        (0.43, "does not hold"),
    ):
        results = [_result("B_sfpn", seed, 0.30 + seed / 100) for seed in range(3)]
        results += [_result("B_hfgd", 0, better), _result("B_hfgd_wide_head", 0, 0.50)]
        difference, verdict, bar = study.claim_verdict(claim, study.aggregate(results))
        assert verdict == outcome and bar == pytest.approx(4.3027 * 0.01 * 2 ** 0.5, rel=1e-4), better
    assert study.claim_verdict(claim, study.aggregate([_result("B_hfgd", 0, 0.5)])) is None


def test_the_pooled_seed_sd_weighs_rows_by_their_degrees_of_freedom():
    results = [_result("B_sfpn", 0, 0.40), _result("B_sfpn", 1, 0.42), _result("B_hfgd_os8", 0, 0.30)]
    results += [_result("B_hfgd", s, 0.30 + s / 100) for s in range(3)]
    results += [_result("A_sfpn", 0, 0.1), _result("A_sfpn", 1, 0.9)]
    # (1 x 0.0002 + 2 x 0.0001) / 3; the single-seed row and Protocol A's rows stay out of it.
    assert study.pooled_seed_sd(study.aggregate(results), "B") == (pytest.approx((0.0004 / 3) ** 0.5), 3)
    assert study.pooled_seed_sd(study.aggregate(results[2:3]), "B") == (None, 0)


def test_results_must_be_planned_runs():
    rows = study.study_rows()
    study.check_results(rows, [("docs/results/B_hfgd__seed1.json", _result("B_hfgd", 1, 0.5))])
    with pytest.raises(ValueError, match="B_hfgd_os8 seed 1 is not a run of the study"):
        study.check_results(rows, [("r/B_hfgd_os8__seed1.json", _result("B_hfgd_os8", 1, 0.5))])
    with pytest.raises(ValueError, match="B_renamed seed 0 is not a run of the study"):
        study.check_results(rows, [("r/B_renamed__seed0.json", _result("B_renamed", 0, 0.5))])
    # A protocol edited by hand would move the run's spread into the other protocol's pooled SD.
    with pytest.raises(ValueError, match="r/B_sfpn__seed0.json: B_sfpn is a Protocol B row, but the file says protocol 'A'"):
        study.check_results(rows, [("r/B_sfpn__seed0.json", _result("B_sfpn", 0, 0.5, protocol="A"))])
    # Every run evaluates the same classes: one that lost a class would average per-class IoU over fewer seeds.
    fewer = _result("B_hfgd", 1, 0.5, per_class_iou={"sky": 0.5})
    with pytest.raises(ValueError, match=r"r/B_hfgd__seed1.json: its per_class_iou names the classes \['sky'\], "
                                         r"r/B_sfpn__seed0.json names \['road', 'sky'\]"):
        study.check_results(rows, [("r/B_sfpn__seed0.json", _result("B_sfpn", 0, 0.5)), ("r/B_hfgd__seed1.json", fewer)])


def test_a_result_is_read_only_under_its_own_name_and_with_every_field(tmp_path):
    committed = sorted((pathlib.Path(__file__).parents[2] / "docs" / "results").glob("*.json"))
    assert committed and all(study.read_result(str(path))["row"] for path in committed)
    result = json.loads(committed[0].read_text())
    own_name = tmp_path / f"{result['row']}__seed{result['seed']}.json"
    own_name.write_text(json.dumps(result))
    assert study.read_result(str(own_name)) == result
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps(result))
    with pytest.raises(ValueError, match=f"copy.json holds {result['row']} seed {result['seed']}, so it must be named {own_name.name}"):
        study.read_result(str(copy))
    for key, broken in (("train_cpu_seconds", None), ("seed", True), ("per_class_iou", [0.5])):
        own_name.write_text(json.dumps({**result, key: broken}))
        with pytest.raises(ValueError, match=f"{own_name.name} is not a result of scripts/run_ablations.py \\('{key}' missing"):
            study.read_result(str(own_name))
    own_name.write_text(json.dumps({**result, "miou": 1}))  # an int is a number
    assert study.read_result(str(own_name))["miou"] == 1
    # Values no run produces: a percentage typed by hand, NaN, a text IoU, no steps.
    first_class = next(iter(result["per_class_iou"]))
    for change, named in (({"miou": 36.4}, r"miou is 36.4, not a number in \[0, 1\]"),
                          ({"pixel_accuracy": float("nan")}, r"pixel_accuracy is nan, not a number in \[0, 1\]"),
                          ({"per_class_iou": {**result["per_class_iou"], first_class: "0.5"}},
                           rf"per_class_iou\['{first_class}'\] is '0.5', not a number in \[0, 1\]"),
                          ({"steps": 0}, r"steps is 0, not a number in \[1, inf\]"),
                          ({"train_cpu_seconds": -1.0}, r"train_cpu_seconds is -1.0, not a number in \[0, inf\]")):
        own_name.write_text(json.dumps({**result, **change}))
        with pytest.raises(ValueError, match=f"{own_name.name} is not a result of scripts/run_ablations.py \\({named}\\)"):
            study.read_result(str(own_name))


def test_report_numbers_come_from_the_results_and_an_incomplete_study_says_so():
    rows = [r for r in study.study_rows() if r.name in ("B_sfpn", "B_hfgd", "B_hfgd_os2")]
    results = [_result("B_sfpn", 0, 0.40), _result("B_sfpn", 1, 0.42), _result("B_hfgd", 0, 0.50, untimed_steps=49)]
    meta = {"command": "python scripts/run_ablations.py", "machine": "test CPU", "source": "docs/results", "commits": ["abc1234"],
            "missing": ["B_hfgd seed 1", "B_hfgd_os2 seed 0"]}
    page = study.render_report(rows, study.StudySettings(), results, meta, CLASSES)
    assert "**Incomplete: 3 of 7 runs finished.**" in page
    assert "| `B_sfpn` | SemanticFPN (joint) | 2/3 (0,1) | 41.0 ± 1.4 |" in page
    assert "| `B_hfgd` | HFGD full (OS4) | 1/3 (0) | 50.0 |" in page
    assert "| `B_hfgd_os2` | HFGD at OS2 | 0/1 | not run yet |" in page
    # One degree of freedom behind the pooled SD: t = 12.71, the bar 12.71 x sqrt(1.41^2 / 2 + 1.41^2) = 22.0 points.
    assert "`B_hfgd` vs `B_sfpn` | +9.0 | 22.0 | within seed noise |" in page
    assert "Protocol A not measured yet; Protocol B 1.4 points over 1 degree of freedom, so t = 12.71)" in page
    assert "would need about" not in page  # 2 (2 x 1.41 / 9)^2 < 1 seed: the seeds are not what is missing
    assert "| `B_sfpn` | 51.0 | 31.0 |" in page  # per-class means
    assert "| 1.00 | 2.0 | 2.0 |" in page  # train CPU minutes, not the wall time (a paused run's clock runs on)
    # B_hfgd's run has untimed steps: its CPU minutes are a lower bound, and the page says what the mark means.
    assert "| `B_hfgd` | HFGD full (OS4) | 1/3 (0) | 50.0 | 1.00 | 2.0 | ≥ 2.0 |" in page
    assert "The tables mark those rows' train CPU minutes as lower bounds (≥)." in page
    assert "abc1234" in page and "0.10 h training + 0.01 h evaluation" in page  # 3 x 120 s, 3 x 12 s of CPU
    assert "Not included: steps trained before the script recorded time (B_hfgd seed 0: 49 steps)." in page
    # 7 runs x 1000 steps at 360 CPU s / 2951 timed steps, plus 7 evaluations of 12 s.
    assert study.projected_cpu_hours(rows, study.StudySettings(), results) == pytest.approx(
        (7000 * 360 / 2951 + 7 * 12) / 3600
    )
    assert "takes about 0.3 CPU-hours: at least 0.1 h on 2 cores" in page and "more than the ~6 h" not in page
    assert "Evaluation wall time" not in page
    # The whole study at 1.5 CPU-hours per 1000 steps is over the ~6 h budget, and the page says so.
    slow = [_result("B_hfgd", 0, 0.5, train_cpu_seconds=5400.0, eval_cpu_seconds=160.0)]
    settings = study.StudySettings()
    steps = sum(study.row_steps(row, settings) * len(row.seeds) for row in study.study_rows())
    expected = (steps * 5.4 + 160.0 * study.run_count(study.study_rows())) / 3600
    assert study.projected_cpu_hours(study.study_rows(), settings, slow) == pytest.approx(expected)
    page = study.render_report(study.study_rows(), settings, slow, meta, CLASSES)
    assert f"takes about {expected:.1f} CPU-hours: at least {expected / 2:.1f} h" in page
    assert "That is more than the ~6 h the study was meant to fit" in page
    old = _result("B_hfgd", 0, 0.5)
    del old["eval_cpu_seconds"]
    page = study.render_report(rows, settings, [old], meta, CLASSES)
    assert "Evaluation wall time where CPU time was not recorded: B_hfgd seed 0." in page
    complete = study.render_report(rows[:1], study.StudySettings(), results[:2] + [_result("B_sfpn", 2, 0.41)],
                                   {**meta, "missing": []}, CLASSES)
    assert "Complete: all 3 runs finished." in complete and "Incomplete" not in complete


def test_run_timing_adds_up_over_processes_and_counts_the_steps_nobody_timed(tmp_path):
    run_dir = str(tmp_path)
    # A run resumed from a checkpoint at step 49 written before timing was recorded, then preempted at 400.
    first = study.add_run_timing(run_dir, 49, 400, wall_seconds=3600.0, cpu_seconds=2000.0)
    assert (first["untimed_steps"], first["processes"], first["cpu_seconds"]) == (49, 1, 2000.0)
    # The next process starts from that step: everything timed.
    second = study.add_run_timing(run_dir, 400, 750, wall_seconds=1000.0, cpu_seconds=1500.0)
    assert (second["untimed_steps"], second["cpu_seconds"], second["wall_seconds"]) == (49, 3500.0, 4600.0)
    # A killed process (no record) reached its checkpoint at 900: those 150 steps went untimed.
    third = study.add_run_timing(run_dir, 900, 1000, wall_seconds=100.0, cpu_seconds=150.0)
    assert (third["untimed_steps"], third["processes"], third["timed_until_step"]) == (199, 3, 1000)
    with open(tmp_path / "timing.json") as handle:
        assert json.load(handle) == third
    # Each process's commit, when the caller gives it, in order.
    assert third["commits"] == []
    other = tmp_path / "other"
    other.mkdir()
    study.add_run_timing(str(other), 0, 500, 10.0, 10.0, commit="aaa1111")
    timing = study.add_run_timing(str(other), 500, 1000, 10.0, 10.0, commit="bbb2222")
    assert timing["commits"] == ["aaa1111", "bbb2222"] and study.process_commits(timing) == ["aaa1111", "bbb2222"]
    # One commit: the result's `commit` says it all. A process unrecorded (the run above, or untimed steps from a
    # killed one): a list with a gap would pass for whole, so none.
    assert study.process_commits({**timing, "source": "docs/results", "commits": ["aaa1111", "aaa1111"]}) is None
    assert study.process_commits(third) is None
    assert study.process_commits({**timing, "untimed_steps": 100}) is None


def test_a_result_trained_otherwise_than_its_row_trains_now_is_refused():
    settings = study.StudySettings()
    rows = study.study_rows()
    by_name = {row.name: row for row in rows}

    def stored(name, seed=0, weights=""):
        model, _, optimizer, train, _ = study.run_configs(by_name[name], seed, settings, "rec", "/runs/x", 11, weights)
        return _result(name, seed, 0.3, model_config=study._json_like(dataclasses.asdict(model)),
                       optimizer_config=study._json_like(dataclasses.asdict(optimizer)),
                       train_config={k: v for k, v in study._json_like(dataclasses.asdict(train)).items()
                                     if k != "checkpoint_dir"})

    same = [("a.json", stored("B_hfgd")), ("b.json", stored("A_sfpn", 1, weights="/elsewhere/backbone.weights.h5"))]
    study.check_configs(rows, same, settings, 11)  # paths differ by machine: not compared
    changed = stored("B_hfgd_no_cae")
    changed["model_config"]["cae"] = "ppm"
    with pytest.raises(ValueError, match=r"c.json: B_hfgd_no_cae seed 0 ran with other configs than the row gives now "
                                         r"\(model_config.cae: 'ppm' then, 'none' now\): move the file away"):
        study.check_configs(rows, same + [("c.json", changed)], settings, 11)
    lr = stored("A_hfgd", 2)
    lr["optimizer_config"]["backbone_lr_multiplier"] = 1.0
    assert study.config_differences(by_name["A_hfgd"], lr, settings, 11) == [
        "optimizer_config.backbone_lr_multiplier: 1.0 then, 0.1 now"]
    # Logging and checkpoint keeping do not change what a run computes: not compared.
    logged = stored("B_hfgd")
    logged["train_config"].update(log_every_steps=10, max_checkpoints_to_keep=5, training_progress_bar=True)
    assert study.config_differences(by_name["B_hfgd"], logged, settings, 11) == []
    # A field the result predates (or one removed since), or a config it never recorded: not compared.
    old = stored("B_hfgd")
    del old["model_config"]["cae"], old["train_config"]
    old["optimizer_config"]["a_removed_field"] = 3
    assert study.config_differences(by_name["B_hfgd"], old, settings, 11) == []


def test_the_commits_line_says_which_runs_ran_on_uncommitted_or_several_commits():
    rows = [r for r in study.study_rows() if r.name in ("B_sfpn", "B_hfgd")]
    results = [_result("B_sfpn", 0, 0.3, commit="abc1234-dirty"), _result("B_sfpn", 1, 0.3),
               _result("B_hfgd", 0, 0.3, commit="ccc3333", process_commits=["bbb2222", "ccc3333"])]
    early = _result("B_hfgd", 1, 0.3)
    del early["train_config"]
    results.append(early)
    meta = study.report_meta(rows, results, machine="m")
    assert meta["commits"] == ["abc1234-dirty", "abc1234", "bbb2222", "ccc3333", "abc1234"]
    page = study.render_report(rows, study.StudySettings(), results, meta, CLASSES)
    assert ("- Commits of the runs: abc1234, abc1234-dirty, bbb2222, ccc3333 (each result JSON names its own; the seeds "
            "of a row may have run on different commits). A commit ending in -dirty: the process started with "
            "uncommitted changes under hfgd_tf/ or scripts/, which no commit records (B_sfpn seed 0). Written by an "
            "early version of the script, which named the HEAD when the run ended, possibly later than the code it "
            "trained with, and did not record the train config, so only the model and optimizer configs are checked "
            "against the row's: B_hfgd seed 1. Resumed on another commit (each process's in order): B_hfgd seed 0 "
            "(bbb2222, ccc3333).") in page
    plain = study.render_report(rows, study.StudySettings(), results[1:2], study.report_meta(rows, results[1:2], "m"), CLASSES)
    assert "-dirty" not in plain and "early version" not in plain and "Resumed on" not in plain
    # A commit corrected since says how, in place of the early-version note.
    early["commit_note"] = "corrected by hand in abc1234"
    noted = study.render_report(rows, study.StudySettings(), [early], study.report_meta(rows, [early], "m"), CLASSES)
    assert "B_hfgd seed 1: corrected by hand in abc1234." in noted and "early version" not in noted


def test_fine_tuning_runs_are_tied_to_one_pretrained_backbone(tmp_path):
    weights = tmp_path / "backbone.weights.h5"
    weights.write_bytes(b"first pretraining")
    first = study.file_sha256(str(weights))
    run_dir = tmp_path / "A_hfgd" / "seed0"
    run_dir.mkdir(parents=True)
    study.record_pretrained_backbone(str(run_dir), first)
    study.record_pretrained_backbone(str(run_dir), first)  # a resuming process, same backbone: fine
    weights.write_bytes(b"pretrained again")
    second = study.file_sha256(str(weights))
    assert second != first
    with pytest.raises(ValueError, match=f"{run_dir} was started from pretrained backbone {first[:12]}"):
        study.record_pretrained_backbone(str(run_dir), second)

    results = [_result("A_hfgd", 0, 0.5, pretrained_backbone_sha256=first),
               _result("A_sfpn", 0, 0.4, pretrained_backbone_sha256=first),
               _result("B_hfgd", 0, 0.4, pretrained_backbone_sha256=None)]
    study.check_one_pretrained_backbone(results, current_sha256=first)
    study.check_one_pretrained_backbone(results + [_result("A_frozen", 0, 0.3)])  # written before the hash: not compared
    with pytest.raises(ValueError, match=f"{second[:12]}: the study's pretrained backbone file now"):
        study.check_one_pretrained_backbone(results, current_sha256=second)
    with pytest.raises(ValueError, match=f"{second[:12]}: A_frozen seed 1"):
        study.check_one_pretrained_backbone(results + [_result("A_frozen", 1, 0.3, pretrained_backbone_sha256=second)])


def test_the_limits_name_the_classes_no_run_learned_and_the_seeds_a_close_claim_would_need():
    rows = [r for r in study.study_rows() if r.name in ("B_sfpn", "B_hfgd")]
    never = {"sky": 0.7, "road": 0.0}
    results = [_result("B_sfpn", 0, 0.35, per_class_iou=never), _result("B_sfpn", 1, 0.37, per_class_iou=never),
               _result("B_hfgd", 0, 0.345, per_class_iou=never), _result("B_hfgd", 1, 0.365)]
    meta = {"command": "c", "machine": "m", "source": "docs/results", "commits": [], "missing": []}
    page = study.render_report(rows, study.StudySettings(), results, meta, CLASSES)
    assert "`B_hfgd` vs `B_sfpn` | -0.5 | 6.1 | within seed noise |" in page
    # road: 0.0 in three runs, 0.265 in one: learned once, so not named.
    assert "score 0.0 IoU in every run" not in page
    results[-1] = _result("B_hfgd", 1, 0.365, per_class_iou=never)
    page = study.render_report(rows, study.StudySettings(), results, meta, CLASSES)
    assert "- 1 of the 2 classes (road) score 0.0 IoU in every run: at this scale mIoU is decided by the other 1," in page
    # SD 1.41 points, difference 0.5: 2 (2.8 x 1.41 / 0.5)^2 = 125.4 -> 126 seeds per row, 2 x 124 more runs of 120 s.
    assert ("Were the measured difference (0.5 points, itself uncertain) the true one, with the seed SD used here (1.4 "
            "points), each row would need about 126 seeds to detect it 80% of the time (2 ((1.96 + 0.84) s / d)^2, a "
            "rough figure): 248 more runs, about 8 CPU-hours at this scale.") in page


def test_protocol_a_page_describes_the_split_and_compares_every_fine_tuned_row_with_the_frozen_reference():
    rows = study.study_rows()
    results = [_result("A_frozen", s, 0.40 + s / 100) for s in range(3)] + [
        _result("A_sfpn", s, 0.30 + s / 100) for s in range(3)]
    meta = {"command": "c", "machine": "m", "source": "docs/results", "commits": [], "missing": []}
    page = study.render_report(rows, study.StudySettings(), results, meta, CLASSES)
    assert "minus one contiguous block of 25% of each sequence" in page and "the first frames of 0016E5" in page
    assert "after 250 steps about 8% of the pretrained statistics remain" in page  # 0.99 ** 250 = 0.081
    # Bar: t(4) x sqrt(2 / 3) x 1 point = 2.3 points. The claim's text says that the heads differ too.
    assert ("| Fine-tuning through SemanticFPN beats the frozen backbone under HFGD's head (the heads differ too) | "
            "`A_sfpn` vs `A_frozen` | -10.0 | 2.3 | does not hold |") in page
    frozen_claims = [claim for claim in study.CLAIMS if claim.worse == "A_frozen"]
    assert {claim.better for claim in frozen_claims} == {r.name for r in rows if r.stage == "finetune" and r.name != "A_frozen"}


def _protocol_a(miou_by_row):
    """Results for every Protocol A run: `{row: mIoU}`, three seeds a point apart around it."""
    rows = [row for row in study.study_rows() if row.protocol == "A"]
    offsets = {row.name: (-0.01, 0.0, 0.01) if len(row.seeds) == 3 else (0.0,) for row in rows}
    results = [_result(row.name, seed, miou_by_row[row.name] + offsets[row.name][seed]) for row in rows for seed in row.seeds]
    return rows, results


def _reading(miou_by_row):
    rows, results = _protocol_a(miou_by_row)
    return "\n".join(study.protocol_a_reading(rows, study.aggregate(results), study.StudySettings()))


def test_the_reading_of_protocol_a_follows_the_verdicts_and_waits_for_every_run():
    # Every multi-seed row has a seed SD of 1 point over 10 degrees of freedom: the bar between two 3-seed rows is
    # t(10) x 0.82 = 1.8 points.
    base = {"A_pretrain": 0.35, "A_frozen": 0.28, "A_hfgd_unshared_kernels": 0.27}
    reading = _reading({**base, "A_sfpn": 0.33, "A_hfgd_no_stop_gradients": 0.31, "A_hfgd": 0.28})
    assert "`A_sfpn` +5.0 (holds); `A_hfgd_no_stop_gradients` +3.0 (holds)" in reading
    assert "`A_hfgd` +0.0 (within seed noise); `A_hfgd_unshared_kernels` -1.0 (within seed noise)" in reading
    assert "(`A_hfgd` vs `A_hfgd_no_stop_gradients`): -3.0 (does not hold)" in reading
    assert "`A_sfpn` differs from the reference in its head too" in reading
    assert "the contamination HFGD guards against does not show at this scale" in reading
    # Three verdicts, all against the premise; the shared kernels (-1.0) are within seed noise, and SemanticFPN
    # against the frozen reference (+5.0, holds) is not counted: its head differs too.
    assert ("No verdict supports the premise; 3 go against it: HFGD beats a jointly trained SemanticFPN (pretrained "
            "backbone) -5.0 (does not hold); Stop-gradients help (pretrained backbone) -3.0 (does not hold); "
            "Fine-tuning through HFGD without stop-gradients beats keeping the backbone frozen +3.0 (holds).") in reading
    assert "Both parts" not in reading  # the shared kernels: -1.0, within seed noise
    reading = _reading({**base, "A_sfpn": 0.33, "A_hfgd_no_stop_gradients": 0.31, "A_hfgd": 0.28,
                        "A_hfgd_unshared_kernels": 0.30})
    assert ("Both parts that isolate HFGD's upsampler cost accuracy at this scale: removing the stop-gradients +3.0, "
            "removing the shared class kernels +2.0 mIoU points against HFGD full, which ends +0.0 against the frozen "
            "backbone (within seed noise).") in reading
    reading = _reading({**base, "A_sfpn": 0.24, "A_hfgd_no_stop_gradients": 0.25, "A_hfgd": 0.28,
                        "A_hfgd_unshared_kernels": 0.25})
    assert "Both parts that isolate HFGD's upsampler help at this scale, as the paper reports: removing the " \
           "stop-gradients -3.0, removing the shared class kernels -3.0" in reading
    # The pretraining model is a reference with differences, not verdicts (its noise and its head's data differ).
    assert "(`A_pretrain`, 35.0, one seed) is a reference, not judged" in reading
    assert "Against it (mIoU points): `A_frozen` -7.0, `A_sfpn` -11.0, " in reading
    # Joint fine-tuning below the frozen backbone, the isolated rows not, the stop-gradients helping: the premise.
    reading = _reading({**base, "A_sfpn": 0.24, "A_hfgd_no_stop_gradients": 0.25, "A_hfgd": 0.28})
    assert "Here HFGD fine-tuned without its stop-gradients ends below the frozen backbone while the isolated rows" in reading
    assert "Every verdict on the premise supports it (3): HFGD beats a jointly trained SemanticFPN" in reading
    # Verdicts both ways, and none at all.
    reading = _reading({**base, "A_sfpn": 0.33, "A_hfgd_no_stop_gradients": 0.25, "A_hfgd": 0.28})
    assert ("The verdicts on the premise point both ways. For it: Stop-gradients help (pretrained backbone) +3.0 "
            "(holds); Fine-tuning through HFGD without stop-gradients beats keeping the backbone frozen -3.0 (does not "
            "hold). Against it: HFGD beats a jointly trained SemanticFPN (pretrained backbone) -5.0 (does not "
            "hold).") in reading
    # The first case's narrative ("does not show") is not written when a verdict supports the premise (here the
    # shared kernels, +3.0): the tally says the verdicts point both ways, and no narrative contradicts it.
    reading = _reading({**base, "A_sfpn": 0.33, "A_hfgd_no_stop_gradients": 0.31, "A_hfgd": 0.28,
                        "A_hfgd_unshared_kernels": 0.25})
    assert "point both ways. For it: Shared class kernels help (pretrained backbone) +3.0 (holds)." in reading
    assert "Here" not in reading
    reading = _reading({**base, "A_sfpn": 0.285, "A_hfgd_no_stop_gradients": 0.285, "A_hfgd": 0.28,
                        "A_hfgd_unshared_kernels": 0.28})
    assert "gets past seed noise: at this scale the premise is neither supported nor contradicted." in reading
    for case in (
        {"A_sfpn": 0.33, "A_hfgd_no_stop_gradients": 0.285, "A_hfgd": 0.28},  # one joint row within noise
        {"A_sfpn": 0.33, "A_hfgd_no_stop_gradients": 0.31, "A_hfgd": 0.32},  # an isolated row gains too
        {"A_sfpn": 0.33, "A_hfgd_no_stop_gradients": 0.31, "A_hfgd": 0.30},  # stop-gradients within noise
        {"A_sfpn": 0.24, "A_hfgd_no_stop_gradients": 0.24, "A_hfgd": 0.22},  # all below, the isolated furthest
        {"A_sfpn": 0.24, "A_hfgd_no_stop_gradients": 0.31, "A_hfgd": 0.28},  # one joint row below, one above
    ):
        reading = _reading({**base, **case})
        assert "Here" not in reading, case  # no narrative without every verdict it rests on
        tallies = ("The verdicts on the premise point both ways", "No verdict supports the premise",
                   "Every verdict on the premise supports it", "No comparison that bears on the premise")
        assert sum(tally in reading for tally in tallies) == 1, case
    # One run missing: no reading yet, and the page says so.
    rows, results = _protocol_a({**base, "A_sfpn": 0.33, "A_hfgd_no_stop_gradients": 0.31, "A_hfgd": 0.28})
    meta = {"command": "c", "machine": "m", "source": "docs/results", "commits": [], "missing": ["A_hfgd_unshared_kernels seed 2"]}
    page = study.render_report(rows, study.StudySettings(), results[:-1], meta, CLASSES)
    assert "## Reading of Protocol A\n\nWritten when every Protocol A run has finished." in page


PROTOCOL_B = {"B_sfpn": 0.35, "B_hfgd": 0.32, "B_hfgd_no_cae": 0.29, "B_hfgd_no_stop_gradients": 0.35,
              "B_hfgd_unshared_kernels": 0.315, "B_high_level_only": 0.27, "B_hfgd_os8": 0.31, "B_hfgd_os2": 0.345,
              "B_hfgd_wide_head": 0.325, "B_deeplabv3plus": 0.36}
PROTOCOL_A = {"A_pretrain": 0.35, "A_frozen": 0.28, "A_sfpn": 0.33, "A_hfgd_no_stop_gradients": 0.31, "A_hfgd": 0.28,
              "A_hfgd_unshared_kernels": 0.31}


def _protocol_b_reading(miou_by_row, protocol_a=None, b_spread=0.005, seeds=None):
    """The reading from every Protocol B run, plus every Protocol A run when `protocol_a` gives their mIoUs.

    Three-seed rows lie at their mIoU and `b_spread` either side (by default a pooled SD of 0.5 points over 4
    degrees of freedom: the bar is t(4) x 0.5 x sqrt(2/3) = 1.1 points between two three-seed rows, 1.6 between a
    one-seed and a three-seed row); `seeds` replaces every Protocol B row's seeds.
    """
    rows = [row for row in study.study_rows() if row.protocol == "B"]
    if seeds is not None:
        rows = [dataclasses.replace(row, seeds=seeds) for row in rows]
    results = [
        _result(row.name, seed, miou_by_row[row.name] + (b_spread * (seed - 1) if len(row.seeds) == 3 else 0.0))
        for row in rows for seed in row.seeds
    ]
    if protocol_a is not None:
        rows_a, results_a = _protocol_a(protocol_a)
        rows, results = rows_a + rows, results_a + results
    reading = "\n".join(study.protocol_b_reading(rows, study.aggregate(results), study.StudySettings()))
    return reading, rows, results


def test_the_reading_of_protocol_b_follows_the_verdicts_and_waits_for_every_run():
    reading, rows, results = _protocol_b_reading(PROTOCOL_B)
    assert ("From scratch, 1000 steps each: HFGD full (32.0 ± 0.5 mIoU at 2.0 GFLOPs) minus the jointly trained "
            "SemanticFPN (35.0 ± 0.5 mIoU at 2.0 GFLOPs): -3.0 (below, beyond the 95% bar); minus DeepLabV3+ (36.0 "
            "mIoU at 2.0 GFLOPs): -4.0 (below, beyond the 95% bar).") in reading
    assert ("the CAE +3.0 (helps); the stop-gradients -3.0 (costs accuracy); the shared class kernels +0.5 "
            "(within seed noise); the upsampler +5.0 (helps).") in reading
    assert ("Parts that help here: the CAE, the upsampler. Parts that cost accuracy here (HFGD full is below the row "
            "without them): the stop-gradients. Parts that stay within seed noise when removed (no verdict either "
            "way at this scale): the shared class kernels.") in reading
    assert "OS4 minus OS8 +1.0 (within seed noise); OS2 minus OS4 +2.5 (above, beyond the 95% bar)." in reading
    # Worded as the claims table words a test for a cost: bar 2.8 x 0.5 x sqrt(1/3 + 1) = 1.6, so up to 1.6 + 0.5.
    assert ("minus the D-wide head (32.5 mIoU at 2.0 GFLOPs): -0.5: no cost detected (a cost up to 2.1 points is not "
            "excluded, 97.5% one-sided).") in reading
    assert ("The one-seed rows (8 of them) are judged with the seed SD pooled over Protocol B's several-seed rows, "
            "0.5 points over 4 degrees of freedom: the bar is then 2.8 standard errors (Student's t)") in reading
    assert "about 0.5 of this section's 9 Protocol B comparisons would." in reading
    assert "Protocol A" not in reading  # no Protocol A rows on this page
    # Other outcomes: DeepLabV3+ and OS2 below HFGD full, every part within seed noise.
    within = {name: 0.32 for name in ("B_hfgd_no_cae", "B_hfgd_no_stop_gradients", "B_hfgd_unshared_kernels",
                                      "B_high_level_only")}
    reading, _, _ = _protocol_b_reading({**PROTOCOL_B, **within, "B_deeplabv3plus": 0.29, "B_hfgd_os2": 0.30})
    assert "minus DeepLabV3+ (29.0 mIoU at 2.0 GFLOPs): +3.0 (above, beyond the 95% bar)." in reading
    # Past its own bar (2.8 x 0.58 = 1.6 points) but not past Holm's correction over the claims with a bar.
    assert "OS2 minus OS4 -2.0 (below, beyond the 95% bar; not after Holm's correction over all claims)." in reading
    assert ("Parts that stay within seed noise when removed (no verdict either way at this scale): the CAE, the "
            "stop-gradients, the shared class kernels, the upsampler.") in reading
    assert "Parts that help" not in reading and "Parts that cost" not in reading
    # One seed per row: nothing is judged, and no pooled SD to speak of.
    reading, _, _ = _protocol_b_reading(PROTOCOL_B, seeds=(0,))
    assert "Parts that have no verdict yet (no seed spread measured): the CAE, the stop-gradients" in reading
    assert "-3.0 (1 seed: no spread measured yet)" in reading and "degrees of freedom" not in reading


def test_the_reading_of_protocol_b_sets_the_isolating_parts_beside_protocol_a():
    # Stop-gradients cost accuracy in both; shared kernels cost accuracy in A, within seed noise in B.
    reading, _, _ = _protocol_b_reading(PROTOCOL_B, PROTOCOL_A)
    assert ("The stop-gradients: Protocol A -3.0 (costs accuracy); Protocol B -3.0 (costs accuracy); the protocols "
            "agree.") in reading
    assert ("The shared class kernels: Protocol A -3.0 (costs accuracy); Protocol B +0.5 (within seed noise); only "
            "Protocol A decides.") in reading
    reading, _, _ = _protocol_b_reading({**PROTOCOL_B, "B_hfgd_unshared_kernels": 0.29}, PROTOCOL_A)
    assert "Protocol B +3.0 (helps); the protocols point opposite ways." in reading
    reading, _, _ = _protocol_b_reading(PROTOCOL_B, {**PROTOCOL_A, "A_hfgd_no_stop_gradients": 0.285,
                                                     "A_hfgd_unshared_kernels": 0.285})
    # With Protocol A's claims in the family, B's stop-gradients (p = 0.007, fifth smallest of 15) miss Holm's
    # 0.05 / 11.
    assert ("Protocol A -0.5 (within seed noise); Protocol B -3.0 (costs accuracy; not after Holm's correction over "
            "all claims); neither protocol decides after Holm's correction (Protocol B at its own claim's bar only).") in reading
    assert "Protocol A -0.5 (within seed noise); Protocol B +0.5 (within seed noise); neither protocol decides." \
        in reading
    # Protocol A judged with its own pooled SD (1 point), not Protocol B's (here 2.8 points): -3.0 still decides.
    reading, _, _ = _protocol_b_reading(PROTOCOL_B, PROTOCOL_A, b_spread=0.02)
    assert "The stop-gradients: Protocol A -3.0 (costs accuracy" in reading  # its own bar; Holm's may add a caveat
    # A page without Protocol A rows has no finished Protocol A; one run short neither: no side by side.
    assert not study._protocol_finished([row for row in study.study_rows() if row.protocol == "B"], {}, "A")
    reading, rows, results = _protocol_b_reading(PROTOCOL_B, PROTOCOL_A)
    short = [r for r in results if (r["row"], r["seed"]) != ("A_hfgd", 2)]
    assert "isolating parts" not in "\n".join(study.protocol_b_reading(rows, study.aggregate(short),
                                                                        study.StudySettings()))
    # Protocol B one run short: no reading yet, and the page says so.
    meta = {"command": "c", "machine": "m", "source": "docs/results", "commits": [], "missing": ["B_deeplabv3plus seed 0"]}
    assert results[-1]["row"] == "B_deeplabv3plus"
    page = study.render_report(rows, study.StudySettings(), results[:-1], meta, CLASSES)
    assert "## Reading of Protocol B\n\nWritten when every Protocol B run has finished." in page
    meta["missing"] = []
    assert "Parts that help here: the CAE, the upsampler." in study.render_report(
        rows, study.StudySettings(), results, meta, CLASSES)


def test_the_protocols_agree_or_decide_only_with_verdicts_that_survive_holm():
    assert study._agreement("holds", "holds") == "the protocols agree"
    assert study._agreement("holds", "does not hold") == "the protocols point opposite ways"
    assert study._agreement("holds", "within seed noise") == "only Protocol A decides"
    assert study._agreement("within seed noise", "within seed noise") == "neither protocol decides"
    assert study._agreement("does not hold", "within seed noise", a_stands=False) == (
        "neither protocol decides after Holm's correction (Protocol A at its own claim's bar only)")
    assert study._agreement("holds", "holds", b_stands=False) == (
        "only Protocol A decides after Holm's correction (Protocol B at its own claim's bar only)")
    assert study._agreement("holds", "does not hold", False, False) == (
        "neither protocol decides after Holm's correction (both at their own claims' bars only)")


def test_readme_headline_shows_the_headline_rows_and_their_claims():
    rows = study.study_rows()
    results = [_result("A_frozen", s, 0.40 + s / 100) for s in range(3)] + [_result("A_hfgd", 0, 0.47)]
    headline = study.render_headline(rows, results)
    assert headline.startswith(f"**Incomplete: 4 of {study.run_count(rows)} runs finished.**")
    assert "| `A_frozen` | Reference: pretrained backbone frozen, fresh HFGD head | 3/3 (0,1,2) | 41.0 ± 1.0 |" in headline
    assert "| `A_hfgd` | HFGD full | 1/3 (0) | 47.0 |" in headline
    assert "| `B_sfpn` | SemanticFPN (joint) | 0/3 | not run yet |" in headline
    # Bar: t(2) x sqrt(1/3 + 1) x 1 point = 5.0 points.
    assert "| Fine-tuning through HFGD beats keeping the backbone frozen | `A_hfgd` vs `A_frozen` | +6.0 | 5.0 | holds |" in headline
    assert "B_hfgd_os8" not in headline and "The CAE helps" not in headline  # not headline rows: on the page only
    table_rows = [line.split("|")[1].strip(" `") for line in headline.splitlines() if line.startswith("| `")]
    assert table_rows == [name for name in study.HEADLINE_ROWS]


def test_the_readme_headline_goes_between_its_markers_or_the_error_names_the_file():
    readme = f"# Title\n\n{study.README_START}\nold numbers\n{study.README_END}\n\n## Next\n"
    once = study.replace_marked_block(readme, "new | table")
    assert once == f"# Title\n\n{study.README_START}\nnew | table\n{study.README_END}\n\n## Next\n"
    assert study.replace_marked_block(once, "new | table") == once
    for broken, found in (("# Title\n", "0 and 0 times"), (readme + study.README_START, "2 and 1 times"),
                          (f"{study.README_END}\n{study.README_START}\n", "1 and 1 times, in the wrong order")):
        with pytest.raises(ValueError, match=f"^my/README.md: expected the line .* \\(found them {found}\\)"):
            study.replace_marked_block(broken, "x", source="my/README.md")
    # The study commits the README only when its headline is all that changed.
    assert study.differs_only_in_headline(readme, once)
    assert not study.differs_only_in_headline(readme, once.replace("## Next", "## Next, edited by hand"))
    assert not study.differs_only_in_headline(readme, "# Title\n")


def test_the_repository_results_page_is_what_the_script_writes_from_the_committed_results():
    from hfgd_tf.data.registry import get_dataset_spec

    root = pathlib.Path(__file__).resolve().parents[2]
    results = [json.loads(path.read_text()) for path in sorted((root / "docs" / "results").glob("*.json"))]
    settings = study.StudySettings()
    assert all(result["settings"] == dataclasses.asdict(settings) for result in results)
    rows = study.study_rows()
    class_names = list(get_dataset_spec("camvid").info.class_names)
    page = study.render_report(rows, settings, results, study.report_meta(rows, results), class_names) + "\n"
    assert (root / "docs" / "results.md").read_text(encoding="utf-8") == page, (
        "docs/results.md is stale: run python scripts/run_ablations.py --report_only"
    )


def test_the_repository_readme_headline_is_what_the_script_writes_from_the_committed_results():
    root = pathlib.Path(__file__).resolve().parents[2]
    results = [json.loads(path.read_text()) for path in sorted((root / "docs" / "results").glob("*.json"))]
    readme = (root / "README.md").read_text(encoding="utf-8")
    expected = study.replace_marked_block(readme, study.render_headline(study.study_rows(), results))
    assert readme == expected, "README.md's results headline is stale: run python scripts/run_ablations.py --report_only"
