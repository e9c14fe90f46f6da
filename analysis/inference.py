"""The statistics behind a verdict, on plain arrays: the report's claims and the planted-
truth simulations of the tests call these same functions.

The estimand of a claim is the mean over units (normal classes by default) of each unit's
mean paired effect. Cells of one class share one test split, so their pairs are not
independent replicates; the units are. The interval is a t interval over the unit means
(statsmodels' DescrStatsW), equivalence is two one-sided t tests (TOST) within ±margin,
and the smallest detectable effect is the t test's at 80% power (statsmodels' TTestPower).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Hashable, Sequence

import numpy as np
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

ALPHA = 0.05  # every verdict is at the 5% level, within its family (Holm)
POWER = 0.80  # for the smallest detectable effect
VERDICTS = ("better", "worse", "equivalent", "inconclusive")
NAN = math.nan


@dataclasses.dataclass(frozen=True)
class Estimate:
    """One claim's effect over its units, on the scale the test runs on."""

    n_units: int
    mean: float
    sd: float  # between-unit SD: the SD of the unit means
    ci_low: float  # 95% t interval of the mean over units
    ci_high: float
    p: float  # two-sided one-sample t test of mean = 0
    p_equivalence: float  # TOST of |mean| >= margin (the larger one-sided p)
    pi_low: float  # 95% prediction interval of a new unit's mean effect
    pi_high: float
    detectable: float  # smallest |mean| this many units detect (80% power, 5%, two-sided)
    margin: float


def group_means(values: Sequence[float], groups: Sequence[Hashable]) -> dict[Hashable, float]:
    """Mean of ``values`` per group label, groups in first-seen order."""
    sums: dict[Hashable, list[float]] = {}
    for value, group in zip(values, groups, strict=True):
        sums.setdefault(group, []).append(float(value))
    return {g: float(np.mean(v)) for g, v in sums.items()}


@functools.lru_cache(maxsize=256)
def detectable_d(n: int) -> float:
    """The standardised effect (mean / SD) a one-sample t test over n units detects with
    80% power at the 5% level (two-sided)."""
    return float(TTestPower().solve_power(effect_size=None, nobs=n, alpha=ALPHA, power=POWER))


def estimate(unit_values: Sequence[float], margin: float = NAN) -> Estimate:
    """The t interval, t test, TOST, prediction interval and detectable effect over units.

    Args:
        unit_values: one number per unit (its mean paired effect).
        margin: the smallest effect of interest, on the same scale (> 0); nan: no TOST.
    Returns:
        An Estimate; fields are nan where the units cannot give them (under 2 units).
    """
    x = np.asarray(unit_values, dtype=float)
    n = len(x)
    if n < 2:
        mean = float(x[0]) if n else NAN
        return Estimate(n, mean, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, margin)
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(mean)):  # every unit the same: the t statistic is 0/0
        p = 0.0 if mean != 0 else 1.0
        p_eq = NAN if math.isnan(margin) else 0.0 if abs(mean) < margin else 1.0
        return Estimate(n, mean, 0.0, mean, mean, p, p_eq, mean, mean, 0.0, margin)
    stats = DescrStatsW(x)
    low, high = stats.tconfint_mean(ALPHA)
    p_eq = NAN if math.isnan(margin) else stats.ttost_mean(-margin, margin)[0]
    half = float(sps.t.ppf(1 - ALPHA / 2, n - 1)) * sd * math.sqrt(1 + 1 / n)
    return Estimate(n, mean, sd, float(low), float(high), float(stats.ttest_mean(0.0)[1]),
                    float(p_eq), mean - half, mean + half, detectable_d(n) * sd, margin)


def heterogeneity(values: Sequence[float], units: Sequence[Hashable]) -> tuple[float, float]:
    """One-way ANOVA of ``values`` (e.g. per-configuration mean deltas) across units:
    (F, p); nan where no unit has two values or there is one unit."""
    groups: dict[Hashable, list[float]] = {}
    for value, unit in zip(values, units, strict=True):
        groups.setdefault(unit, []).append(float(value))
    samples = list(groups.values())
    if len(samples) < 2 or sum(len(s) for s in samples) <= len(samples):
        return NAN, NAN
    if all(np.ptp(s) == 0 for s in samples):  # no variation within units: F is x/0
        same = len({round(s[0], 12) for s in samples}) == 1
        return (NAN, 1.0) if same else (math.inf, 0.0)
    found = sps.f_oneway(*samples)
    return float(found.statistic), float(found.pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values over a fixed family (statsmodels); a member without a test
    (nan) still counts in the family's size, as p = 1."""
    p = np.nan_to_num(np.asarray(pvalues, dtype=float), nan=1.0)
    if len(p) < 2:  # a family of one is its own adjustment (and multipletests gc-collects)
        return p.tolist()
    return multipletests(p, alpha=ALPHA, method="holm")[1].tolist()


def verdict(
    est: Estimate, p_holm: float, p_equivalence_holm: float, higher_is_better: bool = True,
) -> tuple[str, str]:
    """(verdict, reason) from an estimate and its Holm-adjusted p-values.

    equivalent: TOST rejects |effect| >= margin; better / worse: the t test rejects 0 and
    the mean lies on the better / worse side; inconclusive: neither, or under 2 units.
    """
    if est.n_units < 2:
        return "inconclusive", (f"{est.n_units} unit(s): an interval over units needs 2 "
                                "(name another unit in the study's analysis.unit)")
    if p_equivalence_holm < ALPHA:
        return "equivalent", "the 90% CI lies within ±margin (TOST, Holm)"
    if p_holm < ALPHA:
        better = (est.mean > 0) == higher_is_better
        small = est.ci_low < est.margin if est.mean > 0 else est.ci_high > -est.margin
        note = "; it may be smaller than the margin" if small else ""
        return ("better" if better else "worse"), f"the 95% CI excludes 0 (t, Holm){note}"
    return "inconclusive", "the 95% CI holds 0 and reaches past ±margin"


def wilson_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (statsmodels); (nan, nan) when n is 0."""
    if n == 0:
        return NAN, NAN
    low, high = proportion_confint(k, n, alpha=1 - level, method="wilson")
    # the exact ends for k = 0 and k = n (the formula leaves rounding dust there)
    return (0.0 if k == 0 else float(low)), (1.0 if k == n else float(high))


def pooled_variance(variances: Sequence[float], counts: Sequence[int]) -> float:
    """Within-group variance pooled over groups, each weighted by its n - 1 degrees of
    freedom: the seed variance component of a one-way layout (configurations x seeds)."""
    v, n = np.asarray(variances, dtype=float), np.asarray(counts, dtype=float)
    df = (n - 1).sum()
    return float(((n - 1) * v).sum() / df) if df > 0 else NAN


def delong_se(labels: Sequence[int], scores: Sequence[float]) -> float:
    """DeLong's standard error of one AUROC (anomalies = label 1 as positives), through
    midrank placement values (Sun & Xu 2014); nan under 2 images of either label."""
    y, s = np.asarray(labels), np.asarray(scores, dtype=float)
    pos, neg = s[y == 1], s[y == 0]
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        return NAN
    both = sps.rankdata(np.concatenate([pos, neg]))
    v10 = (both[:m] - sps.rankdata(pos)) / n  # per anomaly: share of normals scored lower
    v01 = 1 - (both[m:] - sps.rankdata(neg)) / m  # per normal: share of anomalies higher
    return float(math.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n))
