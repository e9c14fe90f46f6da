"""Verdicts against planted truths. Every study below is written as Parquet trials in the
store's schema and read back through the real DuckDB views and the claim's own SQL
(analysis.claim_inputs); the many-study rates use the same judging functions the claims
table does (analysis.claims.judge / adjust), one study at a time."""

import numpy as np
import pytest
from analysis_data import base_auroc, grid, write_study
from verdict_sim import write_studies

from analysis import claim_inputs as ci
from analysis.claims import CLAIMS, adjust, claims, judge
from analysis.deltas import paired_deltas
from analysis.inference import ALPHA, estimate
from analysis.verdict_text import claims_table, sentence
from analysis.views import connect
from study.analysis_options import DEFAULTS
from study.cell import Cell

N_STUDIES = 300
DESIGN = ci.Design("mse")


def judged(root, names):
    """Each simulated study's AUROC claim (its primary family: one claim), and its pairs."""
    con = connect(str(root), names)
    by_study = {}
    for pair in ci.metric_pairs(con, DESIGN, names, "auroc"):
        by_study.setdefault(pair["study"], []).append(pair)
    rows = [judge(CLAIMS["auroc"], by_study[n], DEFAULTS, DESIGN) | {"scope": n} for n in names]
    return adjust(rows), [by_study[n] for n in names]


@pytest.fixture(scope="module")
def null_studies(tmp_path_factory):
    """No effect on average; classes differ (SD 0.5 AUROC points) as the quickstart's do."""
    root = tmp_path_factory.mktemp("null")
    names = write_studies(root, N_STUDIES, seed=1, effect=0.0, tau=0.005, config_sd=0.002,
                          noise=0.005)
    return judged(root, names)


def test_a_null_effect_is_rarely_called_better_or_worse(null_studies):
    rows, pairs = null_studies
    assert len(rows) == N_STUDIES and all(r["n_units"] == 10 and r["n_pairs"] == 80 for r in rows)
    false = sum(r["verdict"] in ("better", "worse") for r in rows) / N_STUDIES
    assert false <= ALPHA
    # The same studies judged with the pairs as replicates (what the claims table did before
    # the class became the unit) are called better or worse far more often than 5%.
    naive = [estimate([p["y"] for p in study]) for study in pairs]
    assert sum(e.p < ALPHA for e in naive) / N_STUDIES > 3 * ALPHA


def test_intervals_cover_the_true_effect_with_class_heterogeneity(tmp_path):
    effect = 0.004
    names = write_studies(tmp_path, N_STUDIES, seed=2, effect=effect, tau=0.008,
                          config_sd=0.003, noise=0.006)
    rows, pairs = judged(tmp_path, names)
    covered = np.mean([r["ci_low"] <= effect <= r["ci_high"] for r in rows])
    assert covered >= 0.90
    # a new class's mean delta, drawn as the simulation draws a class (class effect, its
    # configurations' effects, its pairs' noise), falls in the prediction interval
    spread = np.sqrt(0.008**2 + 0.003**2 / 4 + 0.006**2 / 8)
    new = effect + spread * np.random.default_rng(3).standard_normal(N_STUDIES)
    inside = [r["pi_low"] <= x <= r["pi_high"] for r, x in zip(rows, new, strict=True)]
    assert np.mean(inside) >= 0.90
    naive = [estimate([p["y"] for p in study]) for study in pairs]
    assert np.mean([e.ci_low <= effect <= e.ci_high for e in naive]) < 0.80


def auroc_claim(found):
    (row,) = [c for c in found if c["name"] == "auroc"]
    return row


def test_a_negligible_effect_on_every_pair_is_equivalent(tmp_path):
    """+0.0001 AUROC (and a little more on some pairs): every pair positive, far inside
    the ±0.005 margin. Before, this was 'supported'."""
    def auroc(cell):
        tiny = 0.0001 + 0.00002 * ((7 * cell.normal_class + cell.seed) % 5)
        return base_auroc(cell) + (tiny if cell.loss == "lmse" else 0.0)

    write_study(tmp_path, "s", grid("s", classes=10, seeds=3), auroc)
    con = connect(str(tmp_path))
    assert all(p["delta"] > 0 for p in paired_deltas(con, "mse"))
    row = auroc_claim(claims(con, "mse"))
    assert row["verdict"] == "equivalent" and row["n_units"] == 10 and row["n_pairs"] == 30
    assert row["p_holm"] < ALPHA  # the effect is real, and negligible
    assert "equivalent** within ±0.5 points" in sentence(row)


def opposite_signs(cell: Cell) -> float:
    """+0.01 AUROC in classes 0-5, -0.01 in classes 6-9, with a little noise per pair."""
    if cell.loss == "mse":
        return base_auroc(cell)
    sign = 1.0 if cell.normal_class < 6 else -1.0
    noise = 0.0005 * (((3 * cell.normal_class + 5 * cell.seed + int(cell.lr * 1e4)) % 7) - 3)
    return base_auroc(cell) + sign * 0.01 + noise


def test_large_effects_of_opposite_signs_across_classes_are_inconclusive(tmp_path):
    cells = [c for lr in (0.001, 0.003) for latent in (8, 16)
             for c in grid("s", classes=10, seeds=2, lr=lr, latent_dim=latent)]
    write_study(tmp_path, "s", cells, opposite_signs)
    row = auroc_claim(claims(connect(str(tmp_path)), "mse"))
    assert (row["n_units"], row["n_pairs"]) == (10, 80)  # 8 pairs a class, as in the issue
    assert row["verdict"] == "inconclusive"
    assert row["ci_low"] < 0 < row["ci_high"] and row["ci_high"] > row["margin"]
    assert row["p_heterogeneity"] < 1e-6 and "differs by class" in sentence(row)
    assert row["pi_low"] < -0.005 and row["pi_high"] > 0.005


@pytest.mark.parametrize("sign, verdict", [(1, "better"), (-1, "worse")])
def test_a_large_consistent_effect_is_better_or_worse(tmp_path, sign, verdict):
    def auroc(cell):
        shift = 0.02 + 0.002 * (cell.normal_class % 3) + 0.001 * cell.seed
        return base_auroc(cell) + (sign * shift if cell.loss == "lmse" else 0.0)

    write_study(tmp_path, "s", grid("s", classes=6, seeds=2), auroc)
    row = auroc_claim(claims(connect(str(tmp_path)), "mse"))
    assert row["verdict"] == verdict and "may be smaller" not in row["reason"]
    assert row["mean"] == pytest.approx(sign * (0.02 + 0.002 + 0.0005))


def test_every_claims_row_names_unit_margin_units_pairs_estimand_and_test(tmp_path):
    write_study(tmp_path, "s", grid("s", classes=4), opposite_signs)
    records = claims_table(claims(connect(str(tmp_path)), "mse"))
    assert all(r["verdict"] in ("better", "worse", "equivalent", "inconclusive") for r in records)
    assert len(records) == len(CLAIMS)  # the fixed family: every claim, whatever the data
    for record in records:
        assert record["unit"] == "dataset × normal_class" and record["n units"] == 4
        assert record["margin"] and record["estimand"] and "t over units" in record["test"]
        assert record["n pairs"] > 0
