"""Convergence, oscillation, seed stability, divergence and best-of against numpy on the
numbers the fixtures wrote (read back with pyarrow, independently of DuckDB)."""

import numpy as np
import pyarrow.parquet as pq
import pytest
from analysis_data import EPOCHS, base_auroc, curve, grid, plus, write_study

from analysis import bestof, convergence, stability
from analysis.claims import claims
from analysis.views import connect, rows


def stored(tmp_path, study="s"):
    """(trials by cell_id, epochs rows) as written."""
    trials = pq.read_table(tmp_path / study / "trials").to_pylist()
    epochs = pq.read_table(tmp_path / study / "epochs").to_pylist()
    return {t["cell_id"]: t for t in trials}, epochs


@pytest.fixture
def study(tmp_path):
    cells = grid("s", classes=4, seeds=3) + grid("s", classes=4, seeds=3, lr=0.01)
    write_study(tmp_path, "s", cells, plus(0.01), seed=7)
    return tmp_path


def test_variance_across_cells_matches_numpy(study):
    trials, epochs = stored(study)
    found = {(r["loss"], r["epoch"]): r for r in convergence.convergence(connect(str(study)))}
    assert len(found) == 2 * EPOCHS
    for (loss, epoch), row in found.items():
        x = np.array([e["train_loss"] for e in epochs
                      if e["epoch"] == epoch and trials[e["cell_id"]]["loss"] == loss])
        assert row["n_cells"] == len(x) == 24 and row["n_seeds"] == 3
        assert row["loss_mean"] == pytest.approx(x.mean())
        assert row["loss_std"] == pytest.approx(x.std(ddof=1))
        assert row["loss_cv"] == pytest.approx(x.std(ddof=1) / x.mean())


def test_variance_across_seeds_matches_numpy(study):
    trials, epochs = stored(study)
    rows = convergence.convergence_seeds(connect(str(study)))
    row = next(r for r in rows if r["loss"] == "mse" and r["epoch"] == 3)
    assert (row["n_configs"], row["n_cells"], row["n_seeds"]) == (8, 24, 3)
    configs = {}
    for e in epochs:
        t = trials[e["cell_id"]]
        if e["epoch"] == 3 and t["loss"] == "mse":
            configs.setdefault((t["normal_class"], t["lr"]), []).append(e["train_mse"])
    stds = [np.std(v, ddof=1) for v in configs.values()]
    cvs = [np.std(v, ddof=1) / np.mean(v) for v in configs.values()]
    assert row["mse_seed_std"] == pytest.approx(np.mean(stds))
    assert row["mse_seed_cv"] == pytest.approx(np.mean(cvs))


def residual_sd(y):
    """SD around the least-squares line through (1..k, y), on k - 2 degrees of freedom."""
    x = np.arange(len(y))
    slope, intercept = np.polyfit(x, y, 1)
    return np.sqrt(np.sum((y - (intercept + slope * x)) ** 2) / (len(y) - 2)), slope


def test_last_epochs_oscillation_is_taken_around_the_trend(study):
    trials, epochs = stored(study)
    per_trial = {}
    for e in sorted(epochs, key=lambda e: e["epoch"]):
        per_trial.setdefault(e["cell_id"], []).append(e)
    mse, auroc, trend = [], [], []
    for cid, found in per_trial.items():
        if trials[cid]["loss"] == "lmse":
            sd, slope = residual_sd(np.log([e["train_mse"] for e in found[-3:]]))
            mse.append(sd)
            trend.append(2 * slope)  # the fitted log change from the first to the last
            auroc.append(residual_sd(np.array([e["test_auroc"] for e in found[-3:]]))[0])
    con = connect(str(study))
    row = next(r for r in convergence.oscillation(con, last=3) if r["loss"] == "lmse")
    assert row["last_k"] == 3 and row["n_cells"] == 24
    assert row["mse_osc_mean"] == pytest.approx(np.mean(mse))
    assert row["mse_trend_mean"] == pytest.approx(np.mean(trend))
    # 1/epoch curves still fall by far more than 5% over the last 3 epochs
    assert row["n_not_converged"] == sum(abs(t) > 0.05 for t in trend) == 24
    stab = next(r for r in convergence.auroc_stability(con, last=3) if r["loss"] == "lmse")
    assert stab["auroc_osc_mean"] == pytest.approx(np.mean(auroc))
    with pytest.raises(ValueError, match="last: 2 is not allowed; it must be >= 3"):
        convergence.oscillation(con, last=2)


def test_a_flat_noisy_curve_has_converged_and_a_falling_one_has_not(tmp_path):
    def shaped(cell, start, rng):
        rows = curve(cell, start, rng)
        for r in rows:
            wiggle = 0.01 * (-1) ** r["epoch"]  # +-1% around a flat level: converged
            falling = 0.5 * np.exp(-0.3 * r["epoch"])  # a straight line in log
            r["train_mse"] = 0.1 * (1 + wiggle) if cell.loss == "lmse" else falling
        return rows

    write_study(tmp_path, "s", grid("s", classes=2), plus(0.0), make_curve=shaped)
    con = connect(str(tmp_path))
    found = {r["loss"]: r for r in convergence.oscillation(con, last=4)}
    assert found["lmse"]["n_not_converged"] == 0 and found["mse"]["n_not_converged"] == 4
    wiggle = np.log(0.1 * (1 + 0.01 * (-1.0) ** np.arange(3, 7)))
    assert found["lmse"]["mse_osc_mean"] == pytest.approx(residual_sd(wiggle)[0])  # > 0.01
    assert found["mse"]["mse_osc_mean"] < 1e-6  # a steady fall does not oscillate
    assert found["mse"]["mse_trend_mean"] == pytest.approx(-0.9)  # 3 epochs x -0.3 in log
    # the plain SD of the last epochs would call the falling curve the unsteady one
    plain = {r["loss"]: r["s"] for r in rows(con, """
        SELECT t.loss, avg(sd) AS s FROM trials t JOIN (
            SELECT cell_id, stddev_samp(ln(train_mse)) AS sd FROM epochs WHERE epoch > 2
            GROUP BY cell_id) USING (cell_id) GROUP BY t.loss""")}
    assert plain["mse"] > 10 * plain["lmse"]


def test_seed_variance_components_match_numpy(study):
    trials, _ = stored(study)
    con = connect(str(study))
    rows = {(r["loss"], r["measure"]): r for r in stability.seed_components(con)}
    row = rows[("mse", "AUROC")]
    configs = {}
    for t in trials.values():
        if t["loss"] == "mse":
            configs.setdefault((t["normal_class"], t["lr"]), []).append(t["auroc"])
    pooled = np.mean([np.var(v, ddof=1) for v in configs.values()])  # 3 seeds each
    assert row["seed SD"] == pytest.approx(np.sqrt(pooled))
    assert (row["n configs (2+ seeds)"], row["n seeds"]) == (8, 3)
    assert "3 seed(s) < 5" in row["note"]
    units = stability.unit_seed_sd(con, "mse")
    auroc_units = [u for u in units if u["measure"] == "AUROC"]
    assert len(auroc_units) == 4  # one per class, each pooling its two lr configurations
    # +0.01 everywhere: the same spread across seeds on both sides
    assert all(u["other_seed_sd"] == pytest.approx(u["baseline_seed_sd"]) for u in auroc_units)


def test_divergence_share_and_wilson_interval(tmp_path):
    cells = grid("s", classes=5)
    write_study(tmp_path, "s", cells, plus(0.01),
                status=lambda c: "diverged" if c.loss == "lmse" and c.normal_class < 2 else
                "complete")
    found = {r["loss"]: r for r in convergence.divergence(connect(str(tmp_path)))}
    assert (found["lmse"]["n_diverged"], found["lmse"]["n_cells"]) == (4, 10)
    assert found["lmse"]["diverged_share"] == 0.4 and found["mse"]["diverged_share"] == 0.0
    assert found["lmse"]["share_ci_low"] == pytest.approx(0.1682, abs=1e-4)
    div = [c for c in claims(connect(str(tmp_path)), "mse") if "diverges" in c["claim"]]
    # per class: +1 (classes 0, 1) or 0: mean +0.4 over 5 classes, too few to tell
    assert div and div[0]["n_pairs"] == 10 and div[0]["n_units"] == 5
    assert div[0]["mean"] == pytest.approx(0.4) and div[0]["verdict"] == "inconclusive"


def test_best_of_takes_the_best_configuration_per_class(study):
    con = connect(str(study))
    best = {(r["normal_class"], r["value"]): r for r in bestof.best_of(con)}
    # lr 0.01 beats lr 0.001 by 0.1 * 0.009; the seed mean adds 0.004 * mean(0, 1, 2)
    want = 0.6 + 0.03 * 2 + 0.004 + 0.1 * 0.01
    assert best[(2, "mse")]["best_mean"] == pytest.approx(want)
    assert best[(2, "lmse")]["best_mean"] == pytest.approx(want + 0.01)
    assert best[(2, "mse")]["best_config"].startswith("lr=0.01 ")
    assert best[(2, "mse")]["n_configs"] == 2 and best[(2, "mse")]["n_cells"] == 6
    (side,) = bestof.best_vs_paired(con, "mse")
    assert side["n_groups"] == 4 and side["best_of_mean_delta"] == pytest.approx(0.01)
    assert side["paired_mean_delta"] == pytest.approx(0.01) and side["disagreements"] == 0


def test_half_the_seed_spread_of_train_mse_is_a_steadier_loss(tmp_path):
    """lmse's final ln(train_mse) moves half as much from seed to seed as mse's."""
    def spread(cell, start, rng):
        rows = curve(cell, start, rng)
        wobble = [0.0, 0.3, -0.2, 0.1, -0.25, 0.15][cell.seed]
        scale = 0.5 if cell.loss == "lmse" else 1.0
        rows[-1]["train_mse"] = 0.05 * (1 + 0.1 * cell.normal_class) * np.exp(scale * wobble)
        return rows

    write_study(tmp_path, "s", grid("s", classes=8, seeds=6), base_auroc, make_curve=spread)
    found = claims(connect(str(tmp_path)), "mse")
    (row,) = [c for c in found if c["name"] == "seed_sd_mse"]
    assert np.exp(row["mean"]) == pytest.approx(0.5) and row["verdict"] == "better"
    assert row["n_units"] == 8 and row["n_seeds"] == 6 and row["margin"] == 1.25
    (auroc,) = [c for c in found if c["name"] == "seed_sd_auroc"]
    assert np.exp(auroc["mean"]) == pytest.approx(1.0) and auroc["verdict"] == "equivalent"


def test_best_of_never_tunes_over_a_compared_model(tmp_path):
    cells = grid("s", classes=2, model="cae") + grid("s", classes=2, model="mlp_ae")
    write_study(tmp_path, "s", cells,
                lambda c: plus(0.01)(c) + (0.2 if c.model == "cae" else 0))
    con = connect(str(tmp_path))
    assert bestof.groups(con) == ["dataset", "normal_class", "model"]
    best = {(r["normal_class"], r["model"], r["value"]): r["best_mean"]
            for r in bestof.best_of(con)}
    assert len(best) == 8
    assert best[(0, "mlp_ae", "mse")] == pytest.approx(0.6 + 0.002 + 0.0001)
    (summary,) = bestof.best_summary(con, "mse")
    assert summary["n_pairs"] == 4 and summary["mean_delta"] == pytest.approx(0.01)
