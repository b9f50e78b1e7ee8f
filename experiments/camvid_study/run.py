"""Runs the CamVid study of HFGD's claims and writes its page (README.md beside this file says what it is).

    python experiments/camvid_study/run.py --plan                 # rows, seeds, what is finished, planned CPU hours
    nice -n 19 python experiments/camvid_study/run.py --git_commit  # every unfinished run, one at a time
    python experiments/camvid_study/run.py --report_only          # rewrite docs/results.md from the JSONs
    python experiments/camvid_study/run.py --stamp_reading        # after editing reading.md: it is up to date

Resumable: a finished (row, seed) has its JSON in --results_dir and is skipped; a killed run resumes from its last
checkpoint in <work_dir>/runs/<row>/seed<seed>-<config hash>. A JSON is written (atomically) only once a run has trained its last
step and been scored. Records, checkpoints and pretrained weights stay in --work_dir, outside the repository
(CamVid's licence: the data is not redistributed inside the project).
"""

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time

import plan
import report
from absl import app, flags, logging

from hfgd_tf.files import write_bytes_atomic, write_json_atomic

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

flags.DEFINE_string(
    "camvid_dir",
    os.path.join(os.path.dirname(ROOT), "shared", "data", "camvid"),
    "CamVid: images/ and labels/ per split, or the SegNet tutorial's CamVid/ folder (README.md beside run.py).",
)
flags.DEFINE_string(
    "work_dir",
    os.path.join(os.path.dirname(ROOT), "hfgd_study_work"),
    "Records, checkpoints and pretrained weights (outside the repository).",
)
DEFAULT_RESULTS = os.path.join(HERE, "results")
flags.DEFINE_string("results_dir", DEFAULT_RESULTS, "One JSON per finished (row, seed).")
flags.DEFINE_string(
    "report",
    "",
    "The page to write; default docs/results.md for the default --results_dir, "
    "else <results_dir>/results.md (a study elsewhere does not overwrite the repository's page).",
)
flags.DEFINE_list("rows", [], "Rows to run (default: all unfinished, every row's first seed before any next seed).")
flags.DEFINE_integer("max_runs", 0, "Stop after this many runs (0: no limit).", lower_bound=0)
flags.DEFINE_bool("plan", False, "Print the rows, their state and the planned CPU hours; run nothing.")
flags.DEFINE_bool("report_only", False, "Only rewrite the page from the JSONs.")
flags.DEFINE_bool(
    "stamp_reading",
    False,
    "Mark the hand-written reading (reading.md beside run.py for the study's own results, else in --results_dir) as "
    "written with the runs finished now, then rewrite the page; run nothing.",
)
flags.DEFINE_bool("git_commit", False, "git-commit each finished run's JSON and the page.")
flags.DEFINE_enum(
    "position_encoding",
    None,
    ["index", "normalized"],
    "Overrides plan.CHOSEN_POSITION_ENCODING (tiny studies and tests; the study's choice is made there).",
)
for _field in dataclasses.fields(plan.StudySettings):
    {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string}[_field.type](
        f"study_{_field.name}", None, f"Overrides StudySettings.{_field.name} (tiny studies and tests)."
    )
FLAGS = flags.FLAGS


def settings_of(row):
    """The row's settings (`plan.row_settings`) with the --study_* overrides."""
    overrides = {
        f.name: FLAGS[f"study_{f.name}"].value
        for f in dataclasses.fields(plan.StudySettings)
        if FLAGS[f"study_{f.name}"].value is not None
    }
    return plan.row_settings(row, overrides)


def num_classes():
    from hfgd_tf.data.registry import get_dataset_spec

    return get_dataset_spec("camvid").info.num_classes


def _git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def loaded_commit():
    """The commit of the code this process runs, -dirty with uncommitted changes to the library or the study."""
    # The results are written by the study itself, the reading by hand: neither changes what a run computes.
    excluded = [f":(exclude){os.path.relpath(path, ROOT)}" for path in (DEFAULT_RESULTS, reading_path())]
    dirty = _git(
        "status", "--porcelain", "--", "hfgd_tf", "scripts", os.path.relpath(HERE, ROOT), *excluded
    ).stdout.strip()
    return _git("rev-parse", "--short", "HEAD").stdout.strip() + ("-dirty" if dirty else "")


def commit(paths, message):
    """git-commits `paths` and result JSONs a killed process left untracked, nothing else that is staged."""
    untracked = _git("ls-files", "--others", "--exclude-standard", "--", FLAGS.results_dir).stdout.split()
    paths = sorted(
        {os.path.abspath(p) for p in paths} | {os.path.join(ROOT, p) for p in untracked if p.endswith(".json")}
    )
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
    pretrain, finetune = plan.holdback_split(
        [s.name for s in train], settings.holdback_fraction, avoid=[s.name for s in val]
    )
    by_name = {s.name: s for s in train}
    splits = {
        "train": train,
        "val": val,
        plan.PRETRAIN_SPLIT: [by_name[n] for n in pretrain],
        plan.FINETUNE_SPLIT: [by_name[n] for n in finetune],
    }
    source = {
        "data_dir": os.path.abspath(FLAGS.camvid_dir),
        "frames_sha256": {
            split: hashlib.sha256("\n".join(s.name for s in samples).encode()).hexdigest()
            for split, samples in splits.items()
        },
    }
    if (read_manifest(records_dir) or {}).get("source") == source:
        return
    options = ConvertOptions(progress=False, overwrite=True)
    done = {
        split: convert_split(samples, records_dir, split, spec.info, spec.label_table, options)
        for split, samples in splits.items()
    }
    write_manifest(records_dir, spec.info, done, source=source)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_dir(row, seed):
    """<work_dir>/runs/<row>/seed<seed>-<hash of the run's configs>: a run trained otherwise (another setting, an
    edited row) gets a fresh directory instead of resuming checkpoints of another schedule."""
    configs = plan.run_configs(row, seed, settings_of(row), "<records>", "<run>", num_classes())
    text = json.dumps([dataclasses.asdict(config) for config in configs], sort_keys=True, default=str)
    return os.path.join(
        FLAGS.work_dir, "runs", row.name, f"seed{seed}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"
    )


def checkpoint_step(directory):
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(directory)
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def pretrained_files(name):
    """The backbone and the whole-model weights a pretraining row leaves for the rows that start from it."""
    return tuple(
        os.path.join(FLAGS.work_dir, "pretrained", f"{name}.{part}.weights.h5") for part in ("backbone", "model")
    )


def pretrained_weights(row, seed):
    """`(backbone file, model file, hash of the backbone file)` a fine-tuning row starts from.

    A run directory records the hash it started from: a resumed run must not continue on another pretraining.
    """
    backbone, model = pretrained_files(row.init_from)
    if not os.path.isfile(backbone if row.init == "backbone" else model):
        raise ValueError(
            f"{row.name} starts from {row.init_from}'s weights ({os.path.dirname(backbone)}): run {row.init_from} first"
        )
    sha256 = file_sha256(backbone)
    record = os.path.join(run_dir(row, seed), "pretrained.sha256")
    if os.path.isfile(record) and open(record).read().strip() != sha256:
        raise ValueError(f"{run_dir(row, seed)} started from another pretraining: remove it to run it again")
    with open(record, "w") as handle:
        handle.write(sha256 + "\n")
    return backbone, model, sha256


def save_pretrained(row, model):
    """Writes the pretraining's backbone and whole model where the fine-tuning rows read them (under a temporary
    name first: a crash leaves no half-written file); returns the backbone file's hash."""
    from hfgd_tf.backbones.weights import save_weights_by_name

    for path, weights in zip(pretrained_files(row.name), (model.backbone, model)):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = path.replace(".weights.h5", ".incomplete.weights.h5")
        save_weights_by_name(weights, temporary)
        os.replace(temporary, path)
    return file_sha256(pretrained_files(row.name)[0])


def check_initialised(trainer, model_file):
    """Raises unless every weight of the pretrained model found its place in the fine-tuned one (the trainer
    loads by path and skips what does not fit: a renamed layer would otherwise start fresh unnoticed)."""
    from hfgd_tf.backbones.weights import load_weights_by_name

    loaded = load_weights_by_name(trainer.model, model_file, skip_mismatch=True)  # the same values again
    if loaded["unexpected"] or loaded["mismatched"]:
        raise ValueError(
            f"{model_file} does not fit the fine-tuned model: not loaded "
            f"{(loaded['unexpected'] + loaded['mismatched'])[:5]}"
        )


def score(trainer, settings):
    """mIoU of the prediction and, for HFGD, of its OS32 guidance head, on the whole image and by a sliding
    window at the training crop: `{head: {"whole" | "sliding": {"miou", "pixel_accuracy", "per_class_iou"}}}`."""
    from hfgd_tf.evaluation.config import EvalConfig

    heads = ["logits", "logits_high"] if trainer.model_config.upsampler == "usfpn" else ["logits"]
    scores = {}
    for head in heads:
        for mode, window in (("whole", (0, 0)), ("sliding", (settings.crop_height, settings.crop_width))):
            trainer.eval_config = EvalConfig(
                eval_batch_size=1, scored_output=head, sliding_window_height=window[0], sliding_window_width=window[1]
            )
            metrics = trainer.evaluate()
            scores.setdefault(head, {})[mode] = {
                key: metrics[key] for key in ("miou", "pixel_accuracy", "per_class_iou")
            }
    return scores


def diagnostic_point(model, data_config, num_images=20):
    """How often the prediction's class is the guidance's (`logits_high` resized bilinearly to the input), over
    the labelled pixels of the first `num_images` val frames, and the Frobenius norm of the class kernels."""
    import numpy as np
    import tensorflow as tf

    from hfgd_tf.data import build_eval_dataset

    same = total = 0
    for image, label in build_eval_dataset(data_config, batch_size=1).take(num_images):
        outputs = model(image, training=False)
        guidance = tf.image.resize(outputs["logits_high"], tf.shape(outputs["logits"])[1:3], method="bilinear")
        valid = label.numpy() != data_config.info.ignore_label
        agree = tf.argmax(outputs["logits"], -1).numpy() == tf.argmax(guidance, -1).numpy()
        same, total = same + int(np.sum(agree & valid)), total + int(np.sum(valid))
    kernel = next(w for w in model.class_kernels.weights if w.path.endswith("kernel"))
    return {
        "agreement": same / max(total, 1),
        "kernel_norm": float(np.linalg.norm(kernel.numpy())),
        "num_images": num_images,
    }


def diagnostic_recorder(trainer, directory):
    """An `evaluate_fn` for the trainer: records a `diagnostic_point` at the current step in
    <run_dir>/diagnostic.json (kept across a resumed run), then scores a few val frames for the trainer's log."""
    path = os.path.join(directory, "diagnostic.json")

    def record(model):
        series = json.load(open(path)) if os.path.isfile(path) else {}
        series[str(int(trainer.step.numpy()))] = diagnostic_point(model, trainer.data_config)
        write_json_atomic(path, series)
        return trainer.evaluate(model, max_batches=20)

    return record, path


def add_timing(directory, start_step, end_step, wall, cpu, commit_name):
    """Adds one process's time to <run_dir>/timing.json (a run may take several processes); returns the totals.
    Steps no process timed (a killed process's, up to its checkpoint) count as `untimed_steps`."""

    path = os.path.join(directory, "timing.json")
    timing = {
        "wall_seconds": 0.0,
        "cpu_seconds": 0.0,
        "processes": 0,
        "untimed_steps": 0,
        "timed_until_step": 0,
        "commits": [],
    }
    if os.path.isfile(path):
        with open(path) as handle:
            timing.update(json.load(handle))
    timing["untimed_steps"] += max(0, start_step - timing["timed_until_step"])
    timing.update(
        wall_seconds=timing["wall_seconds"] + wall,
        cpu_seconds=timing["cpu_seconds"] + cpu,
        processes=timing["processes"] + 1,
        timed_until_step=end_step,
        commits=timing["commits"] + [commit_name],
    )
    write_json_atomic(path, timing)
    return timing


def run_one(row, seed, rows, commit_name):
    """Trains and scores one (row, seed); writes and returns its result JSON's path."""
    import keras
    import numpy as np

    from hfgd_tf.cli.benchmarking import cpu_model, graph_flops
    from hfgd_tf.train import Trainer

    settings = settings_of(row)
    directory = run_dir(row, seed)
    os.makedirs(directory, exist_ok=True)
    backbone, whole, sha256 = pretrained_weights(row, seed) if row.stage == "finetune" else ("", "", None)
    configs = plan.run_configs(
        row, seed, settings, os.path.join(FLAGS.work_dir, "records"), directory, num_classes(), backbone, whole
    )
    keras.backend.clear_session()
    trainer = Trainer(*configs)
    if configs[3].init_weights_path:
        check_initialised(trainer, configs[3].init_weights_path)
    start_step, start, cpu_start = checkpoint_step(directory), time.time(), time.process_time()
    evaluate_fn, series_path = diagnostic_recorder(trainer, directory) if row.diagnostic else (None, "")
    if row.diagnostic and start_step == 0:
        evaluate_fn(trainer.model)  # the guidance's agreement before the upsampler has trained
    trainer.train(evaluate_fn=evaluate_fn)
    step = int(trainer.step.numpy())
    timing = add_timing(directory, start_step, step, time.time() - start, time.process_time() - cpu_start, commit_name)
    if trainer.preempted or step != configs[3].total_steps:
        raise ValueError(
            f"stopped at step {step} of {configs[3].total_steps}; rerun to resume"
            + ("" if trainer.preempted else f" (or remove {directory}: its checkpoints are of another schedule)")
        )
    cpu_start = time.process_time()
    scores = score(trainer, settings)
    metrics = scores["logits"]["whole"]
    eval_cpu = time.process_time() - cpu_start
    if row.stage == "pretrain":
        sha256 = save_pretrained(row, trainer.model)
    model = trainer.model
    variables = (
        model.trainable_variables
        if not configs[3].freeze_backbone
        else [v for v in model.weights if "moving" not in v.path]
    )
    result = {
        "row": row.name,
        "protocol": row.protocol,
        "title": row.title,
        "seed": seed,
        "settings": dataclasses.asdict(settings),
        "model_config": dataclasses.asdict(configs[0]),
        "optimizer_config": dataclasses.asdict(configs[2]),
        "train_config": {k: v for k, v in dataclasses.asdict(configs[3]).items() if k != "checkpoint_dir"},
        "data_config": {k: v for k, v in dataclasses.asdict(configs[1]).items() if k != "data_dir"},  # a local path
        "steps": configs[3].total_steps,
        "train_split": configs[1].train_split,
        "miou": metrics["miou"],
        "pixel_accuracy": metrics["pixel_accuracy"],
        "per_class_iou": metrics["per_class_iou"],
        "scores": scores,
        **(
            {
                "diagnostic": [
                    {"step": int(step), **point}
                    for step, point in sorted(json.load(open(series_path)).items(), key=lambda item: int(item[0]))
                ]
            }
            if row.diagnostic
            else {}
        ),
        "params_m": sum(int(np.prod(v.shape)) for v in variables) / 1e6,
        "gflops": graph_flops(model, (plan.EVAL_HEIGHT, plan.EVAL_WIDTH)) / 1e9,
        "train_seconds": round(timing["wall_seconds"], 1),
        "train_cpu_seconds": round(timing["cpu_seconds"], 1),
        "train_processes": timing["processes"],
        "untimed_steps": timing["untimed_steps"],
        "eval_cpu_seconds": round(eval_cpu, 1),
        "pretrained_backbone_sha256": sha256,
        "commit": commit_name,
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
    'iterations of batch 16 on 8 GPUs). Where a verdict says "does not hold" or "within seed noise", the claim is '
    "not confirmed at this scale; that is not evidence against it at the paper's scale, which needs ImageNet weights "
    "(`--backbone_weights_path`), Pascal Context 59 and GPUs.",
    "- Protocol A' pretrains on CamVid itself, a weak stand-in for the ImageNet features HFGD means to protect, "
    "and fine-tunes on frames of the same streets: contamination of generic features by a jointly trained head "
    "on a new, small dataset is what the premise is about, and testing it needs ImageNet weights and a dataset "
    "unlike the pretraining (Pascal Context).",
    "- CamVid's val frames (0016E5_07959-08159) lie inside the train part of sequence 0016E5: every model trained on "
    "frames a second away from val, so val mIoU is optimistic (fine-tuning holds back the 0016E5 block farthest "
    "from val).",
    "- SemanticFPN is the paper's baseline as published: a jointly trained FPN head with no CAE and no high-level "
    'branch or loss. "HFGD beats SemanticFPN" compares more than the isolation of the upsampler; the rows that '
    "take one part away from HFGD full test the parts one by one.",
)


def own_results():
    """Whether --results_dir is the study's own (committed) results, whose page and reading live in the repository."""
    return os.path.realpath(FLAGS.results_dir) == os.path.realpath(DEFAULT_RESULTS)


def page_path():
    if FLAGS.report:
        return FLAGS.report
    if own_results():
        return os.path.join(ROOT, "docs", "results.md")
    return os.path.join(FLAGS.results_dir, "results.md")


def reading_path():
    """The hand-written reading of the results: reading.md beside this file for the study's own results, else in
    --results_dir."""
    if own_results():
        return os.path.join(HERE, "reading.md")
    return os.path.join(FLAGS.results_dir, "reading.md")


def read_reading():
    path = reading_path()
    if not os.path.isfile(path):
        return ""
    with open(path, encoding="utf-8-sig") as handle:  # -sig: an editor's byte-order mark is not part of the stamp
        return handle.read()


def page_meta():
    """What the page says of where its numbers come from, its limits and the hand-written reading."""
    source = os.path.relpath(FLAGS.results_dir, ROOT)
    notes = []
    if not (FLAGS.position_encoding or plan.CHOSEN_POSITION_ENCODING):
        notes.append(
            "Not planned yet: Protocols A', B' and the diagnostic wait for the position-encoding choice "
            "(rows `PE_index` and `PE_normalized`)."
        )
    return {
        "command": "python experiments/camvid_study/run.py",
        "source": source,
        "limits": LIMITS,
        "notes": notes,
        "reading": read_reading(),
    }


def write_page(rows, results):
    from hfgd_tf.data.registry import get_dataset_spec

    meta = page_meta()
    try:
        report.reading_section(meta["reading"], results, rows)
    except ValueError as error:  # reading.md edited while a study runs: the run's result stands, the page is written
        sys.stderr.write(f"{reading_path()}: {error}; the page is written without the reading\n")
        meta["reading"] = ""
    text = report.render_page(rows, results, settings_of, list(get_dataset_spec("camvid").info.class_names), meta)
    return write_bytes_atomic(page_path(), text.encode())


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    rows = plan.study_rows(FLAGS.position_encoding)
    try:
        for row in rows:
            settings_of(row)
    except ValueError as error:
        raise app.UsageError(f"--study_*: {error}")
    runnable = [row.name for row in rows if not row.legacy]
    unknown = sorted(set(FLAGS.rows) - set(runnable))
    if unknown:
        raise app.UsageError(
            f"--rows: {unknown} not runnable (unknown, or a first-study row, never run again); runnable: {runnable}"
        )
    if os.path.exists(FLAGS.results_dir) and not os.path.isdir(FLAGS.results_dir):
        raise app.UsageError(f"--results_dir {FLAGS.results_dir!r} is a file, not a directory of result JSONs")
    new_study = not os.path.isdir(FLAGS.results_dir)
    if new_study and (FLAGS.report_only or FLAGS.stamp_reading):  # a typo must not write the page of an empty study
        raise app.UsageError(f"--results_dir {FLAGS.results_dir!r} does not exist")
    if new_study and FLAGS.plan:
        print(f"--results_dir {FLAGS.results_dir!r} does not exist yet: a new study, nothing finished")
    elif new_study:
        os.makedirs(FLAGS.results_dir)
    try:
        results = [] if new_study else report.load_results(FLAGS.results_dir, rows, settings_of, num_classes())
    except ValueError as error:
        raise app.UsageError(str(error))
    if FLAGS.stamp_reading:
        reading = read_reading()
        if not reading.strip():
            raise app.UsageError(f"--stamp_reading: no reading to stamp at {reading_path()}")
        if not results:
            raise app.UsageError(f"--stamp_reading: no finished runs in {FLAGS.results_dir} to stamp the reading with")
        write_bytes_atomic(reading_path(), report.stamp_reading(reading, results, rows).encode())
        print(f"Stamped {reading_path()} with {len(results)} finished runs; wrote {write_page(rows, results)}")
        return
    if not FLAGS.plan:  # the reading is prose: it does not stop a look at the plan
        try:
            report.reading_section(read_reading(), results, rows)
        except ValueError as error:
            raise app.UsageError(f"{reading_path()}: {error}")
    finished = {(r["row"], r["seed"]) for r in results}
    # Every row's first seed before any row's next one (a pretraining before the rows that start from it): a
    # study cut short still has every row. Legacy rows are never run again.
    pending = sorted(
        (
            (row, seed)
            for row in rows
            if not row.legacy and (not FLAGS.rows or row.name in FLAGS.rows)
            for seed in row.seeds
            if (row.name, seed) not in finished
        ),
        key=lambda run: (run[1], rows.index(run[0])),
    )
    if FLAGS.plan:
        for row in rows:
            state = ["done" if (row.name, s) in finished else "kept" if row.legacy else "todo" for s in row.seeds]
            print(
                f"{row.name:28s} {row.stage:9s} {plan.row_steps(row, settings_of(row)):5d} steps  seeds "
                f"{list(row.seeds)} {state}  {row.title}"
            )
        hours = sum(plan.run_cpu_seconds(row, settings_of(row)) for row, _ in pending) / 3600
        print(f"{len(pending)} runs to do: {', '.join(f'{row.name} seed {seed}' for row, seed in pending) or 'none'}")
        print(
            f"Planned: about {hours:.1f} CPU-hours for them (plan.SECONDS_PER_STEP and SECONDS_PER_SCORING: the "
            "costs measured on this machine; contention on a shared machine can double them)"
        )
        if not (FLAGS.position_encoding or plan.CHOSEN_POSITION_ENCODING):
            print(
                "Not planned yet: the rows that need the position-encoding choice (Protocols A', B', the "
                "diagnostic); once PE_index and PE_normalized are scored, set plan.CHOSEN_POSITION_ENCODING"
            )
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
