"""The CamVid study of HFGD's claims (hfgd_tf/studies/camvid_ablations.py): runs rows, writes docs/results.md.

    python scripts/run_ablations.py --plan                   # the rows, their seeds, which are finished
    python scripts/run_ablations.py                          # every unfinished run, then the page
    python scripts/run_ablations.py --max_runs=3 --git_commit  # a session's worth; commit each result JSON (and
                                                             # one a killed process left uncommitted)
    python scripts/run_ablations.py --rows=B_sfpn,B_hfgd     # only these rows
    python scripts/run_ablations.py --report_only            # rewrite docs/results.md and README's headline
    python scripts/run_ablations.py --figures                # val scenes side by side (not committed)

Resumable: a finished (row, seed) has its JSON in --results_dir and is skipped; a killed or preempted
(SIGTERM) run resumes from the last checkpoint in <work_dir>/<settings key>/runs/<row>/seed<seed>; a JSON
is written only for a run that reached its last step. Records, checkpoints and figures live in
--work_dir, per settings (a hash of the --study_* values), outside the repository (CamVid's licence:
do not redistribute the data inside the project).
The page and README.md's results headline (between the markers in camvid_ablations.README_START/END)
are rewritten after every finished run, from the JSONs only.
Runs one at a time: the machine has 2 cores.
"""

import dataclasses
import glob
import hashlib
import os
import subprocess
import sys
import time

from absl import app, flags, logging

import common_flags

from hfgd_tf.studies import camvid_ablations as study

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
defaults = study.StudySettings()
flags.DEFINE_string("camvid_dir", os.path.join(os.path.dirname(ROOT), "shared", "data", "camvid"), "CamVid (SegNet layout).")
flags.DEFINE_string("work_dir", os.path.join(os.path.dirname(ROOT), "hfgd_ablation_work"), "Records, checkpoints, figures.")
DEFAULT_RESULTS_DIR = os.path.join(ROOT, "docs", "results")
flags.DEFINE_string("results_dir", DEFAULT_RESULTS_DIR, "One JSON per finished (row, seed).")
DEFAULT_REPORT = os.path.join(ROOT, "docs", "results.md")
flags.DEFINE_string(
    "report", DEFAULT_REPORT,
    "The results page. Not given, the repository's page is written only from the default --results_dir; from "
    "another --results_dir the page goes to <results_dir>/results.md (a study elsewhere does not overwrite it).",
)
flags.DEFINE_string(
    "readme", os.path.join(ROOT, "README.md"),
    "File whose results headline (between the markers study.README_START and study.README_END) is rewritten with "
    "the page; '' leaves it alone. Not given, the repository's README is rewritten only from the default "
    "--results_dir (a study elsewhere does not overwrite its numbers).",
)
flags.DEFINE_list("rows", [], "Rows to run (default: all; every row's first seed in table order, then the next seeds).")
flags.DEFINE_integer("max_runs", 0, "Stop after this many runs (0: no limit).", lower_bound=0)
flags.DEFINE_bool("plan", False, "Print the rows and their state, run nothing.")
flags.DEFINE_bool("report_only", False, "Only rewrite the page from the JSONs.")
flags.DEFINE_bool(
    "figures", False,
    "Write val scenes side by side (image, truth, SemanticFPN, HFGD; per protocol, the lowest seed whose two runs "
    "have finished and still have their run directories in --work_dir) to <work_dir>/<settings key>/figures.",
)
flags.DEFINE_bool("git_commit", False, "git-commit each finished run's JSON and the page.")
for _field in dataclasses.fields(study.StudySettings):
    _define = {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string}[_field.type]
    _define(f"study_{_field.name}", getattr(defaults, _field.name), f"StudySettings.{_field.name}.")
FLAGS = flags.FLAGS


def _settings():
    return study.StudySettings(**{f.name: getattr(FLAGS, f"study_{f.name}") for f in dataclasses.fields(study.StudySettings)})


def _load_results(settings):
    named, wrong = [], []
    for path in sorted(glob.glob(os.path.join(FLAGS.results_dir, "*.json"))):
        result = study.read_result(path)
        if result.get("settings") != dataclasses.asdict(settings):
            wrong.append(os.path.basename(path))
        named.append((path, result))
    if wrong:
        raise ValueError(
            f"{len(wrong)} result files in {FLAGS.results_dir} were made with other study settings ({', '.join(wrong[:4])}"
            f"{', ...' if len(wrong) > 4 else ''}): give the same --study_* flags, or move those files away"
        )
    rows = study.study_rows()
    study.check_results(rows, named)
    from hfgd_tf.data.registry import get_dataset_spec

    study.check_configs(rows, named, settings, get_dataset_spec("camvid").info.num_classes)
    results = [result for _, result in named]
    backbone = _settings_dir(settings, PRETRAINED_BACKBONE)
    study.check_one_pretrained_backbone(results, study.file_sha256(backbone) if os.path.isfile(backbone) else None)
    return results


def _git_run(*args):
    """The finished `git` process (never raises; callers read its returncode and output)."""
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def _git(*args):
    return _git_run(*args).stdout.strip()


def _commit(paths, message):
    """git-commits `paths`, and result JSONs an earlier process left untracked, and nothing else (not whatever
    else is staged); says so when git refuses. The README goes in only when it differs from HEAD inside the
    headline markers alone, so that a user's unfinished edits elsewhere in it are not swept into a study commit."""
    readme = _readme_path()
    if readme in paths:
        head = _git_run("show", f"HEAD:{os.path.relpath(readme, ROOT)}")
        with open(readme, encoding="utf-8") as handle:
            current = handle.read()
        if head.returncode or not study.differs_only_in_headline(head.stdout, current):
            paths = [path for path in paths if path != readme]
            sys.stderr.write(
                f"{readme}: not committed (it has changes outside the results headline, or is not in the "
                "repository); its headline is rewritten, commit it yourself\n"
            )
    # A result left uncommitted by an earlier process (killed between writing its JSON and committing it).
    listed = {os.path.realpath(path) for path in paths}
    orphans = [path for path in _uncommitted_results() if os.path.realpath(path) not in listed]
    if orphans:
        names = ", ".join(os.path.basename(path) for path in orphans)
        print(f"Also committing results an earlier process left uncommitted: {names}")
        paths, message = [*paths, *orphans], f"{message} (and {names}, left uncommitted by an earlier process)"
    for command in (["add", *paths], ["commit", "-q", "-m", message, "--", *paths]):
        done = _git_run(*command)
        if done.returncode:
            sys.stderr.write(f"git {command[0]} failed ({done.stderr.strip()}): commit {', '.join(paths)} yourself\n")
            return


def _uncommitted_results():
    """Result JSONs in --results_dir that git reports as untracked (absolute paths): results a killed process
    wrote but did not commit. Hand-edited tracked results are not among them."""
    results_dir = os.path.abspath(FLAGS.results_dir)
    status = _git_run("status", "--porcelain", "-z", "--untracked-files=all", "--", results_dir)
    top = _git_run("rev-parse", "--show-toplevel")
    if status.returncode or top.returncode:
        return []  # --results_dir outside the repository
    # -z: NUL-separated "XY path" records, paths unquoted (a rename adds its old path as the next record).
    untracked = [record[3:] for record in status.stdout.split("\0") if record.startswith("?? ")]
    return [os.path.join(top.stdout.strip(), path) for path in untracked if path.endswith(".json")]


def _machine():
    from benchmark_utils import cpu_model

    return f"{cpu_model()}, {os.cpu_count()} cores, no GPU"


def _prepare_records(records_dir):
    """CamVid train/val plus the study's pretrain/finetune splits, converted once into `records_dir`."""
    from hfgd_tf.data.converter import ConvertOptions, convert_split, write_manifest
    from hfgd_tf.data.registry import get_dataset_spec
    from hfgd_tf.data.tfrecord import read_manifest

    settings = _settings()
    spec = get_dataset_spec("camvid")
    train = spec.list_samples(FLAGS.camvid_dir, "train")
    val = spec.list_samples(FLAGS.camvid_dir, "val")
    pretrain, finetune = study.holdback_split(
        [s.name for s in train], settings.holdback_fraction, avoid=[s.name for s in val]
    )
    by_name = {s.name: s for s in train}
    splits = {
        "train": train,
        "val": val,
        study.PRETRAIN_SPLIT: [by_name[n] for n in pretrain],
        study.FINETUNE_SPLIT: [by_name[n] for n in finetune],
    }
    # What each split holds (its frame names) and where from: records of another CamVid directory or split are
    # redone (the frames' contents are not hashed: a copy changed in place under the same names is not noticed).
    source = {
        "data_dir": os.path.abspath(FLAGS.camvid_dir),
        "frames_sha256": {k: hashlib.sha256("\n".join(s.name for s in v).encode()).hexdigest() for k, v in splits.items()},
    }
    manifest = read_manifest(records_dir) or {}
    done, recorded = manifest.get("splits", {}), manifest.get("source") or {}
    if "frames_sha256" not in recorded and recorded.get("data_dir") == source["data_dir"]:
        # Records converted before the frame names were recorded: their example counts are all there is to check.
        recorded = {**recorded, "frames_sha256": {k: source["frames_sha256"].get(k) for k in done}}
    stale = recorded.get("data_dir") != source["data_dir"] or any(
        done.get(k, {}).get("num_examples") != len(v) or recorded.get("frames_sha256", {}).get(k) != source["frames_sha256"][k]
        for k, v in splits.items()
    )
    if not stale:
        if recorded != manifest.get("source"):
            write_manifest(records_dir, spec.info, done, source=source)
        return
    # The manifest names one source for all of its splits: any stale split converts them all from this one.
    options = ConvertOptions(progress=False, overwrite=True)
    results = {k: convert_split(v, records_dir, k, spec.info, spec.label_table, options) for k, v in splits.items()}
    write_manifest(records_dir, spec.info, results, source=source)
    logging.info("Converted %s into %s", {k: len(v) for k, v in splits.items()}, records_dir)


PRETRAINED_BACKBONE = "pretrained_backbone.weights.h5"


def _settings_dir(settings, *parts):
    """<work_dir>/<settings key>/...: records, runs and the pretrained backbone of these settings only."""
    return os.path.join(FLAGS.work_dir, study.settings_key(settings), *parts)


def _run_dir(settings, row, seed):
    return _settings_dir(settings, "runs", row.name, f"seed{seed}")


def _save_pretrained_backbone(settings, backbone):
    """Writes the pretraining row's backbone weights where the fine-tuning rows read them; returns the path."""
    from hfgd_tf.backbones.weights import save_weights_by_name

    path = _settings_dir(settings, PRETRAINED_BACKBONE)
    # Under a temporary name first (h5 files must end in .weights.h5), so that a crash leaves no partial file.
    temporary = path.replace(".weights.h5", ".incomplete.weights.h5")
    save_weights_by_name(backbone, temporary)
    os.replace(temporary, path)
    return path


def _pretrained_backbone(settings, rows):
    """The pretraining row's backbone weights file, written from its run directory when missing."""
    from hfgd_tf.train.checkpoints import restore_model

    path = _settings_dir(settings, PRETRAINED_BACKBONE)
    if os.path.isfile(path):
        return path
    pretrain = next(row for row in rows if row.stage == "pretrain")
    run_dir = _run_dir(settings, pretrain, pretrain.seeds[0])
    if not os.path.isfile(study.result_path(FLAGS.results_dir, pretrain, pretrain.seeds[0])):
        raise ValueError(f"Fine-tuning rows need {pretrain.name} finished first (run it: --rows={pretrain.name})")
    try:
        model, _, _ = restore_model(run_dir, "latest")
    except ValueError as error:
        raise ValueError(
            f"{pretrain.name} is finished but its weights are gone ({error}); to pretrain again, "
            f"{_redo_protocol_a(settings)} and rerun: the fine-tuning rows must all start from one pretraining"
        ) from error
    return _save_pretrained_backbone(settings, model.backbone)


def _redo_protocol_a(settings):
    """How to start Protocol A over: its results, its run directories and the pretrained backbone all go."""
    return (
        f"move every Protocol A result (A_*.json) out of {FLAGS.results_dir} and delete "
        f"{_settings_dir(settings, 'runs', 'A_*')} and {_settings_dir(settings, PRETRAINED_BACKBONE)}"
    )


def _second_pretraining(settings, rows, results, pending):
    """Why running `pending` would pretrain again under finished fine-tuning runs, or None.

    A new pretraining writes another backbone while the finished fine-tuning runs started from the old one (their
    JSONs record its hash), and the page refuses the mix: better said now than after hours of pretraining. A
    pretraining whose run directory holds its final checkpoint only evaluates and saves the same weights again
    (a result JSON lost after the backbone was saved), which is fine.
    """
    pretrain = [row for row, _ in pending if row.stage == "pretrain"]
    fine_tuned = sorted(f"{r['row']} seed {r['seed']}" for r in results if r["row"] in {
        row.name for row in rows if row.stage == "finetune"})
    if not pretrain or not fine_tuned:
        return None
    row = pretrain[0]
    if _checkpoint_step(_run_dir(settings, row, row.seeds[0])) >= study.row_steps(row, settings):
        return None
    return (
        f"{row.name} has no result and no final checkpoint, but {len(fine_tuned)} fine-tuning runs have results "
        f"({', '.join(fine_tuned[:3])}{', ...' if len(fine_tuned) > 3 else ''}): they started from an earlier "
        f"pretraining, which running it would replace. To redo Protocol A, {_redo_protocol_a(settings)}; to keep "
        f"it, restore {row.name}'s JSON, or leave {row.name} out of --rows"
    )


def _checkpoint_step(run_dir):
    """The step of the run's latest checkpoint (the trainer numbers checkpoints by step); 0 without one."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(run_dir)
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def _loaded_commit():
    """The commit of the code this process runs (read at its start: commits made while it trains are not it)."""
    return _git("rev-parse", "--short", "HEAD") + ("-dirty" if _git("status", "--porcelain", "--", "hfgd_tf", "scripts") else "")


def _run(row, seed, settings, rows, commit):
    import keras
    import numpy as np
    from benchmark_utils import graph_flops

    from hfgd_tf.files import write_json_atomic
    from hfgd_tf.train import Trainer

    records_dir = _settings_dir(settings, "records")
    run_dir = _run_dir(settings, row, seed)
    os.makedirs(run_dir, exist_ok=True)
    pretrained = _pretrained_backbone(settings, rows) if row.stage == "finetune" else ""
    backbone_sha256 = study.file_sha256(pretrained) if pretrained else None
    if pretrained:
        study.record_pretrained_backbone(run_dir, backbone_sha256)
    from hfgd_tf.data.registry import get_dataset_spec

    num_classes = get_dataset_spec("camvid").info.num_classes
    configs = study.run_configs(row, seed, settings, records_dir, run_dir, num_classes, pretrained)
    keras.backend.clear_session()
    trainer = Trainer(*configs)
    start_step = _checkpoint_step(run_dir)
    start, cpu_start = time.time(), time.process_time()
    trainer.train()
    # CPU time is the honest cost (a paused process's wall clock runs on); both are kept.
    timing = study.add_run_timing(
        run_dir, start_step, int(trainer.step.numpy()), time.time() - start, time.process_time() - cpu_start, commit
    )
    train_seconds = timing["wall_seconds"]
    if trainer.preempted:
        from hfgd_tf.train.preemption import PREEMPTED_EXIT_CODE

        print(f"{row.name} seed {seed}: preempted at step {int(trainer.step.numpy())}; rerun to resume")
        sys.exit(PREEMPTED_EXIT_CODE)
    if int(trainer.step.numpy()) != configs[3].total_steps:
        raise ValueError(
            f"{run_dir} stopped at step {int(trainer.step.numpy())}, not {configs[3].total_steps}: its checkpoints "
            "belong to another schedule; remove the directory to rerun this row"
        )
    start, cpu_start = time.time(), time.process_time()
    metrics = trainer.evaluate()
    eval_seconds, eval_cpu_seconds = time.time() - start, time.process_time() - cpu_start
    if row.stage == "pretrain":
        backbone_sha256 = study.file_sha256(_save_pretrained_backbone(settings, trainer.model.backbone))
    model = trainer.model
    result = {
        "row": row.name,
        "protocol": row.protocol,
        "title": row.title,
        "seed": seed,
        "settings": dataclasses.asdict(settings),
        "model_config": dataclasses.asdict(configs[0]),
        "optimizer_config": dataclasses.asdict(configs[2]),
        # Without the run directory, which differs for every run by design.
        "train_config": {k: v for k, v in dataclasses.asdict(configs[3]).items() if k != "checkpoint_dir"},
        "steps": configs[3].total_steps,
        "train_split": configs[1].train_split,
        "miou": metrics["miou"],
        "pixel_accuracy": metrics["pixel_accuracy"],
        "per_class_iou": metrics["per_class_iou"],
        "num_val_images": metrics["num_images"],
        "params_m": sum(int(np.prod(v.shape)) for v in model.trainable_variables) / 1e6
        if not configs[3].freeze_backbone
        else sum(int(np.prod(v.shape)) for v in model.weights if "moving" not in v.path) / 1e6,
        "gflops": graph_flops(model, (360, 480)) / 1e9,
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(timing["cpu_seconds"], 1),
        "train_processes": timing["processes"],
        "untimed_steps": timing["untimed_steps"],
        "eval_seconds": round(eval_seconds, 1),
        "eval_cpu_seconds": round(eval_cpu_seconds, 1),
        # Fine-tuning rows: the pretrained backbone they started from; the pretraining row: the one it wrote.
        "pretrained_backbone_sha256": backbone_sha256,
        "commit": commit,
        **({"process_commits": commits} if (commits := study.process_commits(timing)) else {}),
        "machine": _machine(),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    path = study.result_path(FLAGS.results_dir, row, seed)
    write_json_atomic(path, result)
    print(f"{row.name} seed {seed}: mIoU {100 * metrics['miou']:.2f} ({train_seconds / 60:.1f} min) -> {path}")
    return path


def _write_report(settings, rows):
    from hfgd_tf.data.registry import get_dataset_spec
    from hfgd_tf.files import write_bytes_atomic

    results = _load_results(settings)
    # The page names where its numbers come from: docs/results, or the other directory given.
    source = os.path.relpath(FLAGS.results_dir, ROOT) if _from_default_results() else os.path.abspath(FLAGS.results_dir)
    meta = study.report_meta(rows, results, None if results else _machine(), source=source)
    text = study.render_report(rows, settings, results, meta, list(get_dataset_spec("camvid").info.class_names))
    written = [write_bytes_atomic(_report_path(), (text + "\n").encode())]
    readme = _readme_path()
    if readme:
        try:
            readme_text = _readme_with_headline(readme, study.render_headline(rows, results))
        except ValueError as error:
            # Checked at start; broken meanwhile, it must not keep a finished run's JSON from being committed.
            sys.stderr.write(f"Results headline not written: {error}\n")
        else:
            written.append(write_bytes_atomic(readme, readme_text.encode()))
    return written


def _from_default_results():
    return os.path.realpath(FLAGS.results_dir) == os.path.realpath(DEFAULT_RESULTS_DIR)


def _report_path():
    """The results page written (see --report)."""
    if FLAGS["report"].present or _from_default_results():
        return FLAGS.report
    return os.path.join(FLAGS.results_dir, "results.md")


def _readme_path():
    """The README whose headline is rewritten, or '' for none (see --readme)."""
    if FLAGS["readme"].present or _from_default_results():
        return FLAGS.readme
    return ""


def _readme_with_headline(readme, headline):
    """`readme`'s text with `headline` between its markers; ValueError naming the file when it cannot be."""
    try:
        with open(readme, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(
            f"--readme {readme!r} cannot be read ({getattr(error, 'strerror', None) or error}); give --readme='' "
            "to write no headline"
        ) from error
    return study.replace_marked_block(text, headline, source=f"--readme {readme!r}")


# Side by side on the figures: (protocol, SemanticFPN row, HFGD row), at the same seed.
FIGURE_PAIRS = (("A", "A_sfpn", "A_hfgd"), ("B", "B_sfpn", "B_hfgd"))


def _figure_seed(settings, rows_by_name, names, finished):
    """The lowest seed that both rows finished and whose run directories (with a checkpoint) are in --work_dir,
    or None: run directories stay on the machine that trained them, the result JSONs travel with the repository."""
    import tensorflow as tf

    seeds = sorted({seed for row, seed in finished if row == names[0]} & {seed for row, seed in finished if row == names[1]})
    for seed in seeds:
        run_dirs = [_run_dir(settings, rows_by_name[name], seed) for name in names]
        if all(os.path.isfile(os.path.join(d, "run_config.json")) and tf.train.latest_checkpoint(d) for d in run_dirs):
            return seed
    return None


def _figures(settings, rows, results, num_scenes=4):
    """Writes PNG panels (image | truth | SemanticFPN | HFGD) of a few val scenes, per protocol: at the lowest
    seed whose two runs have finished and still have their run directories (`_figure_seed`)."""
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from hfgd_tf.data import build_eval_dataset
    from hfgd_tf.export.visualize import colorize
    from hfgd_tf.train.checkpoints import restore_model

    finished = {(r["row"], r["seed"]): r for r in results}
    by_name = {row.name: row for row in rows}
    pairs, skipped = [], []
    for protocol, *names in FIGURE_PAIRS:
        seed = _figure_seed(settings, by_name, names, finished)
        if seed is None:
            skipped.append(
                f"Protocol {protocol}: no seed that {names[0]} and {names[1]} both finished has its run directories "
                f"in {FLAGS.work_dir} (they stay on the machine that trained them)"
            )
        else:
            pairs.append((protocol, seed, names))
    if not pairs:
        raise ValueError(
            "--figures needs a seed of A_sfpn and A_hfgd, or of B_sfpn and B_hfgd, finished and with its run "
            f"directories here: {'; '.join(skipped)} (python scripts/run_ablations.py --plan shows what is finished)"
        )
    for reason in skipped:
        print(f"Skipped {reason}")
    out_dir = _settings_dir(settings, "figures")
    os.makedirs(out_dir, exist_ok=True)
    for protocol, seed, names in pairs:
        models = {}
        for name in names:
            models[name], _, data_config = restore_model(_run_dir(settings, by_name[name], seed), "latest")
        colormap = data_config.info.colormap
        total = finished[(names[1], seed)]["num_val_images"]
        wanted = set(np.linspace(0, total - 1, num_scenes).astype(int).tolist())
        for index, (image, label) in enumerate(build_eval_dataset(data_config, batch_size=1)):
            if index not in wanted:
                continue
            truth = label[0].numpy()
            panels = [image[0].numpy().astype(np.uint8), colorize(truth, colormap)]
            for model in models.values():
                prediction = tf.argmax(model(image, training=False)["logits"], -1)[0].numpy()
                prediction = np.where(truth == data_config.info.ignore_label, truth, prediction)
                panels.append(colorize(prediction, colormap))
            path = os.path.join(out_dir, f"protocol_{protocol}_seed{seed}_val_{index:03d}.png")
            Image.fromarray(np.concatenate(panels, axis=1)).save(path)
            print(f"Wrote {path} (image | truth | {' | '.join(names)}, seed {seed})")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    common_flags.check_output_paths(work_dir=(FLAGS.work_dir, "directory"), results_dir=(FLAGS.results_dir, "directory"))
    try:
        settings = _settings()
    except ValueError as error:
        raise app.UsageError(str(error).replace("StudySettings.", "--study_"))
    if (FLAGS.report_only or FLAGS.figures) and not os.path.isdir(FLAGS.results_dir):
        raise app.UsageError(f"--results_dir {FLAGS.results_dir!r} is not a directory (the result JSONs to read)")
    rows = study.study_rows()
    names = [row.name for row in rows]
    unknown = [name for name in FLAGS.rows if name not in names]
    if unknown:
        raise app.UsageError(f"--rows: unknown {unknown}; known: {names}")
    selected = [row for row in rows if not FLAGS.rows or row.name in FLAGS.rows]
    try:
        results = _load_results(settings)
        readme = _readme_path()
        if readme and not (FLAGS.plan or FLAGS.figures):
            _readme_with_headline(readme, "")  # a README without its markers fails now, not after hours
    except ValueError as error:
        raise app.UsageError(str(error))
    finished = {(r["row"], r["seed"]) for r in results}
    # Every row's first seed before any row's next one: a study cut short still has every row.
    pending = sorted(
        ((row, seed) for row in selected for seed in row.seeds if (row.name, seed) not in finished),
        key=lambda run: (run[1], rows.index(run[0])),
    )
    refusal = None if (FLAGS.figures or FLAGS.report_only) else _second_pretraining(settings, rows, results, pending)
    if refusal and not FLAGS.plan:
        raise app.UsageError(refusal)
    if FLAGS.plan:
        for row in rows:
            state = ["done" if (row.name, s) in finished else "todo" for s in row.seeds]
            print(f"{row.name:28s} {row.stage:9s} seeds {list(row.seeds)} {state}  {row.title}")
        print(f"{len(pending)} runs to do among the selected rows" + (
            f", in this order: {', '.join(f'{row.name} seed {seed}' for row, seed in pending)}" if pending else ""))
        if not os.path.isdir(FLAGS.results_dir):
            print(f"--results_dir {FLAGS.results_dir!r} does not exist yet: no run has finished there")
        if refusal:
            print(f"Running them would be refused: {refusal}")
        return
    if FLAGS.figures:
        try:
            _figures(settings, rows, results)
        except ValueError as error:
            raise app.UsageError(str(error))
        return
    if not FLAGS.report_only:
        if not os.path.isdir(FLAGS.camvid_dir):
            raise app.UsageError(f"--camvid_dir {FLAGS.camvid_dir!r} is not a directory (CamVid in the SegNet layout)")
        logging.set_verbosity(logging.INFO)
        # Import the code the runs use before naming its commit (a checkout while a run trains does not change it).
        import benchmark_utils  # noqa: F401

        import hfgd_tf.train  # noqa: F401

        commit = _loaded_commit()
        try:
            _prepare_records(_settings_dir(settings, "records"))
        except ValueError as error:
            raise app.UsageError(f"--camvid_dir {FLAGS.camvid_dir!r}: {error}")
        for count, (row, seed) in enumerate(pending):
            if FLAGS.max_runs and count >= FLAGS.max_runs:
                print(f"Stopped after --max_runs={FLAGS.max_runs}; {len(pending) - count} runs left")
                break
            from hfgd_tf.train import NonFiniteLossError

            try:
                path = _run(row, seed, settings, rows, commit)
            except (ValueError, NonFiniteLossError) as error:
                sys.stderr.write(f"{row.name} seed {seed}: {error}\n")
                sys.exit(1)
            pages = _write_report(settings, rows)
            if FLAGS.git_commit:
                _commit([path, *pages], f"Ablation study: {row.name} seed {seed}")
    print(f"Wrote {', '.join(_write_report(settings, rows))}")


if __name__ == "__main__":
    app.run(main)
