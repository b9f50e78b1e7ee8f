"""The verdicts: Student's t bar and p-value with a pooled seed spread, and Holm's step-down."""

import math

import pytest
import stats


def test_holm_on_the_textbook_example():
    """Wikipedia, "Holm–Bonferroni method", section "Example" (the procedure of Holm, Scand. J. Statist. 6, 1979):
    four hypotheses at alpha 0.05 with p-values 0.01, 0.04, 0.03, 0.005. Sorted, 0.005 <= 0.05/4 and 0.01 <= 0.05/3
    are rejected; 0.03 > 0.05/2 stops the procedure, so 0.04 is kept although it is below 0.05: H1 and H4 are
    rejected, H2 and H3 are not."""
    assert stats.holm([0.01, 0.04, 0.03, 0.005], familywise=0.05) == [True, False, False, True]
    # Not Bonferroni (0.05/2 for both): 0.04 is rejected only by the step-down (0.04 <= 0.05/1 once 0.01 is).
    assert stats.holm([0.01, 0.04], familywise=0.05) == [True, True]
    assert stats.holm([], familywise=0.05) == []


def test_t_critical_matches_the_t_table():
    # Two-sided 95% quantiles of a t table: 12.706 (1 df), 4.303 (2), 2.776 (4), 2.228 (10).
    for degrees, expected in ((1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228)):
        assert stats.t_critical(degrees) == pytest.approx(expected, abs=1e-3)


def test_compare_by_hand_with_two_seeds_each():
    verdict = stats.compare([0.30, 0.32], [0.20, 0.22])
    error = math.sqrt(0.0002 / 2 + 0.0002 / 2)  # each row's sample SD is 0.01*sqrt(2); 2 degrees of freedom
    assert verdict["difference"] == pytest.approx(0.10)
    assert verdict["bar"] == pytest.approx(4.3027 * error, rel=1e-4)
    # With 2 degrees of freedom P(|T| > x) = 1 - x / sqrt(2 + x^2) in closed form.
    x = 0.10 / error
    assert verdict["p"] == pytest.approx(1 - x / math.sqrt(2 + x * x), rel=1e-6)
    assert verdict["outcome"] == "holds"
    assert stats.compare([0.20, 0.22], [0.30, 0.32])["outcome"] == "does not hold"


def test_a_pooled_spread_widens_a_lucky_row_and_judges_one_seed_rows():
    # Two seeds that agree would give a zero bar; the pooled SD (0.05 over 4 df) stands in for it.
    verdict = stats.compare([0.30, 0.30], [0.25], pooled=(0.05, 4))
    assert verdict["bar"] == pytest.approx(2.7764 * math.sqrt(0.05**2 / 2 + 0.05**2), rel=1e-4)
    assert verdict["outcome"] == "within seed noise"
    assert stats.compare([0.30], [0.25])["outcome"] == stats.NO_SPREAD


def test_a_row_whose_own_spread_exceeds_the_pooled_one_keeps_its_own():
    # Seeds 0.10 apart (SD 0.0707) against a pooled SD of 0.01: the row's own spread widens the bar past the
    # +0.10 difference (with the pooled SD alone the bar would be 0.028 and the claim would hold).
    verdict = stats.compare([0.15, 0.25], [0.10, 0.10], pooled=(0.01, 4))
    assert verdict["bar"] == pytest.approx(2.7764 * math.sqrt(0.005 / 2 + 0.01**2 / 2), rel=1e-4)
    assert verdict["outcome"] == "within seed noise"


def test_pooled_sd_weights_by_degrees_of_freedom():
    sd, degrees = stats.pooled_sd([[1.0, 3.0], [0.0, 0.0, 3.0], [7.0]])
    # variances 2 (1 df) and 3 (2 df): (1*2 + 2*3) / 3
    assert degrees == 3 and sd == pytest.approx(math.sqrt(8 / 3))
    assert stats.pooled_sd([[1.0], [2.0]]) == (None, 0)
