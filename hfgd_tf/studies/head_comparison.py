"""The CamVid accuracy of HFGD's default head against the D-wide head, for the performance page.

The cheaper default head (U-SFPN D/2 wide) must not cost accuracy. The CamVid study
(`camvid_ablations`, rows `B_hfgd` and `B_hfgd_wide_head`) trains both at the same seed and budget; this
module reads those result JSONs, checks that the runs differ in the head width alone, and writes the
markdown section that `scripts/benchmark.py` puts on docs/performance.md (`--head_accuracy_only`
rewrites just that section when a study row finishes).
"""

import glob
import os

from hfgd_tf.studies import camvid_ablations as study

HEAD_ACCURACY_HEADING = "## Accuracy of the head (CamVid val, from the ablation study)"
HEAD_ROWS = (("B_hfgd", "default, D/2 wide"), ("B_hfgd_wide_head", "D wide (before)"))
HEAD_CLAIM = study.claim_between("B_hfgd", "B_hfgd_wide_head")


def _study_results(results_dir, row):
    """{seed: result dict} of one study row's JSONs (docs/results/<row>__seed<N>.json), each checked by
    `camvid_ablations.read_result`, and their model configs by the head width they name."""
    results = {}
    for path in sorted(glob.glob(os.path.join(results_dir, f"{row}__seed*.json"))):
        result = study.read_result(path)
        for key in ("backbone", "num_channels", "upsampler_num_channels"):
            if key not in result["model_config"]:
                raise ValueError(f"{path} is not a result of scripts/run_ablations.py (model_config has no {key!r})")
        results[result["seed"]] = result
    return results


def _head_width(model_config):
    return model_config["upsampler_num_channels"] or model_config["num_channels"] // 2


def _not_comparable(default, wide):
    """Why two results are not the head comparison (same everything but the head width), or None."""
    if default["settings"] != wide["settings"]:
        return "they ran with different study settings"
    differing = sorted(
        k for k in set(default["model_config"]) | set(wide["model_config"])
        if k != "upsampler_num_channels" and default["model_config"].get(k) != wide["model_config"].get(k)
    )
    if differing:
        return f"their models differ in more than the head width: {differing}"
    if _head_width(default["model_config"]) != default["model_config"]["num_channels"] // 2:
        return "the default row's head is not D/2 wide"
    if _head_width(wide["model_config"]) != wide["model_config"]["num_channels"]:
        return "the wide row's head is not D wide"
    if default["steps"] != wide["steps"]:
        return "they trained for different numbers of steps"
    # Recorded by the study for every run (train_config by runs from 2026-11-26 on): compared when present.
    for key in ("protocol", "train_split", "optimizer_config", "train_config"):
        if default.get(key) != wide.get(key):
            return f"their {key} differ"
    return None


def head_accuracy_section(results_dir):
    """The markdown lines comparing the default head with the D-wide one on CamVid val, same seeds and budget.

    Only seeds present for both rows, whose runs differ in the head width alone, are compared; anything
    else is said instead.
    """
    lines = [
        "",
        HEAD_ACCURACY_HEADING,
        "",
        "The cheaper default head must not cost accuracy: rows `B_hfgd` and `B_hfgd_wide_head` of "
        "`scripts/run_ablations.py` (docs/results.md, Protocol B: trained from scratch on CamVid train with the "
        f"same settings, steps and seed; only the head width differs, checked: the train config only where both "
        f"runs recorded it), read from `{results_dir}/`. "
        "`python scripts/benchmark.py --head_accuracy_only` rewrites this section alone, timing nothing.",
        "",
    ]
    runs = {row: _study_results(results_dir, row) for row, _ in HEAD_ROWS}
    seeds = sorted(set(runs["B_hfgd"]) & set(runs["B_hfgd_wide_head"]))
    for seed in seeds:
        reason = _not_comparable(runs["B_hfgd"][seed], runs["B_hfgd_wide_head"][seed])
        if reason:
            return lines + [f"Not comparable: seed {seed} of the two rows: {reason}."]
    if not seeds:
        have = {row: sorted(found) for row, found in runs.items()}
        return lines + [f"Not measured yet: no seed finished for both rows (seeds finished: {have})."]
    lines += [
        "| head | backbone, D | head width | seed | CamVid val mIoU (%) | pixel accuracy (%) | params (M) | GFLOPs (360x480) | steps | commit |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row, title in HEAD_ROWS:
        for seed in seeds:
            r = runs[row][seed]
            model = r["model_config"]
            lines.append(
                f"| {title} (`{row}`) | {model['backbone']}, {model['num_channels']} | {_head_width(model)} | {seed} | "
                f"{100 * r['miou']:.2f} | {100 * r['pixel_accuracy']:.2f} | "
                f"{r['params_m']:.2f} | {r['gflops']:.1f} | {r['steps']} | {r['commit']} |"
            )
    difference = 100 * sum(runs["B_hfgd"][s]["miou"] - runs["B_hfgd_wide_head"][s]["miou"] for s in seeds) / len(seeds)
    lines += ["", f"Default minus D-wide head, paired by seed: {difference:+.2f} mIoU points (mean over the seeds both rows have, {seeds}). {_study_verdict(results_dir, runs)}"]
    return lines


def _study_verdict(results_dir, runs):
    """docs/results.md's verdict on the head claim, in a sentence: the same rows, seeds and pooled seed SD.

    The page's numbers must not give a second, different bar for the same comparison, so the seed noise is
    not estimated here: the study's `claim_verdict` judges it over every seed of both rows, with the seed
    standard deviation pooled over Protocol B's rows (those that ran with the compared runs' study settings,
    as scripts/run_ablations.py accepts no others).
    """
    reference = runs["B_hfgd"][min(runs["B_hfgd"])]
    grouped = {}
    for row in study.study_rows():
        if row.protocol != "B":
            continue
        found = runs.get(row.name) or _study_results(results_dir, row.name)
        alike = [r for _, r in sorted(found.items()) if r["settings"] == reference["settings"]]
        if alike:
            grouped[row.name] = {"protocol": "B", "seeds": [r["seed"] for r in alike], "miou": [r["miou"] for r in alike]}
    difference, outcome, bar = study.claim_verdict(HEAD_CLAIM, grouped)
    seed_sd, degrees = study.pooled_seed_sd(grouped, "B")
    if seed_sd is None:
        spread = "no Protocol B row has two seeds yet, so the seed spread is not measured"
    else:
        spread = (
            f"the seed standard deviation pooled over Protocol B's rows is {100 * seed_sd:.2f} points over "
            f"{study.degrees_of_freedom(degrees)}"
        )
    seeds = ", ".join(f"`{row}` seeds {grouped[row]['seeds']}" for row in (HEAD_CLAIM.better, HEAD_CLAIM.worse))
    bar_text = "no bar without a measured spread" if bar is None else f"95% bar ±{100 * bar:.2f}"
    return (
        f"docs/results.md judges the claim over every seed of both rows ({seeds}); {spread}: the difference of the "
        f"means is {100 * difference:+.2f} points ({bar_text}), verdict \"{outcome}\" (a cost of the default head "
        "is shown only when the difference is below minus the bar)."
    )


def rewrite_section(path, results_dir):
    """Replaces (or appends) the head-accuracy section of an existing page; the rest stays as measured."""
    if not os.path.exists(path):
        raise ValueError(f"{path!r} does not exist: only a section of an existing page is rewritten")
    with open(path) as handle:
        lines = handle.read().splitlines()
    section = head_accuracy_section(results_dir)
    if HEAD_ACCURACY_HEADING in lines:
        start = lines.index(HEAD_ACCURACY_HEADING)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        # The section starts with a blank line; keep the one before the next heading.
        start -= 1 if start and not lines[start - 1] else 0
        lines = lines[:start] + section + ([""] + lines[end:] if end < len(lines) else [])
    else:
        lines += section
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return section
