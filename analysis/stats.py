"""Pure statistics on numbers: bootstrap CIs, paired tests, proportions, multiplicity.

Every function takes plain sequences and returns plain floats or dicts, so each can be
checked against numpy/scipy on the same numbers. ``rows`` is re-exported for callers
that query through this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats as sps

from analysis.views import rows

__all__ = [
    "ALPHA", "bootstrap_ci", "holm", "mcnemar_p", "paired_summary", "pitman_morgan",
    "rows", "std_ratio_ci", "wilcoxon_p", "wilson_ci",
]

ALPHA = 0.05  # every verdict is at the 5% level
N_BOOT = 4000  # bootstrap resamples; percentile CIs are stable to ~0.002 at this count
SEED = 0  # fixed, so a report is reproducible to the digit
TIE = 1e-9  # |delta| at or below this is a tie (AUROC is a ratio of counts)


def bootstrap_ci(
    x: Sequence[float], stat: Callable[[np.ndarray], np.ndarray] | None = None,
    level: float = 0.95, n_boot: int = N_BOOT, seed: int = SEED,
) -> tuple[float, float]:
    """Percentile bootstrap CI of a statistic of one sample.

    Args:
        x: the sample (e.g. paired deltas).
        stat: maps a [resamples, n] array to [resamples]; default the mean over axis 1.
        level: coverage of the interval.
        n_boot: number of resamples.
        seed: the resampling seed.
    Returns:
        (low, high); (nan, nan) for an empty sample.
    """
    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    stat = stat or (lambda a: a.mean(axis=1))
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, n_boot, 500):  # chunks keep memory at 500 x n
        idx = rng.integers(0, len(x), size=(min(500, n_boot - start), len(x)))
        values.append(stat(x[idx]))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.concatenate(values), [tail, 100 - tail])
    return float(low), float(high)


def wilcoxon_p(deltas: Sequence[float], tie: float = TIE) -> float:
    """Two-sided Wilcoxon signed-rank p of paired deltas (ties dropped, as Wilcoxon did).

    Returns 1.0 when every delta is a tie (no evidence of any difference) and nan for
    an empty sample.
    """
    x = np.asarray(deltas, dtype=float)
    if len(x) == 0:
        return math.nan
    x = np.where(np.abs(x) <= tie, 0.0, x)
    if not np.any(x):
        return 1.0
    return float(sps.wilcoxon(x, zero_method="wilcox").pvalue)


def paired_summary(deltas: Sequence[float], tie: float = TIE) -> dict[str, float | int]:
    """n, mean and median delta, bootstrap 95% CI of the mean, Wilcoxon p, win/tie/loss."""
    x = np.asarray(deltas, dtype=float)
    low, high = bootstrap_ci(x)
    wins, losses = int((x > tie).sum()), int((x < -tie).sum())
    return {
        "n_pairs": len(x),
        "mean_delta": float(x.mean()) if len(x) else math.nan,
        "median_delta": float(np.median(x)) if len(x) else math.nan,
        "ci_low": low,
        "ci_high": high,
        "p": wilcoxon_p(x, tie),
        "wins": wins,
        "ties": len(x) - wins - losses,
        "losses": losses,
        "win_rate": wins / len(x) if len(x) else math.nan,
    }


def pitman_morgan(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Pitman-Morgan test of equal variances in paired samples.

    var(x) = var(y) exactly when x+y and x-y are uncorrelated; r is tested with a t
    statistic on n-2 degrees of freedom.
    Returns:
        (std(y) / std(x), two-sided p); p is nan under 3 pairs, 1.0 when x == y.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    sx, sy = (float(np.std(v, ddof=1)) if len(v) > 1 else math.nan for v in (x, y))
    ratio = sy / sx if sx > 0 else math.nan
    if len(x) < 3:
        return ratio, math.nan
    s, d = x + y, x - y
    scale = 1e-9 * (np.abs(x).max() + np.abs(y).max())  # rounding, relative to the data
    if np.ptp(d) <= scale or np.ptp(s) <= scale:  # y = x + c or y = c - x: equal variances
        return ratio, 1.0
    r = float(np.corrcoef(s, d)[0, 1])
    if abs(r) >= 1:
        return ratio, 0.0
    t = r * math.sqrt((len(x) - 2) / (1 - r * r))
    return ratio, float(2 * sps.t.sf(abs(t), len(x) - 2))


def std_ratio_ci(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Bootstrap 95% CI of std(y) / std(x), resampling pairs together."""
    xy = np.stack([np.asarray(x, float), np.asarray(y, float)], axis=1)
    if len(xy) < 3:
        return math.nan, math.nan
    index = np.arange(len(xy), dtype=float)

    def ratio(idx: np.ndarray) -> np.ndarray:
        sample = xy[idx.astype(int)]  # [resamples, n, 2]
        sd = sample.std(axis=1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return sd[:, 1] / sd[:, 0]

    low, high = bootstrap_ci(index, stat=ratio)
    return low, high


def wilson_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n; (nan, nan) when n is 0."""
    if n == 0:
        return math.nan, math.nan
    z = float(sps.norm.ppf(1 - (1 - level) / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # the exact ends for k = 0 and k = n (the formula leaves rounding dust there)
    return (0.0 if k == 0 else centre - half), (1.0 if k == n else centre + half)


def mcnemar_p(only_baseline: int, only_other: int) -> float:
    """Exact McNemar p for paired binary outcomes (discordant pair counts)."""
    n = only_baseline + only_other
    if n == 0:
        return 1.0
    return float(sps.binomtest(only_other, n, 0.5).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (nan stays nan and is not counted)."""
    p = np.asarray(pvalues, dtype=float)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    adjusted = np.full(len(p), math.nan)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()
