"""The pure statistics against numpy/scipy on the same numbers, and the torch-free rule."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as sps

from analysis.stats import (
    bootstrap_ci,
    holm,
    mcnemar_p,
    paired_summary,
    pitman_morgan,
    std_ratio_ci,
    wilcoxon_p,
    wilson_ci,
)


def test_a_constant_positive_delta_is_a_sure_win():
    summary = paired_summary([0.01] * 20)
    assert summary["mean_delta"] == pytest.approx(0.01)
    assert summary["median_delta"] == pytest.approx(0.01)
    assert (summary["wins"], summary["ties"], summary["losses"]) == (20, 0, 0)
    assert summary["win_rate"] == 1.0
    assert summary["ci_low"] == pytest.approx(0.01) and summary["ci_high"] == pytest.approx(0.01)
    assert summary["p"] < 1e-4
    assert summary["p"] == pytest.approx(sps.wilcoxon([0.01] * 20).pvalue)


def test_identical_values_give_p_one_and_only_ties():
    summary = paired_summary([0.0] * 12)
    assert summary["p"] == 1.0
    assert (summary["wins"], summary["ties"], summary["losses"]) == (0, 12, 0)


def test_wilcoxon_and_bootstrap_match_scipy_and_numpy():
    x = np.random.default_rng(3).normal(0.02, 0.05, 40)
    assert wilcoxon_p(x) == pytest.approx(sps.wilcoxon(x).pvalue)
    low, high = bootstrap_ci(x)
    assert low < x.mean() < high
    assert bootstrap_ci(x) == (low, high)  # fixed seed: reproducible to the digit
    rng = np.random.default_rng(0)
    means = np.concatenate([x[rng.integers(0, 40, (500, 40))].mean(axis=1) for _ in range(8)])
    assert (low, high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))


def test_pitman_morgan_detects_a_smaller_paired_variance():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1.0, 60)
    ratio, p = pitman_morgan(base, 0.3 * base + rng.normal(0, 0.05, 60))
    assert ratio < 0.4 and p < 1e-6
    assert pitman_morgan(base, base + 0.2) == (pytest.approx(1.0), 1.0)
    low, high = std_ratio_ci(base, 0.3 * base)
    assert low == pytest.approx(0.3) and high == pytest.approx(0.3)


def test_pitman_morgan_equals_the_correlation_t_test():
    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, 30), rng.normal(0, 1.5, 30)
    r, p_r = sps.pearsonr(x + y, x - y)
    assert pitman_morgan(x, y)[1] == pytest.approx(p_r)
    assert pitman_morgan(x, y)[0] == pytest.approx(np.std(y, ddof=1) / np.std(x, ddof=1))


def test_proportions_and_multiplicity():
    low, high = wilson_ci(0, 80)
    assert low == 0 and high == pytest.approx(0.0458, abs=1e-4)
    assert wilson_ci(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(0, 8) == pytest.approx(2 / 2**8)
    assert holm([0.01, 0.04, 0.03, float("nan")])[:3] == pytest.approx([0.03, 0.06, 0.06])


def test_analysis_never_imports_torch_or_ray():
    code = (
        "import sys\n"
        "import analysis.report, analysis.queries, analysis.shell, analysis.claims\n"
        "import analysis.tables_lmse_lamp, analysis.tables_iaead_vae, analysis.figures\n"
        "import study.cli\n"
        "bad = [m for m in ('torch', 'ray') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
