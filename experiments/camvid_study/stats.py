"""The study's verdicts: a t bar on the difference of two means (unequal variances, each row's own or the pooled seed
spread, Student's t on the pooled degrees of freedom), and Holm's step-down over all verdicts.

A row's seed spread is the larger of its own standard deviation and the one pooled over its protocol's rows with
several seeds: two or three seeds measure a spread poorly (two can land on the same value), and a row with one
seed has none of its own. Student's t takes the pooled spread's degrees of freedom.
"""

import math
import statistics

from scipy import stats

CONFIDENCE = 0.95  # two-sided: a difference beyond the bar comes from seed noise alone at most 5% of the time
DECIDED = ("holds", "does not hold")
NO_SPREAD = "1 seed: no spread measured yet"


def pooled_sd(groups):
    """`(sd, degrees of freedom)` pooled over the groups (lists of values) with several values,
    `sqrt(sum((n_i - 1) s_i^2) / sum(n_i - 1))`; `(None, 0)` when none has two."""
    groups = [values for values in groups if len(values) > 1]
    degrees = sum(len(values) - 1 for values in groups)
    if not degrees:
        return None, 0
    return math.sqrt(sum((len(values) - 1) * statistics.variance(values) for values in groups) / degrees), degrees


def t_critical(degrees, confidence=CONFIDENCE):
    """How many standard errors apart two means must be (two-sided) with `degrees` degrees of freedom."""
    return float(stats.t.ppf(1 - (1 - confidence) / 2, degrees))


def compare(better, worse, pooled=(None, 0)):
    """Judges `mean(better) > mean(worse)` from per-seed values.

    Returns:
        dict: "difference"; "bar" (half-width of the 95% interval, None without a spread); "p" (two-sided,
        None without a spread); "outcome": "holds" / "does not hold" beyond the bar, "within seed noise" inside
        it, `NO_SPREAD` without a spread.
    """
    seed_sd, degrees = pooled
    difference = statistics.fmean(better) - statistics.fmean(worse)
    variance = 0.0
    for values in (better, worse):
        spreads = [sd for sd in (statistics.stdev(values) if len(values) > 1 else None, seed_sd) if sd is not None]
        if not spreads:
            return {"difference": difference, "bar": None, "p": None, "outcome": NO_SPREAD}
        variance += max(spreads) ** 2 / len(values)
    if seed_sd is None:
        degrees = len(better) + len(worse) - 2
    error = math.sqrt(variance)
    bar = t_critical(degrees) * error
    if error == 0:  # every seed alike: any difference is beyond the bar
        p = 0.0 if difference else 1.0
    else:
        p = float(2 * stats.t.sf(abs(difference) / error, degrees))
    outcome = "within seed noise" if abs(difference) <= bar else "holds" if difference > 0 else "does not hold"
    return {"difference": difference, "bar": bar, "p": p, "outcome": outcome}


def holm(p_values, familywise=1 - CONFIDENCE):
    """Holm's (1979) step-down procedure: which of `p_values` are rejected, in their order (list of bool).

    Sorted ascending, the i-th smallest p (from 0) is rejected while it is at most `familywise / (m - i)`; the
    first that is not stops it. Valid under any dependence (the claims share rows).
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] > familywise / (len(p_values) - rank):
            break
        rejected[index] = True
    return rejected
