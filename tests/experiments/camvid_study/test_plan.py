"""The plan: CamVid's pretrain/finetune split, and the configs the committed results were trained with."""

import plan
import pytest


def test_holdback_keeps_the_block_farthest_from_val_frames():
    stems = [f"0016E5_{i:05d}" for i in range(1, 9)] + [f"0001TP_{i:06d}" for i in range(1, 5)]
    # 0016E5's val frames sit after its train frames: the first 2 frames are held back there; 0001TP has none
    # in val, so its last frame is.
    pretrain, finetune = plan.holdback_split(stems, 0.25, avoid=["0016E5_00020"])
    assert finetune == ["0001TP_000004", "0016E5_00001", "0016E5_00002"]
    assert sorted(pretrain + finetune) == sorted(stems)
    pretrain, finetune = plan.holdback_split(stems, 0.25, avoid=["0016E5_00000"])
    assert finetune[1:] == ["0016E5_00007", "0016E5_00008"]
    with pytest.raises(ValueError, match="'bad' is not <sequence>_<frame number>"):
        plan.holdback_split(["bad"], 0.25)


def test_settings_refuse_a_schedule_that_is_not_whole_epochs():
    with pytest.raises(ValueError, match="scratch_steps=300 must be a multiple of epoch_steps=250"):
        plan.StudySettings(scratch_steps=300)
    with pytest.raises(ValueError, match="holdback_fraction must be in"):
        plan.StudySettings(holdback_fraction=1.0)


def test_until_the_encoding_is_chosen_only_the_rows_that_measure_it_are_new(monkeypatch):
    monkeypatch.setattr(plan, "CHOSEN_POSITION_ENCODING", None)
    new = {row.name for row in plan.study_rows() if not row.legacy}
    assert new == {"PE_index", "PE_normalized"}
    assert {"A2_hfgd", "B2_hfgd", "D_upsampler_only"} <= {row.name for row in plan.study_rows("index")}


def test_every_claim_names_rows_of_the_plan():
    rows = plan.study_rows("normalized")
    names = {row.name for row in rows}
    assert len(names) == len(rows)
    for row in rows:
        assert (
            not row.init_from
            or row.init_from in names
            and rows.index(row) > [r.name for r in rows].index(row.init_from)
        )
    protocol_of = {row.name: plan.POOLED_WITH.get(row.protocol, row.protocol) for row in rows}
    for claim in plan.CLAIMS:
        assert {claim.better, claim.worse} <= names, claim
        # A claim is judged with one protocol's seed spread: both its rows must be of it.
        assert protocol_of[claim.better] == protocol_of[claim.worse], claim


def test_planned_cpu_seconds_count_steps_scorings_and_diagnostic_points(monkeypatch):
    monkeypatch.setattr(plan, "SECONDS_PER_STEP", {"trains_backbone": 2.0, "frozen_backbone": 1.0})
    monkeypatch.setattr(plan, "SECONDS_PER_SCORING", {"whole": 10.0, "sliding": 30.0})
    monkeypatch.setattr(plan, "DIAGNOSTIC_POINT_SECONDS", 5.0)
    rows = {row.name: row for row in plan.study_rows("normalized")}
    settings = plan.StudySettings(batch_size=8, scratch_steps=500, finetune_steps=1000, epoch_steps=250)
    # HFGD from scratch at twice the reference batch: 500 steps x 2 s x 2, both heads scored whole and sliding.
    assert plan.run_cpu_seconds(rows["PE_normalized"], settings) == 500 * 4.0 + 2 * 40.0
    # SemanticFPN on a frozen backbone: one head.
    assert plan.run_cpu_seconds(rows["A2_frozen_sfpn"], settings) == 1000 * 2.0 + 40.0
    # The diagnostic: a point before training and after each of its 10 epochs of 100 steps.
    assert plan.run_cpu_seconds(rows["D_upsampler_only"], settings) == 1000 * 2.0 + 2 * 40.0 + 11 * 5.0
