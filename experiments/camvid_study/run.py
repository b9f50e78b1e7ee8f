"""Runs the CamVid study of HFGD's claims and writes its page (README.md beside this file says what it is).

    python experiments/camvid_study/run.py --plan                 # rows, seeds, what is finished, planned CPU hours
    nice -n 19 python experiments/camvid_study/run.py --git_commit  # every unfinished run, one at a time
    python experiments/camvid_study/run.py --report_only          # rewrite docs/results.md from the JSONs

Resumable: a finished (row, seed) has its JSON in --results_dir and is skipped; a killed run resumes from its last
checkpoint in <work_dir>/runs/<row>/seed<seed>. A JSON is written (atomically) only once a run has trained its last
step and been scored. Records, checkpoints and pretrained weights stay in --work_dir, outside the repository
(CamVid's licence: the data is not redistributed inside the project).
"""

import dataclasses
import hashlib
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [HERE, ROOT, os.path.join(ROOT, "scripts")]

from absl import app, flags, logging  # noqa: E402

import plan  # noqa: E402
import report  # noqa: E402

flags.DEFINE_string("camvid_dir", os.path.join(os.path.dirname(ROOT), "shared", "data", "camvid"),
                    "CamVid in the SegNet layout.")
flags.DEFINE_string("work_dir", os.path.join(os.path.dirname(ROOT), "hfgd_study_work"),
                    "Records, checkpoints and pretrained weights (outside the repository).")
DEFAULT_RESULTS = os.path.join(HERE, "results")
flags.DEFINE_string("results_dir", DEFAULT_RESULTS, "One JSON per finished (row, seed).")
flags.DEFINE_string("report", "", "The page to write; default docs/results.md for the default --results_dir, "
                    "else <results_dir>/results.md (a study elsewhere does not overwrite the repository's page).")
flags.DEFINE_list("rows", [], "Rows to run (default: all unfinished, every row's first seed before any next seed).")
flags.DEFINE_integer("max_runs", 0, "Stop after this many runs (0: no limit).", lower_bound=0)
flags.DEFINE_bool("plan", False, "Print the rows, their state and the planned CPU hours; run nothing.")
flags.DEFINE_bool("report_only", False, "Only rewrite the page from the JSONs.")
flags.DEFINE_bool("git_commit", False, "git-commit each finished run's JSON and the page.")
for _field in dataclasses.fields(plan.StudySettings):
    {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string}[_field.type](
        f"study_{_field.name}", None, f"Overrides StudySettings.{_field.name} (tiny studies and tests).")
FLAGS = flags.FLAGS
PRETRAINED_BACKBONE = "pretrained_backbone.weights.h5"


def settings_of(row):
    """The row's settings with the --study_* overrides."""
    overrides = {f.name: FLAGS[f"study_{f.name}"].value for f in dataclasses.fields(plan.StudySettings)
                 if FLAGS[f"study_{f.name}"].value is not None}
    return dataclasses.replace(plan.StudySettings(), **overrides)


def num_classes():
    from hfgd_tf.data.registry import get_dataset_spec

    return get_dataset_spec("camvid").info.num_classes


def _git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def loaded_commit():
    """The commit of the code this process runs, -dirty with uncommitted changes to the library or the study."""
    dirty = _git("status", "--porcelain", "--", "hfgd_tf", "scripts", HERE).stdout.strip()
    return _git("rev-parse", "--short", "HEAD").stdout.strip() + ("-dirty" if dirty else "")


def commit(paths, message):
    """git-commits `paths` and result JSONs a killed process left untracked, nothing else that is staged."""
    untracked = _git("ls-files", "--others", "--exclude-standard", "--", FLAGS.results_dir).stdout.split()
    paths = sorted({os.path.abspath(p) for p in paths} | {os.path.join(ROOT, p) for p in untracked if p.endswith(".json")})
    for command in (["add", *paths], ["commit", "-q", "-m", message, "--", *paths]):
        done = _git(*command)
        if done.returncode:
            sys.stderr.write(f"git {command[0]} failed ({done.stderr.strip()}): commit {', '.join(paths)} yourself\n")
            return


def prepare_records(records_dir, settings):
    """CamVid train/val and the pretrain/finetune splits as TFRecords, converted again when the frames change."""
    from hfgd_tf.data.converter import ConvertOptions, convert_split, write_manifest
    from hfgd_tf.data.registry import get_dataset_spec
    from hfgd_tf.data.tfrecord import read_manifest

    spec = get_dataset_spec("camvid")
    train, val = (spec.list_samples(FLAGS.camvid_dir, split) for split in ("train", "val"))
    pretrain, finetune = plan.holdback_split([s.name for s in train], settings.holdback_fraction,
                                             avoid=[s.name for s in val])
    by_name = {s.name: s for s in train}
    splits = {"train": train, "val": val, plan.PRETRAIN_SPLIT: [by_name[n] for n in pretrain],
              plan.FINETUNE_SPLIT: [by_name[n] for n in finetune]}
    source = {"data_dir": os.path.abspath(FLAGS.camvid_dir), "frames_sha256": {
        split: hashlib.sha256("\n".join(s.name for s in samples).encode()).hexdigest() for split, samples in splits.items()}}
    if (read_manifest(records_dir) or {}).get("source") == source:
        return
    options = ConvertOptions(progress=False, overwrite=True)
    done = {split: convert_split(samples, records_dir, split, spec.info, spec.label_table, options)
            for split, samples in splits.items()}
    write_manifest(records_dir, spec.info, done, source=source)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_dir(row, seed):
    return os.path.join(FLAGS.work_dir, "runs", row.name, f"seed{seed}")


def checkpoint_step(directory):
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(directory)
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def pretrained_weights(row, seed, rows):
    """The backbone file a fine-tuning row starts from (written by its protocol's pretraining row) and its hash.

    A run directory records the hash it started from: a resumed run must not continue on another pretraining.
    """
    path = os.path.join(FLAGS.work_dir, row.protocol, PRETRAINED_BACKBONE)
    if not os.path.isfile(path):
        source = next(r.name for r in rows if r.protocol == row.protocol and r.stage == "pretrain")
        raise ValueError(f"{row.name} starts from {source}'s weights ({path}): run {source} first")
    sha256 = file_sha256(path)
    record = os.path.join(run_dir(row, seed), "pretrained.sha256")
    if os.path.isfile(record) and open(record).read().strip() != sha256:
        raise ValueError(f"{run_dir(row, seed)} started from another pretraining: remove it to run it again")
    with open(record, "w") as handle:
        handle.write(sha256 + "\n")
    return path, sha256


def add_timing(directory, start_step, end_step, wall, cpu, commit_name):
    """Adds one process's time to <run_dir>/timing.json (a run may take several processes); returns the totals.
    Steps no process timed (a killed process's, up to its checkpoint) count as `untimed_steps`."""
    import json

    from hfgd_tf.files import write_json_atomic

    path = os.path.join(directory, "timing.json")
    timing = {"wall_seconds": 0.0, "cpu_seconds": 0.0, "processes": 0, "untimed_steps": 0, "timed_until_step": 0,
              "commits": []}
    if os.path.isfile(path):
        with open(path) as handle:
            timing.update(json.load(handle))
    timing["untimed_steps"] += max(0, start_step - timing["timed_until_step"])
    timing.update(wall_seconds=timing["wall_seconds"] + wall, cpu_seconds=timing["cpu_seconds"] + cpu,
                  processes=timing["processes"] + 1, timed_until_step=end_step,
                  commits=timing["commits"] + [commit_name])
    write_json_atomic(path, timing)
    return timing


def run_one(row, seed, rows, commit_name):
    """Trains and scores one (row, seed); writes and returns its result JSON's path."""
    import keras
    import numpy as np
    from benchmark_utils import cpu_model, graph_flops

    from hfgd_tf.backbones.weights import save_weights_by_name
    from hfgd_tf.files import write_json_atomic
    from hfgd_tf.train import Trainer

    settings = settings_of(row)
    directory = run_dir(row, seed)
    os.makedirs(directory, exist_ok=True)
    weights, sha256 = pretrained_weights(row, seed, rows) if row.stage == "finetune" else ("", None)
    configs = plan.run_configs(row, seed, settings, os.path.join(FLAGS.work_dir, "records"), directory,
                               num_classes(), weights)
    keras.backend.clear_session()
    trainer = Trainer(*configs)
    start_step, start, cpu_start = checkpoint_step(directory), time.time(), time.process_time()
    trainer.train()
    step = int(trainer.step.numpy())
    timing = add_timing(directory, start_step, step, time.time() - start, time.process_time() - cpu_start, commit_name)
    if trainer.preempted or step != configs[3].total_steps:
        raise ValueError(f"{row.name} seed {seed} stopped at step {step} of {configs[3].total_steps}; rerun to resume"
                         + ("" if trainer.preempted else f" (or remove {directory}: its checkpoints are of another schedule)"))
    cpu_start = time.process_time()
    metrics = trainer.evaluate()
    eval_cpu = time.process_time() - cpu_start
    if row.stage == "pretrain":
        path = os.path.join(FLAGS.work_dir, row.protocol, PRETRAINED_BACKBONE)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = path.replace(".weights.h5", ".incomplete.weights.h5")  # no half-written file under the name
        save_weights_by_name(trainer.model.backbone, temporary)
        os.replace(temporary, path)
        sha256 = file_sha256(path)
    model = trainer.model
    variables = model.trainable_variables if not configs[3].freeze_backbone else [
        v for v in model.weights if "moving" not in v.path]
    result = {
        "row": row.name, "protocol": row.protocol, "title": row.title, "seed": seed,
        "settings": dataclasses.asdict(settings),
        "model_config": dataclasses.asdict(configs[0]), "optimizer_config": dataclasses.asdict(configs[2]),
        "train_config": {k: v for k, v in dataclasses.asdict(configs[3]).items() if k != "checkpoint_dir"},
        "data_config": {k: v for k, v in dataclasses.asdict(configs[1]).items() if k not in ("records_dir", "info")},
        "steps": configs[3].total_steps, "train_split": configs[1].train_split,
        "miou": metrics["miou"], "pixel_accuracy": metrics["pixel_accuracy"], "per_class_iou": metrics["per_class_iou"],
        "num_val_images": metrics["num_images"],
        "params_m": sum(int(np.prod(v.shape)) for v in variables) / 1e6,
        "gflops": graph_flops(model, (plan.EVAL_HEIGHT, plan.EVAL_WIDTH)) / 1e9,
        "train_seconds": round(timing["wall_seconds"], 1), "train_cpu_seconds": round(timing["cpu_seconds"], 1),
        "train_processes": timing["processes"], "untimed_steps": timing["untimed_steps"],
        "eval_cpu_seconds": round(eval_cpu, 1), "pretrained_backbone_sha256": sha256, "commit": commit_name,
        **({"process_commits": timing["commits"]} if len(set(timing["commits"])) > 1 else {}),
        "machine": f"{cpu_model()}, {os.cpu_count()} cores, no GPU",
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    path = report.result_path(FLAGS.results_dir, row.name, seed)
    write_json_atomic(path, result)
    print(f"{row.name} seed {seed}: mIoU {100 * metrics['miou']:.2f} -> {path}")
    return path


LIMITS = (
    "- Scale: ResNet-18 from random weights or pretrained on 75% of CamVid's 367 train frames is far from the "
    "paper's setting (ImageNet-pretrained ResNet-101 / ConvNeXt / Swin, Pascal Context or COCO-Stuff, 30k-80k "
    "iterations of batch 16 on 8 GPUs). Where a verdict says \"does not hold\" or \"within seed noise\", the claim is "
    "not confirmed at this scale; that is not evidence against it at the paper's scale, which needs ImageNet weights "
    "(`--backbone_weights_path`), Pascal Context 59 and GPUs.",
    "- CamVid's val frames (0016E5_07959-08159) lie inside the train part of sequence 0016E5: every model trained on "
    "frames a second away from val, so val mIoU is optimistic (fine-tuning holds back the 0016E5 block farthest "
    "from val).",
    "- SemanticFPN is the paper's baseline as published: a jointly trained FPN head with no CAE and no high-level "
    "branch or loss. \"HFGD beats SemanticFPN\" compares more than the isolation of the upsampler; the rows that "
    "take one part away from HFGD full test the parts one by one.",
)


def page_path():
    if FLAGS.report:
        return FLAGS.report
    if os.path.realpath(FLAGS.results_dir) == os.path.realpath(DEFAULT_RESULTS):
        return os.path.join(ROOT, "docs", "results.md")
    return os.path.join(FLAGS.results_dir, "results.md")


def page_meta():
    """What the page says of where its numbers come from, and its limits."""
    source = os.path.relpath(FLAGS.results_dir, ROOT)
    return {"command": "python experiments/camvid_study/run.py", "source": source, "limits": LIMITS}


def write_page(rows, results):
    from hfgd_tf.data.registry import get_dataset_spec
    from hfgd_tf.files import write_bytes_atomic

    text = report.render_page(rows, results, settings_of, list(get_dataset_spec("camvid").info.class_names),
                              page_meta())
    return write_bytes_atomic(page_path(), text.encode())


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    rows = plan.study_rows()
    try:
        for row in rows:
            settings_of(row)
    except ValueError as error:
        raise app.UsageError(f"--study_*: {error}")
    unknown = sorted(set(FLAGS.rows) - {row.name for row in rows})
    if unknown:
        raise app.UsageError(f"--rows: unknown {unknown}; known: {[row.name for row in rows]}")
    os.makedirs(FLAGS.results_dir, exist_ok=True)
    try:
        results = report.load_results(FLAGS.results_dir, rows, settings_of, num_classes())
    except ValueError as error:
        raise app.UsageError(str(error))
    finished = {(r["row"], r["seed"]) for r in results}
    pending = sorted(((row, seed) for row in rows if not FLAGS.rows or row.name in FLAGS.rows for seed in row.seeds
                      if (row.name, seed) not in finished), key=lambda run: (run[1], rows.index(run[0])))
    if FLAGS.plan:
        for row in rows:
            state = ["done" if (row.name, s) in finished else "todo" for s in row.seeds]
            print(f"{row.name:28s} {row.stage:9s} {plan.row_steps(row, settings_of(row)):5d} steps  seeds "
                  f"{list(row.seeds)} {state}  {row.title}")
        print(f"{len(pending)} runs to do: {', '.join(f'{row.name} seed {seed}' for row, seed in pending) or 'none'}")
        return
    if not FLAGS.report_only and pending:
        if not os.path.isdir(FLAGS.camvid_dir):
            raise app.UsageError(f"--camvid_dir {FLAGS.camvid_dir!r} is not a directory (CamVid, SegNet layout)")
        logging.set_verbosity(logging.INFO)
        import hfgd_tf.train  # noqa: F401  (the code the runs use, loaded before its commit is named)

        commit_name = loaded_commit()
        try:
            prepare_records(os.path.join(FLAGS.work_dir, "records"), settings_of(rows[0]))
        except ValueError as error:
            raise app.UsageError(f"--camvid_dir {FLAGS.camvid_dir!r}: {error}")
        for count, (row, seed) in enumerate(pending):
            if FLAGS.max_runs and count >= FLAGS.max_runs:
                print(f"Stopped after --max_runs={FLAGS.max_runs}; {len(pending) - count} runs left")
                break
            try:
                path = run_one(row, seed, rows, commit_name)
            except ValueError as error:
                sys.exit(f"{row.name} seed {seed}: {error}")
            results.append(report.read_result(path))
            page = write_page(rows, results)
            if FLAGS.git_commit:
                commit([path, page], f"CamVid study: {row.name} seed {seed}")
    print(f"Wrote {write_page(rows, results)}")


if __name__ == "__main__":
    app.run(main)
