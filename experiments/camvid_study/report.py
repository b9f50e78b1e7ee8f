"""Result JSONs in, the results page out: reading and checking the results, and the markdown of the page."""

import dataclasses
import json
import math
import os
import statistics

import plan
import stats

# Checked in every result JSON, with its type (an int passes for a float).
RESULT_FIELDS = {
    "row": str,
    "protocol": str,
    "seed": int,
    "miou": float,
    "pixel_accuracy": float,
    "per_class_iou": dict,
    "params_m": float,
    "gflops": float,
    "steps": int,
    "train_cpu_seconds": float,
    "commit": str,
    "machine": str,
    "settings": dict,
    "model_config": dict,
}
# The scorings a new result holds: {head: {mode: {"miou", "pixel_accuracy", "per_class_iou"}}}.
SCORED_HEADS, SCORED_MODES = ("logits", "logits_high"), ("whole", "sliding")
# The configs a new row's result records; a first-study result has settings and model_config (and most the others).
COMPARED_CONFIGS = ("settings", "model_config", "optimizer_config", "train_config", "data_config")
# Config fields that do not change what a run computes.
NOT_COMPARED = {
    "data_dir",
    "backbone_weights_path",
    "checkpoint_dir",
    "max_checkpoints_to_keep",
    "restore_checkpoint",
    "log_every_steps",
    "training_progress_bar",
    "evaluate_every_epoch",
    "init_weights_path",
}


def result_path(results_dir, row_name, seed):
    return os.path.join(results_dir, f"{row_name}__seed{seed}.json")


def read_result(path):
    """One run's result dict, checked: a JSON object with every `RESULT_FIELDS` key of its type, mIoUs in [0, 1],
    named after its own row and seed. Raises ValueError naming `path` (a half-written or hand-edited file)."""
    try:
        with open(path, encoding="utf-8") as handle:
            result = json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} cannot be read as a study result ({error}); move it away") from None
    if not isinstance(result, dict):
        raise ValueError(f"{path} is not a study result (not a JSON object); move it away")
    for key, kind in RESULT_FIELDS.items():
        value = result.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
            raise ValueError(f"{path} is not a study result ({key!r} missing or not {kind.__name__}); move it away")
        if kind is float and not math.isfinite(value):
            raise ValueError(f"{path} is not a study result ({key!r} is {value!r}); move it away")
    _check_scoring(path, "", result)
    if "scores" in result:
        scored = result["scores"]
        if not isinstance(scored, dict) or "logits" not in scored or not set(scored) <= set(SCORED_HEADS):
            raise ValueError(f"{path}: 'scores' must map {' / '.join(SCORED_HEADS)} to scorings; move it away")
        for head, modes in scored.items():
            if not isinstance(modes, dict) or not modes or not set(modes) <= set(SCORED_MODES):
                raise ValueError(f"{path}: scores.{head} must map {' / '.join(SCORED_MODES)} to scores; move it away")
            for mode, scoring in modes.items():
                _check_scoring(path, f"scores.{head}.{mode}.", scoring, classes=set(result["per_class_iou"]))
    expected = f"{result['row']}__seed{result['seed']}.json"
    if os.path.basename(path) != expected:
        raise ValueError(f"{path} holds {result['row']} seed {result['seed']}, so it must be named {expected}")
    return result


def _check_scoring(path, where, scoring, classes=None):
    """Checks one scoring's mIoU, pixel accuracy and per-class IoUs are fractions in [0, 1] (a percentage or a
    missing class would put a wrong number on the page), over `classes` when given."""
    if not isinstance(scoring, dict) or not isinstance(scoring.get("per_class_iou"), dict):
        raise ValueError(f"{path}: {where or 'the result'} has no per_class_iou mapping; move it away")
    if classes is not None and set(scoring["per_class_iou"]) != classes:
        raise ValueError(f"{path}: {where}per_class_iou names other classes than the result's; move it away")
    named = [("miou", scoring.get("miou")), ("pixel_accuracy", scoring.get("pixel_accuracy"))]
    for key, value in named + list(scoring["per_class_iou"].items()):
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 <= value <= 1):
            raise ValueError(f"{path}: {where}{key} is {value!r}, not a number in [0, 1]; move it away")


def _json_like(value):
    return json.loads(json.dumps(value))


def stale_reasons(row, result, settings, num_classes):
    """What a result recorded that its row would not train with now: "model_config.cae: 'none' then,
    'transformer' now", ...; empty when it matches. Compared, minus `NOT_COMPARED`: the settings and the model,
    optimizer, train and data configs. A new row's result must hold every config and every field of it; a first-study
    result is compared on what both sides have (it predates configs and fields added since, and never runs again)."""
    model, data, optimizer, train, _ = plan.run_configs(
        row, result["seed"], settings, "<records>", "<run>", num_classes
    )
    now = dict(zip(COMPARED_CONFIGS, (settings, model, optimizer, train, data)))
    reasons = []
    for key, current in now.items():
        stored, current = result.get(key), _json_like(dataclasses.asdict(current))
        if not isinstance(stored, dict):
            if not row.legacy:
                reasons.append(f"{key}: missing then")
            continue
        fields = set(current) if not row.legacy else set(stored) & set(current)
        for field in sorted(fields - NOT_COMPARED):
            if field not in stored:
                reasons.append(f"{key}.{field}: missing then, {current[field]!r} now")
            elif stored[field] != current[field]:
                reasons.append(f"{key}.{field}: {stored[field]!r} then, {current[field]!r} now")
    return reasons


def load_results(results_dir, rows, settings_of, num_classes):
    """The checked results in `results_dir`: each a planned (row, seed), of its row's protocol, trained as its
    row trains now (`stale_reasons`), every fine-tuning result of a protocol from one pretraining.

    Args:
        settings_of: callable(row) -> `StudySettings` of that row.
    """
    by_name = {row.name: row for row in rows}
    results, pretrainings = [], {}
    for name in sorted(os.listdir(results_dir)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(results_dir, name)
        result = read_result(path)
        row = by_name.get(result["row"])
        if row is None or result["seed"] not in row.seeds:
            raise ValueError(
                f"{path}: {result['row']} seed {result['seed']} is not a run of the study (--plan lists "
                "them); move it away"
            )
        if result["protocol"] != row.protocol:
            raise ValueError(
                f"{path}: {row.name} is a Protocol {row.protocol} row, the file says {result['protocol']!r}"
            )
        if len(result["per_class_iou"]) != num_classes:
            raise ValueError(
                f"{path}: per_class_iou has {len(result['per_class_iou'])} classes, the dataset {num_classes}"
            )
        reasons = stale_reasons(row, result, settings_of(row), num_classes)
        if reasons:
            cure = "restore" if row.legacy else "move the file away to run it again, or restore"
            raise ValueError(
                f"{path}: ran with other configs than {row.name} gives now ({'; '.join(reasons[:3])}): "
                f"{cure} the row or default that changed"
                + (" (a first-study row is never run again)" if row.legacy else "")
            )
        if result.get("pretrained_backbone_sha256") and row.stage == "finetune":
            pretrainings.setdefault(row.init_from, {}).setdefault(result["pretrained_backbone_sha256"], []).append(name)
        results.append(result)
    for source, hashes in pretrainings.items():
        if len(hashes) > 1:
            raise ValueError(
                f"The fine-tuning results from {source} in {results_dir} start from different "
                f"pretrainings ({'; '.join(f'{h[:12]}: {n}' for h, n in hashes.items())}): rerun them "
                "from one"
            )
    return results


def group(results, rows):
    """`{row: [result, ...]}` by seed; a row's borrowed seed 0 (`Row.borrowed_seed0`) counts as its own."""
    grouped = {}
    for result in sorted(results, key=lambda r: r["seed"]):
        grouped.setdefault(result["row"], []).append(result)
    for row in rows:
        borrowed = [r for r in grouped.get(row.borrowed_seed0, []) if r["seed"] == 0] if row.borrowed_seed0 else []
        if borrowed:
            grouped[row.name] = borrowed + grouped.get(row.name, [])
    return grouped


def scores(result):
    """`{head: {mode: {"miou", ...}}}`; a first-study result was scored once, whole-image, on the prediction."""
    return result.get("scores") or {"logits": {"whole": {"miou": result["miou"]}}}


def score_values(entries, head, mode):
    """The per-seed mIoUs of one scoring, or None when a run lacks it."""
    values = [scores(r).get(head, {}).get(mode, {}).get("miou") for r in entries]
    return None if None in values else values


def _mious(entries):
    return [r["miou"] for r in entries]


def _format(values):
    if values is None:
        return "-"
    values = [100 * v for v in values]
    if len(values) < 2:
        return f"{values[0]:.1f}"
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f}"


def _signed(values):
    """Per-seed differences (fractions) as "+1.2 ± 0.3" points; "-" without them."""
    if values is None:
        return "-"
    values = [100 * v for v in values]
    return f"{statistics.fmean(values):+.1f}" + (f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else "")


def _table(members, grouped):
    """A protocol's table. New rows: the prediction and the guidance head, whole-image and by sliding window, and
    what the upsampler adds over its own guidance (prediction minus guidance, per seed)."""
    new = not members[0].legacy
    scored = (
        " mIoU whole | mIoU sliding | guidance whole | guidance sliding | upsampler adds, whole |"
        " upsampler adds, sliding |"
        if new
        else " mIoU |"
    )
    lines = [
        f"| row | what | seeds |{scored} params (M) | GFLOPs (360x480) | train CPU min |",
        "| --- | --- | --- |" + " ---: |" * (scored.count("|") + 3),
    ]
    for row in members:
        entries, planned = grouped.get(row.name), len(plan.seeds_with_results(row))
        if not entries:
            lines.append(f"| `{row.name}` | {row.title} | 0/{planned} |" + " |" * (scored.count("|") + 3))
            continue
        cells = [_format(_mious(entries))]
        if new:
            adds = {}
            for mode in ("whole", "sliding"):
                prediction, guidance = score_values(entries, "logits", mode), score_values(entries, "logits_high", mode)
                adds[mode] = None if guidance is None else [p - g for p, g in zip(prediction, guidance)]
            cells = [
                _format(score_values(entries, head, mode))
                for head in ("logits", "logits_high")
                for mode in ("whole", "sliding")
            ] + [_signed(adds["whole"]), _signed(adds["sliding"])]
        lower = "≥ " if any(r.get("untimed_steps") or "train_processes" not in r for r in entries) else ""
        cpu = statistics.fmean(r["train_cpu_seconds"] for r in entries) / 60
        lines.append(
            f"| `{row.name}` | {row.title} | {len(entries)}/{planned} | {' | '.join(cells)} | "
            f"{entries[-1]['params_m']:.2f} | {entries[-1]['gflops']:.1f} | {lower}{cpu:.1f} |"
        )
    return lines


# An IoU below this prints as 0.0 (points, one decimal): the class counts as not scored.
SCORED_IOU = 0.0005


def _head_ious(entries, mode):
    """`[(prediction, guidance), ...]` per seed: the two heads' per-class IoU dicts of one scoring; None when a seed
    lacks either (a row without a guidance head, a run not scored that way)."""
    pairs = []
    for result in entries:
        heads = scores(result)
        pair = tuple(heads.get(head, {}).get(mode, {}).get("per_class_iou") for head in ("logits", "logits_high"))
        if None in pair:
            return None
        pairs.append(pair)
    return pairs or None


def _scored(pairs, class_name):
    return any(max(prediction[class_name], guidance[class_name]) >= SCORED_IOU for prediction, guidance in pairs)


def upsampler_per_class(entries, class_names):
    """What the upsampler adds to each class: `{class: (whole, sliding)}`, the prediction's IoU minus its guidance's
    (fractions, mean over seeds); None for a scoring not every seed has; `{}` for a row without a guidance head."""
    return _mean_differences({mode: _head_ious(entries, mode) for mode in ("whole", "sliding")}, class_names)


def _mean_differences(pairs, class_names):
    """`upsampler_per_class` from `{mode: _head_ious(...)}`."""
    if not any(pairs.values()):
        return {}
    return {
        c: tuple(
            None if pairs[mode] is None else statistics.fmean(p[c] - g[c] for p, g in pairs[mode])
            for mode in ("whole", "sliding")
        )
        for c in class_names
    }


def _upsampler_per_class_table(rows, grouped, class_names):
    """The page's per-class table of `upsampler_per_class`, cells "whole / sliding" in points: "-" for a scoring
    the row's runs lack, "·" where neither head scores the class; columns for the classes some row's head scores."""
    table = []
    for row in rows:
        entries = grouped.get(row.name, [])
        by = {mode: _head_ious(entries, mode) for mode in ("whole", "sliding")}
        added = _mean_differences(by, class_names)
        if added:
            table.append((row, len(entries), added, by))
    columns = [c for c in class_names if any(pairs and _scored(pairs, c) for *_, by in table for pairs in by.values())]
    if not table:
        return []

    def cell(value, pairs, class_name):
        if value is None:
            return "-"
        if not _scored(pairs, class_name):
            return "·"
        return f"{round(100 * value, 1) + 0.0:+.1f}"  # + 0.0 turns a rounded -0.0 into 0.0

    lines = []
    for row, seeds, added, by in table:
        cells = [
            " / ".join(cell(added[c][i], by[mode], c) for i, mode in enumerate(("whole", "sliding"))) for c in columns
        ]
        lines.append(f"| `{row.name}` | {seeds} | " + " | ".join(cells) + " |")
    borrowed = [f"`{row.name}`'s seed 0 is the `{row.borrowed_seed0}` run" for row, *_ in table if row.borrowed_seed0]
    return [
        "## What the upsampler adds, per class (IoU points, prediction minus guidance, mean over seeds)",
        "",
        'Whole frame / sliding window, for the rows with a guidance head (`logits_high`); "·": neither head scores '
        "the class; classes no row's head scores are left out."
        + (f" {'; '.join(borrowed)} (the same configs, run once)." if borrowed else ""),
        "",
        "| row | seeds | " + " | ".join(columns) + " |",
        "| --- | ---: |" + " ---: |" * len(columns),
        *lines,
        "",
    ]


def _pooling_protocols(rows):
    """`{row name: the protocol whose pooled seed spread judges it}`."""
    # The position-encoding rows have one seed each: they take the spread of Protocol B', trained alike.
    return {row.name: plan.POOLED_WITH.get(row.protocol, row.protocol) for row in rows}


def _verdicts(rows, grouped, mode):
    """`([(claim, verdict dict or None)], {protocol: pooled (sd, dof)})` on the prediction's `mode` mIoU: each claim
    by `stats.compare` with its protocol's pooled seed SD of that scoring; None when a row has not run or not every
    seed of it was scored so."""
    protocol_of = _pooling_protocols(rows)
    values = {name: score_values(entries, "logits", mode) for name, entries in grouped.items()}
    pooled = {
        protocol: stats.pooled_sd(
            [v for name, v in values.items() if v is not None and protocol_of.get(name) == protocol]
        )
        for protocol in set(protocol_of.values())
    }
    verdicts = []
    for claim in plan.CLAIMS:
        better, worse = values.get(claim.better), values.get(claim.worse)
        if better is None or worse is None:
            verdicts.append((claim, None))
            continue
        verdict = stats.compare(better, worse, pooled[protocol_of[claim.better]])
        if claim.kind == "not_worse" and verdict["outcome"] == "within seed noise":
            verdict["outcome"] = (
                f"no cost detected (a cost up to {100 * (verdict['bar'] - verdict['difference']):.1f}"
                " points is not excluded, 97.5% one-sided)"
            )
        verdicts.append((claim, verdict))
    return verdicts, pooled


def judge_claims(rows, grouped, modes=("whole", "sliding")):
    """`({mode: [(claim, verdict dict or None, stands after Holm)]}, {mode: {protocol: pooled (sd, dof)}})` for
    every claim on each scoring in `modes` ("whole", "sliding"). Holm's correction runs over every verdict with a
    p, of all the scorings together: a reader takes "holds" on either scoring as support."""
    judged = {mode: _verdicts(rows, grouped, mode) for mode in modes}
    with_p = [
        ((mode, claim), verdict["p"])
        for mode in modes
        for claim, verdict in judged[mode][0]
        if verdict and verdict["p"] is not None
    ]
    rejected = stats.holm([p for _, p in with_p])
    standing = {key for (key, _), kept in zip(with_p, rejected) if kept}
    return (
        {mode: [(claim, verdict, (mode, claim) in standing) for claim, verdict in judged[mode][0]] for mode in modes},
        {mode: judged[mode][1] for mode in modes},
    )


def _legacy_claim(claim, rows):
    """Whether a claim compares rows of the first study (scored whole-image only)."""
    return any(row.legacy for row in rows if row.name in (claim.better, claim.worse))


def _verdict_cells(verdict, stands, missing=""):
    """Difference, bar and verdict cells of one claim on one scoring; `missing` (or "not run yet") without one."""
    if verdict is None:
        return ["", "", missing or "not run yet"]
    caveat = "; not after Holm's correction" if verdict["outcome"] in stats.DECIDED and not stands else ""
    difference, bar = 100 * verdict["difference"], verdict["bar"]
    # Two decimals where one would show a difference equal to its bar on either side of it.
    digits = 2 if bar is not None and f"{abs(difference):.1f}" == f"{100 * bar:.1f}" else 1
    return [f"{difference:+.{digits}f}", "-" if bar is None else f"{100 * bar:.{digits}f}", verdict["outcome"] + caveat]


def _describe(settings):
    return (
        f"{settings.backbone}, D={settings.num_channels}, crop {settings.crop_height}x{settings.crop_width}, batch "
        f"{settings.batch_size}; from scratch {settings.scratch_steps} steps at LR {settings.initial_lr}; "
        f"pretraining {settings.pretrain_steps} steps on the train split minus {settings.holdback_fraction:.0%} of "
        f"each sequence; fine-tuning {settings.finetune_steps} steps on those held-back frames, LR "
        f"{settings.finetune_lr}, backbone LR x{settings.finetune_backbone_lr_multiplier}, "
        f"{settings.finetune_warmup_steps} warmup steps"
    )


def _claims_section(rows, grouped):
    """The page's claims table and its verdict rule."""
    judged, pooled = judge_claims(rows, grouped)
    lines = [
        "## Claims at this scale",
        "",
        "Judged on the prediction's mIoU, whole frame and by sliding window at the training crop (the first study's "
        'rows were scored whole-image only: "-").',
        "",
        "| claim | rows | whole: difference (points) | whole: 95% bar (±) | whole: verdict | sliding: difference "
        "(points) | sliding: 95% bar (±) | sliding: verdict |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for (claim, whole, whole_stands), (_, sliding, sliding_stands) in zip(judged["whole"], judged["sliding"]):
        ran = claim.better in grouped and claim.worse in grouped
        if _legacy_claim(claim, rows):
            unscored = "-"
        else:
            unscored = "not scored by sliding window on every seed" if ran else ""
        cells = _verdict_cells(whole, whole_stands) + _verdict_cells(sliding, sliding_stands, unscored)
        lines.append(f"| {claim.text} | `{claim.better}` vs `{claim.worse}` | " + " | ".join(cells) + " |")
    protocol_of = _pooling_protocols(rows)
    judged_protocols = {protocol_of[claim.better] for claim in plan.CLAIMS if claim.better in protocol_of}
    spreads = {
        mode: ", ".join(
            f"Protocol {p} {100 * sd:.1f} points over {dof} degrees of freedom (t = {stats.t_critical(dof):.2f})"
            for p, (sd, dof) in sorted(by_protocol.items())
            if sd is not None and p in judged_protocols
        )
        or "none yet"
        for mode, by_protocol in pooled.items()
    }
    with_bar = sum(
        1 for claims in judged.values() for _, verdict, _ in claims if verdict and verdict["bar"] is not None
    )
    lines += [
        "",
        'Verdict rule: "holds" when the difference of the means is beyond the 95% bar `t sqrt(s1^2/n1 + s2^2/n2)`, '
        '"does not hold" when it is that far the other way, "within seed noise" between. Each row\'s s is the larger '
        "of its own seed SD and the one pooled over its protocol's rows with several seeds, scoring by scoring (the "
        "position-encoding rows, one seed each and trained as Protocol B' is, take B''s spread, which "
        "`PE_normalized` shares as `B2_hfgd`'s seed 0). "
        f"Pooled, whole frame: {spreads['whole']}. Pooled, sliding window: {spreads['sliding']}. t is Student's for "
        'the pooled degrees of freedom. "; not after Holm\'s correction" marks a verdict that does not survive '
        f"Holm's step-down correction over all {with_bar} verdicts with a bar, both scorings together (familywise "
        '5%). A "not worse" claim is a test for a cost: within seed noise it names the largest cost the bar does not '
        "exclude.",
    ]
    return lines


READING_STAMP = "<!-- written with the results of: "


def run_names(results, rows):
    """Each result's name, "<row> seed <seed>", in the plan's order."""
    order = {row.name: index for index, row in enumerate(rows)}
    return [f"{r['row']} seed {r['seed']}" for r in sorted(results, key=lambda r: (order[r["row"]], r["seed"]))]


def stamp_reading(reading, results, rows):
    """The hand-written reading with its first line naming the runs finished now (what it was written with)."""
    body = reading.partition("\n")[2] if reading.startswith(READING_STAMP) else reading
    return f"{READING_STAMP}{', '.join(run_names(results, rows))} -->\n{body}"


def reading_section(reading, results, rows):
    """The page's section for the hand-written reading, saying which runs finished (or went) since it was written:
    its prose quotes numbers that move as runs finish, and an old reading must not pass for a current one."""
    first, _, body = reading.partition("\n")
    if not reading.strip() or (first.startswith(READING_STAMP) and not body.strip()):
        return []  # no reading, or a stamp with nothing under it
    if not (first.startswith(READING_STAMP) and first.endswith(" -->")):
        raise ValueError(
            f"the reading's first line must be '{READING_STAMP}<runs> -->' (run.py --stamp_reading writes it), "
            f"not {first!r}"
        )
    written = {name.strip() for name in first[len(READING_STAMP) : -len(" -->")].split(",") if name.strip()}
    finished = run_names(results, rows)
    since = [name for name in finished if name not in written]
    gone = sorted(written - set(finished))
    stale = ([f"finished since: {', '.join(since)}"] if since else []) + (
        [f"no longer on the page: {', '.join(gone)}"] if gone else []
    )
    state = (
        f"**Written before the latest results ({'; '.join(stale)}): its numbers may be out of date.**"
        if stale
        else f"Written with all {len(finished)} finished runs."
    )
    return ["## Reading (written by hand)", "", state, "", *body.strip("\n").splitlines(), ""]


def render_page(rows, results, settings_of, class_names, meta):
    """The markdown of the results page.

    Args:
        rows: the plan's rows; results: result dicts; settings_of: callable(row) -> StudySettings;
        class_names: list of str; meta: dict with "command" and "source" (where the JSONs are), optional
        "limits" and "notes" (lists of lines) and "reading" (the hand-written reading's markdown).
    """
    grouped = group(results, rows)
    missing = [
        f"{row.name} seed {seed}"
        for row in rows
        for seed in row.seeds
        if seed not in {r["seed"] for r in results if r["row"] == row.name}
    ]
    runs = sum(len(row.seeds) for row in rows)
    lines = ["# Results: HFGD's claims tested on CamVid", ""]
    lines += [
        f"**Incomplete: {runs - len(missing)} of {runs} runs finished.** Missing: {', '.join(missing)}."
        if missing
        else f"Complete: all {runs} runs finished.",
        "",
    ]
    legacy = {row.name for row in rows if row.legacy}
    hours = {}
    for kind, selected in (
        ("new", [r for r in results if r["row"] not in legacy]),
        ("first", [r for r in results if r["row"] in legacy]),
    ):
        hours[kind] = (
            sum(r["train_cpu_seconds"] for r in selected) / 3600,
            sum(r.get("eval_cpu_seconds", r.get("eval_seconds", 0.0)) for r in selected) / 3600,
        )
    commits = sorted({c for r in results for c in r.get("process_commits") or [r["commit"]]})
    lines += [
        f"Every table on this page is written by `{meta['command']}` from `{meta['source']}/*.json` (one file per",
        "row and seed); rerunning it skips finished runs, resumes a killed one and rewrites this page. The reading at",
        "the end is written by hand from the same files.",
        "",
        f"- Machine: {'; '.join(sorted({r['machine'] for r in results})) or 'none yet'}. CPU time of the finished "
        f"runs (process CPU time summed over the cores; a ≥ marks rows with steps no process timed): new rows "
        f"{hours['new'][0]:.2f} h training + {hours['new'][1]:.2f} h scoring; first study {hours['first'][0]:.2f} h "
        f"+ {hours['first'][1]:.2f} h.",
        f"- Commits of the runs: {', '.join(commits) or 'none yet'} (each result JSON names its own; -dirty: the "
        "process started with uncommitted changes).",
        *[
            f"- {what}: {_describe(settings_of(row))}"
            for what, row in (
                ("New rows", next((r for r in rows if not r.legacy), None)),
                ("First study (Protocols A and B)", next((r for r in rows if r.legacy), None)),
            )
            if row
        ],
        "- Every run: SGD momentum 0.9, poly LR, weight decay 1e-4, random scale 0.5-2.0, flip, brightness; plain "
        "BatchNorm, float32, one CPU device. Evaluation: CamVid val (101 frames, 360x480), the final weights of each "
        'run (no model selection on val); mIoU in %, mean ± sample SD over the seeds; "sliding": windows of the '
        'training crop, stride 2/3 of it; "guidance": HFGD\'s OS32 head (`logits_high`) resized to the frame.',
        *[f"- {note}" for note in meta.get("notes", ())],
        "",
    ]
    for protocol, heading in plan.PROTOCOLS.items():
        members = [row for row in rows if row.protocol == protocol]
        if members:
            lines += [f"## {heading}", "", plan.PROTOCOL_NOTES[protocol], "", *_table(members, grouped), ""]
        for result in (r for row in members if row.diagnostic for r in grouped.get(row.name, [])):
            lines += [
                f"`{result['row']}` seed {result['seed']} over training:",
                "",
                "| step | prediction = guidance (% of labelled pixels) | class kernels' norm |",
                "| ---: | ---: | ---: |",
            ]
            lines += [
                f"| {p['step']} | {100 * p['agreement']:.1f} | {p['kernel_norm']:.3f} |"
                for p in result.get("diagnostic", [])
            ] + [""]
    lines += _claims_section(rows, grouped)
    lines += [
        "",
        "## Per-class IoU (prediction, whole frame, mean over seeds, %)",
        "",
        "| row | " + " | ".join(class_names) + " |",
        "| --- |" + " ---: |" * len(class_names),
    ]
    for row in rows:
        if row.name in grouped:
            cells = [
                f"{100 * statistics.fmean(r['per_class_iou'][c] for r in grouped[row.name]):.1f}" for c in class_names
            ]
            lines.append(f"| `{row.name}` | " + " | ".join(cells) + " |")
    never = [c for c in class_names if results and all(r["per_class_iou"].get(c, 0.0) < SCORED_IOU for r in results)]
    lines += ["", *_upsampler_per_class_table(rows, grouped, class_names)]
    lines += reading_section(meta.get("reading", ""), results, rows)
    lines += ["## What this can and cannot show", "", *meta.get("limits", ())]
    if never:
        lines.append(
            f"- {len(never)} of the {len(class_names)} classes ({', '.join(never)}) score 0.0 IoU (under 0.05 points) in every "
            "run: mIoU is decided by the large classes, where a finer output stride matters least."
        )
    return "\n".join(lines) + "\n"
