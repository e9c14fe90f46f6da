"""Convergence, oscillation, seed stability, divergence and best-of against numpy on the
numbers the fixtures wrote (read back with pyarrow, independently of DuckDB)."""

import numpy as np
import pyarrow.parquet as pq
import pytest
from analysis_data import EPOCHS, base_auroc, curve, grid, plus, write_study

from analysis import bestof, convergence
from analysis.claims import claims
from analysis.views import connect


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


def test_last_epochs_oscillation_matches_numpy(study):
    trials, epochs = stored(study)
    per_trial = {}
    for e in sorted(epochs, key=lambda e: e["epoch"]):
        per_trial.setdefault(e["cell_id"], []).append(e)
    want_mse = [np.std([e["train_mse"] for e in v[-3:]], ddof=1)
                for cid, v in per_trial.items() if trials[cid]["loss"] == "lmse"]
    want_auroc = [np.std([e["test_auroc"] for e in v[-3:]], ddof=1)
                  for cid, v in per_trial.items() if trials[cid]["loss"] == "lmse"]
    con = connect(str(study))
    row = next(r for r in convergence.oscillation(con, last=3) if r["loss"] == "lmse")
    assert row["last_k"] == 3 and row["n_cells"] == 24
    assert row["mse_osc_mean"] == pytest.approx(np.mean(want_mse))
    stab = next(r for r in convergence.auroc_stability(con, last=3) if r["loss"] == "lmse")
    assert stab["auroc_std_last_k"] == pytest.approx(np.mean(want_auroc))
    with pytest.raises(ValueError, match="last: 1 is not allowed"):
        convergence.oscillation(con, last=1)


def test_seed_stability_matches_numpy_and_pairs_configurations(study):
    trials, _ = stored(study)
    con = connect(str(study))
    row = next(r for r in convergence.seed_stability(con) if r["loss"] == "mse")
    configs = {}
    for t in trials.values():
        if t["loss"] == "mse":
            configs.setdefault((t["normal_class"], t["lr"]), []).append(t["auroc"])
    assert row["n_configs"] == 8 and row["n_seeds"] == 3
    assert row["auroc_seed_std"] == pytest.approx(np.mean([np.std(v, ddof=1)
                                                           for v in configs.values()]))
    (summary,) = convergence.seed_stability_summary(con, "mse")
    assert summary["n_pairs"] == 8  # +0.01 everywhere: same spread across seeds
    assert summary["mean_delta"] == pytest.approx(0.0, abs=1e-12) and summary["p"] == 1.0


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
    assert div and div[0]["n_pairs"] == 10 and div[0]["verdict"] == "not supported"


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


def test_lower_variance_claim_on_the_common_scale(tmp_path):
    """lmse's curve is its mse partner's, halved (plus a constant): ratio 0.5, supported."""
    def halved(cell, start, rng):
        rows = curve(cell, start, np.random.default_rng([cell.normal_class, cell.seed]))
        if cell.loss == "lmse":
            for r in rows:
                r["train_mse"] = 0.5 * r["train_mse"] + 0.05
        return rows

    write_study(tmp_path, "s", grid("s", classes=10), base_auroc, make_curve=halved)
    found = claims(connect(str(tmp_path)), "mse")
    (variance,) = [c for c in found if "lower variance" in c["claim"]]
    assert variance["effect"] == pytest.approx(0.5) and variance["verdict"] == "supported"
    assert variance["ci_low"] == pytest.approx(0.5) and variance["n_pairs"] == 20


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
