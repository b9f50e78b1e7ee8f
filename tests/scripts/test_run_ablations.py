"""scripts/run_ablations.py without training: the page and the README headline it writes, and its early errors."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

from hfgd_tf.studies import camvid_ablations as study
from tests.conftest import ROOT


def _run_ablations(tmp_path, *arguments, report=True):
    return subprocess.run(
        [sys.executable, os.path.join("scripts", "run_ablations.py"), f"--work_dir={tmp_path / 'work'}",
         *([f"--report={tmp_path / 'results.md'}"] if report else []), *arguments],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def test_report_only_rewrites_the_page_and_the_readme_headline_from_the_results(tmp_path):
    results_dir = tmp_path / "results"
    shutil.copytree(pathlib.Path(ROOT) / "docs" / "results", results_dir)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Intro\n{study.README_START}\nstale\n{study.README_END}\n## After\n", encoding="utf-8")
    result = _run_ablations(tmp_path, "--report_only", f"--results_dir={results_dir}", f"--readme={readme}")
    assert result.returncode == 0, result.stderr[-3000:]
    text = readme.read_text(encoding="utf-8")
    results = [json.loads(path.read_text()) for path in sorted(results_dir.glob("*.json"))]
    assert text == f"# Intro\n{study.README_START}\n{study.render_headline(study.study_rows(), results)}\n{study.README_END}\n## After\n"
    page = (tmp_path / "results.md").read_text()
    assert "stale" not in text and page.startswith("# Results: HFGD's claims")
    assert f"from `{results_dir}/*.json`" in page  # where its numbers come from, not the repository's directory


def test_a_readme_without_the_markers_is_refused_before_anything_runs(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# A README someone rewrote\n", encoding="utf-8")
    empty = tmp_path / "no_results"
    empty.mkdir()
    result = _run_ablations(tmp_path, f"--results_dir={empty}", f"--readme={readme}", f"--camvid_dir={tmp_path}")
    assert result.returncode != 0
    assert f"--readme '{readme}': expected the line" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "work").exists() and not (tmp_path / "results.md").exists()
    missing = _run_ablations(tmp_path, "--report_only", f"--results_dir={empty}", f"--readme={tmp_path / 'nope.md'}")
    assert missing.returncode != 0 and "nope.md' cannot be read (No such file or directory)" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_results_elsewhere_leave_the_repository_readme_alone_and_plan_needs_no_readme(tmp_path):
    readme = pathlib.Path(ROOT) / "README.md"
    before = readme.read_bytes()
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    json_file = sorted((pathlib.Path(ROOT) / "docs" / "results").glob("B_hfgd__seed0.json"))[0]
    result = json.loads(json_file.read_text())
    result["miou"] = 0.99  # a smoke study's number must not reach the repository's headline
    (results_dir / json_file.name).write_text(json.dumps(result))
    # No restoring afterwards: a study writing the headline meanwhile must not be undone by a test (git shows it
    # when this test fails).
    done = _run_ablations(tmp_path, "--report_only", f"--results_dir={results_dir}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert readme.read_bytes() == before and "99.0" in (tmp_path / "results.md").read_text()
    broken = tmp_path / "README.md"
    broken.write_text("no markers\n")
    plan = _run_ablations(tmp_path, "--plan", f"--readme={broken}", f"--results_dir={results_dir}")
    assert plan.returncode == 0 and "B_hfgd" in plan.stdout, plan.stderr[-3000:]
    # Every row's first seed before any row's second: the pretraining first, then down the table, seed by seed.
    assert "29 runs to do among the selected rows, in this order: A_pretrain seed 0, A_frozen seed 0, " in plan.stdout
    assert "B_hfgd_wide_head seed 0, B_deeplabv3plus seed 0, A_frozen seed 1, " in plan.stdout
    assert plan.stdout.rstrip().endswith("B_sfpn seed 2, B_hfgd seed 2")
    # B_hfgd alone: no pair of rows to set side by side.
    figures = _run_ablations(tmp_path, "--figures", f"--results_dir={results_dir}")
    assert figures.returncode != 0 and "Traceback" not in figures.stderr
    assert "--figures needs a seed of A_sfpn and A_hfgd, or of B_sfpn and B_hfgd, finished and with its run" in figures.stderr
    # Both rows finished (their JSONs came with the repository), but their run directories are not here.
    sfpn = json.loads((pathlib.Path(ROOT) / "docs" / "results" / "B_sfpn__seed0.json").read_text())
    (results_dir / "B_sfpn__seed0.json").write_text(json.dumps(sfpn))
    figures = _run_ablations(tmp_path, "--figures", f"--results_dir={results_dir}")
    assert figures.returncode != 0 and "Traceback" not in figures.stderr
    assert "Protocol B: no seed that B_sfpn and B_hfgd both finished has its run directories in" in figures.stderr


def test_a_study_commit_takes_the_result_a_killed_process_left_uncommitted(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "docs" / "results").mkdir(parents=True)
    for name in ("run_ablations.py", "common_flags.py"):
        shutil.copy(os.path.join(ROOT, "scripts", name), repo / "scripts" / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "docs" / "results" / "old.json").write_text("{}")
    (repo / "notes.txt").write_text("mine\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "start"], check=True)
    (repo / "docs" / "results" / "orphan seed 0.json").write_text('{"row": "left by a killed process"}')
    (repo / "docs" / "results" / "new.json").write_text("{}")
    (repo / "docs" / "results" / "old.json").write_text('{"edited": "by hand"}')  # tracked: not swept in
    (repo / "notes.txt").write_text("mine, unfinished\n")  # a user's edit: stays out of the study's commit
    script = (
        "import sys; sys.argv = ['run_ablations.py', '--results_dir=docs/results', '--readme=']; "
        "import run_ablations; run_ablations.FLAGS(sys.argv); "
        "run_ablations._commit(['docs/results/new.json'], 'Ablation study: new')"
    )
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PYTHONPATH": os.pathsep.join([str(repo / "scripts"), ROOT])}
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Also committing results an earlier process left uncommitted: orphan seed 0.json" in done.stdout
    shown = subprocess.run([*git, "-c", "core.quotePath=false", "show", "--name-only", "--format=%s", "HEAD"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert shown[0] == "Ablation study: new (and orphan seed 0.json, left uncommitted by an earlier process)"
    assert sorted(line for line in shown[1:] if line) == ["docs/results/new.json", "docs/results/orphan seed 0.json"]
    status = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    assert sorted(status.splitlines()) == [" M docs/results/old.json", " M notes.txt"]


def test_results_elsewhere_write_their_page_beside_them_not_over_the_repository_page(tmp_path):
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    shutil.copy(pathlib.Path(ROOT) / "docs" / "results" / "B_hfgd__seed0.json", results_dir)
    done = _run_ablations(tmp_path, "--report_only", f"--results_dir={results_dir}", report=False)
    assert done.returncode == 0, done.stderr[-3000:]
    # What it wrote, from its own output: a study running meanwhile may rewrite the repository's page itself.
    assert done.stdout.strip().splitlines()[-1] == f"Wrote {results_dir / 'results.md'}"
    assert (results_dir / "results.md").read_text().startswith("# Results: HFGD's claims")
    # A mistyped directory is refused rather than read as "no run finished".
    typo = _run_ablations(tmp_path, "--report_only", f"--results_dir={tmp_path / 'result'}", report=False)
    assert typo.returncode != 0 and "Traceback" not in typo.stderr
    assert f"--results_dir '{tmp_path / 'result'}' is not a directory" in typo.stderr


def test_bad_settings_data_and_a_second_pretraining_are_refused_before_anything_trains(tmp_path):
    empty = tmp_path / "no_results"
    empty.mkdir()
    for flag, message in (("--study_crop_height=0", "--study_crop_height must be >= 1"),
                          ("--max_runs=-1", "--max_runs")):
        refused = _run_ablations(tmp_path, "--plan", flag, f"--results_dir={empty}")
        assert refused.returncode != 0 and message in refused.stderr and "Traceback" not in refused.stderr, flag
    # A directory that is not CamVid: named, no traceback.
    not_camvid = tmp_path / "not_camvid"
    not_camvid.mkdir()
    refused = _run_ablations(tmp_path, "--rows=B_hfgd", f"--camvid_dir={not_camvid}", f"--results_dir={empty}",
                             "--readme=")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert f"--camvid_dir '{not_camvid}': " in refused.stderr
    # Fine-tuning results without the pretraining's: pretraining again would orphan them.
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    shutil.copy(pathlib.Path(ROOT) / "docs" / "results" / "A_hfgd__seed0.json", results_dir)
    refused = _run_ablations(tmp_path, f"--results_dir={results_dir}", "--readme=", f"--camvid_dir={not_camvid}")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert "A_pretrain has no result and no final checkpoint, but 1 fine-tuning runs have results (A_hfgd seed 0)" \
        in refused.stderr
    runs = tmp_path / "work" / study.settings_key(study.StudySettings()) / "runs"
    assert f"move every Protocol A result (A_*.json) out of {results_dir} and delete {runs / 'A_*'} and" in refused.stderr
    assert not (tmp_path / "work").exists()
    plan = _run_ablations(tmp_path, "--plan", f"--results_dir={results_dir}")
    assert plan.returncode == 0 and "Running them would be refused: A_pretrain has no result" in plan.stdout
    # Its final checkpoint still there (the JSON lost after the backbone was saved): it only evaluates again.
    pretrain_dir = runs / "A_pretrain" / "seed0"
    pretrain_dir.mkdir(parents=True)
    steps = study.row_steps(next(r for r in study.study_rows() if r.name == "A_pretrain"), study.StudySettings())
    (pretrain_dir / "checkpoint").write_text(f'model_checkpoint_path: "ckpt-{steps}"\n')
    (pretrain_dir / f"ckpt-{steps}.index").write_bytes(b"")
    allowed = _run_ablations(tmp_path, f"--results_dir={results_dir}", "--readme=", f"--camvid_dir={not_camvid}")
    assert "has no result" not in allowed.stderr and f"--camvid_dir '{not_camvid}': " in allowed.stderr
    # A result trained otherwise than its row trains now (here: another CAE) stands for no run of the plan.
    changed = json.loads((results_dir / "A_hfgd__seed0.json").read_text())
    changed["model_config"]["cae"] = "ppm"
    (results_dir / "A_hfgd__seed0.json").write_text(json.dumps(changed))
    refused = _run_ablations(tmp_path, "--report_only", f"--results_dir={results_dir}", "--readme=")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert ("A_hfgd__seed0.json: A_hfgd seed 0 ran with other configs than the row gives now (model_config.cae: "
            "'ppm' then, 'transformer' now): move the file away") in refused.stderr


PREPARE = """
import json, os, sys
camvid, work = sys.argv[1:]
sys.argv = ["run_ablations.py", "--camvid_dir=" + camvid, "--work_dir=" + work]
import run_ablations
run_ablations.FLAGS(sys.argv)
records = os.path.join(work, "records")

def manifest():
    with open(os.path.join(records, "manifest.json")) as handle:
        return json.load(handle)

def prepare():
    before = os.stat(os.path.join(records, "manifest.json")).st_mtime_ns if os.path.exists(records) else None
    run_ablations._prepare_records(records)
    return manifest(), os.stat(os.path.join(records, "manifest.json")).st_mtime_ns != before

first, _ = prepare()
print("splits", sorted((k, v["num_examples"]) for k, v in first["splits"].items()))
print("again rewrote", prepare()[1])
for directory in ("images", "labels"):
    os.rename(os.path.join(camvid, directory, "train", "0001TP_000004.png"), os.path.join(camvid, directory, "train", "0001TP_000005.png"))
renamed, rewrote = prepare()
print("renamed rewrote", rewrote, renamed["source"]["frames_sha256"]["train"] != first["source"]["frames_sha256"]["train"])
legacy = manifest()
del legacy["source"]["frames_sha256"]
with open(os.path.join(records, "manifest.json"), "w") as handle:
    json.dump(legacy, handle)
def shards():
    return {name: os.stat(os.path.join(records, name)).st_mtime_ns for name in os.listdir(records) if name != "manifest.json"}
before = shards()
backfilled, _ = prepare()
print("backfilled", backfilled["source"]["frames_sha256"] == renamed["source"]["frames_sha256"], shards() == before,
      sorted(backfilled["splits"]) == sorted(renamed["splits"]))
import shutil
moved = camvid + "_moved"
shutil.copytree(camvid, moved)
sys.argv[1] = "--camvid_dir=" + moved
run_ablations.FLAGS(sys.argv[:3])
elsewhere, rewrote = prepare()
print("elsewhere rewrote", rewrote, elsewhere["source"]["data_dir"] == os.path.abspath(moved), shards() != before)
"""


def test_records_are_converted_again_when_the_frames_behind_them_change(tmp_path):
    import numpy as np
    from PIL import Image

    camvid = tmp_path / "camvid"
    frames = {"train": [f"{sequence}_{i}" for sequence, form in (("0001TP", "{:06d}"), ("0006R0", "f{:05d}"),
                                                                  ("0016E5", "{:05d}")) for i in map(form.format, range(1, 5))],
              "val": ["0016E5_00010"]}
    for split, names in frames.items():
        for directory in ("images", "labels"):
            (camvid / directory / split).mkdir(parents=True)
        for name in names:
            Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(camvid / "images" / split / f"{name}.png")
            Image.fromarray(np.ones((4, 6), np.uint8)).save(camvid / "labels" / split / f"{name}.png")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(ROOT, "scripts"), ROOT])}
    done = subprocess.run([sys.executable, "-c", PREPARE, str(camvid), str(tmp_path / "work")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        "splits [('finetune', 3), ('pretrain', 9), ('train', 12), ('val', 1)]",  # 25% of 4 frames: 1 per sequence
        "again rewrote False",
        "renamed rewrote True True",  # same counts, another frame: converted again
        "backfilled True True True",  # records from before the frame names were kept: names recorded, not redone
        "elsewhere rewrote True True True",  # another CamVid directory, same frame names: converted again
    ]
