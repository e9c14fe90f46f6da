"""The pure statistics (analysis.inference) against scipy/statsmodels on the same numbers
and against planted truths, and the torch-free rule."""

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from analysis.inference import (
    delong_se,
    estimate,
    heterogeneity,
    holm,
    pooled_variance,
    verdict,
    wilson_ci,
)
from analysis.stability import components


def test_the_interval_is_a_t_interval_over_units():
    x = np.random.default_rng(3).normal(0.02, 0.05, 12)
    est = estimate(x, margin=0.01)
    low, high = sps.t.interval(0.95, 11, loc=x.mean(), scale=sps.sem(x))
    assert (est.ci_low, est.ci_high) == pytest.approx((low, high))
    assert est.p == pytest.approx(sps.ttest_1samp(x, 0.0).pvalue)
    assert est.sd == pytest.approx(x.std(ddof=1)) and est.n_units == 12
    # TOST: the larger of the two one-sided p-values against -margin and +margin
    upper = sps.ttest_1samp(x, 0.01, alternative="less").pvalue
    lower = sps.ttest_1samp(x, -0.01, alternative="greater").pvalue
    assert est.p_equivalence == pytest.approx(max(upper, lower))
    half = sps.t.ppf(0.975, 11) * x.std(ddof=1) * math.sqrt(1 + 1 / 12)
    assert (est.pi_low, est.pi_high) == pytest.approx((x.mean() - half, x.mean() + half))


def test_the_detectable_effect_has_80_percent_power():
    x = np.random.default_rng(4).normal(0, 1, 10)
    est = estimate(x)
    d = est.detectable / est.sd
    nc = d * math.sqrt(10)  # power of the two-sided t test at that effect
    crit = sps.t.ppf(0.975, 9)
    power = sps.nct.sf(crit, 9, nc) + sps.nct.cdf(-crit, 9, nc)
    assert power == pytest.approx(0.80, abs=1e-3)


def test_degenerate_samples():
    same = estimate([0.01] * 5, margin=0.005)
    assert (same.ci_low, same.ci_high, same.p, same.p_equivalence) == (0.01, 0.01, 0.0, 1.0)
    inside = estimate([0.001] * 5, margin=0.005)
    assert inside.p_equivalence == 0.0
    assert estimate([0.0] * 4, 0.005).p == 1.0
    one = estimate([0.3], 0.005)
    assert one.n_units == 1 and one.mean == 0.3 and math.isnan(one.p)
    assert verdict(one, one.p, one.p_equivalence)[0] == "inconclusive"


def test_verdict_rules():
    tight = estimate([0.001, 0.0012, 0.0008, 0.0011, 0.0009], margin=0.005)
    assert verdict(tight, tight.p, tight.p_equivalence)[0] == "equivalent"  # and p < 0.05
    assert tight.p < 0.05
    big = estimate([0.02, 0.025, 0.03, 0.022, 0.028], margin=0.005)
    assert verdict(big, big.p, big.p_equivalence)[0] == "better"
    assert verdict(big, big.p, big.p_equivalence, higher_is_better=False)[0] == "worse"
    wide = estimate([0.02, -0.02, 0.01, -0.015, 0.0], margin=0.005)
    assert verdict(wide, wide.p, wide.p_equivalence)[0] == "inconclusive"
    # a Holm-adjusted p above 5% takes a raw "better" back
    assert verdict(big, 0.2, 0.9)[0] == "inconclusive"


def test_holm_counts_a_member_without_a_test():
    assert holm([0.01, 0.04, 0.03, float("nan")]) == pytest.approx([0.04, 0.09, 0.09, 1.0])
    assert holm([0.01]) == [0.01] and holm([]) == []


def test_heterogeneity_is_one_way_anova():
    rng = np.random.default_rng(5)
    values = rng.normal(0, 1, 40) + np.repeat([0, 1, 2, 3], 10)
    units = np.repeat(["a", "b", "c", "d"], 10)
    f, p = heterogeneity(values, units)
    want = sps.f_oneway(*(values[units == u] for u in "abcd"))
    assert (f, p) == pytest.approx((want.statistic, want.pvalue))
    assert math.isnan(heterogeneity([1.0, 2.0], ["a", "b"])[1])  # no unit with two values


def test_delong_se_matches_the_spread_of_auroc_over_test_sets():
    """Binormal scores (anomalies shifted by 1 SD): DeLong's SE from one test set against
    the SD of the AUROC over 2,000 test sets drawn the same way."""
    rng = np.random.default_rng(6)
    labels = np.r_[np.zeros(300, int), np.ones(100, int)]

    def draw():
        return np.r_[rng.normal(0, 1, 300), rng.normal(1, 1, 100)]

    aurocs = [sps.mannwhitneyu(s[300:], s[:300]).statistic / 30000 for s in
              (draw() for _ in range(2000))]
    ses = [delong_se(labels, draw()) for _ in range(50)]
    assert np.median(ses) == pytest.approx(np.std(aurocs), rel=0.08)
    assert math.isnan(delong_se([0, 1], [0.1, 0.9]))  # one image a side: no SE
    tied = delong_se(labels, np.r_[np.zeros(300), np.ones(100)])
    assert tied == 0.0  # perfectly separated: no spread


def test_wilson_and_pooled_variance():
    low, high = wilson_ci(0, 80)
    assert low == 0 and high == pytest.approx(0.0458, abs=1e-4)
    assert wilson_ci(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert pooled_variance([1.0, 4.0], [3, 5]) == pytest.approx((2 * 1 + 4 * 4) / 6)


def nested(rng, units=8, configs=6, seeds=4, unit_sd=0.3, config_sd=0.2, seed_sd=0.1):
    rows = []
    for u in range(units):
        a = unit_sd * rng.standard_normal()
        for c in range(configs):
            b = config_sd * rng.standard_normal()
            rows += [{"unit": u, "config": f"{u}-{c}", "y": a + b + seed_sd * e}
                     for e in rng.standard_normal(seeds)]
    return pd.DataFrame(rows)


def per_config(frame):
    g = frame.groupby(["unit", "config"])["y"]
    return [{"unit": u, "n": int(n), "mean": m, "v": v}
            for (u, _), n, m, v in zip(g.size().index, g.size(), g.mean(), g.var(), strict=True)]


def test_variance_components_recover_planted_sds():
    frame = nested(np.random.default_rng(7), units=40, configs=10, seeds=5)
    found = components(per_config(frame))
    assert found["seed_sd"] == pytest.approx(0.1, rel=0.1)
    assert found["config_sd"] == pytest.approx(0.2, rel=0.15)
    assert found["unit_sd"] == pytest.approx(0.3, rel=0.3)


def test_variance_components_equal_statsmodels_reml_on_a_balanced_layout():
    frame = nested(np.random.default_rng(8))
    fit = smf.mixedlm("y ~ 1", frame, groups="unit", re_formula="1",
                      vc_formula={"config": "0 + C(config)"}).fit(reml=True)
    found = components(per_config(frame))
    assert found["seed_sd"] == pytest.approx(math.sqrt(fit.scale), rel=0.02)
    assert found["config_sd"] == pytest.approx(math.sqrt(fit.vcomp[0]), rel=0.05)
    assert found["unit_sd"] == pytest.approx(math.sqrt(fit.cov_re.iloc[0, 0]), rel=0.05)


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
