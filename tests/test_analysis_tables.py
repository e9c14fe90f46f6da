"""Paper-format tables from stored trials of known values."""

import numpy as np
from analysis_data import EPOCHS, base_auroc, curve, grid, plus, write_study

from analysis.tables_iaead_vae import aevae_outcomes, iaead_table2, iaead_table3
from analysis.tables_lmse_lamp import lamp_table1, lamp_table2, lmse_table
from analysis.views import connect
from study.cell import Cell


def test_lmse_table_is_mean_pm_std_per_class_with_a_total(tmp_path):
    cells = grid("s", classes=3) + grid("s", classes=3, lr=0.01)
    write_study(tmp_path, "s", cells, plus(0.01))
    table = lmse_table(connect(str(tmp_path)))
    rows = {r["normal"]: r for r in table.records}
    x = np.array([base_auroc(c) for c in cells if c.loss == "mse" and c.normal_class == 1])
    assert rows["1"]["mse"] == f"{x.mean():.3f} ± {x.std(ddof=1):.3f}"
    assert (rows["1"]["n cells"], rows["1"]["n seeds"]) == (8, 2)  # 2 losses x 2 lr x 2 seeds
    assert rows["Total"]["n cells"] == 24
    every = np.array([base_auroc(c) + 0.01 for c in cells if c.loss == "lmse"])
    assert rows["Total"]["lmse"] == f"{every.mean():.3f} ± {every.std(ddof=1):.3f}"
    assert "n = 24 complete cells, 2 seed(s)" in table.note


def test_lamp_table1_is_by_batch_size(tmp_path):
    cells = grid("s", ("mse", "lmse"), classes=2, batch_size=64) + grid(
        "s", ("mse", "lmse"), classes=2, batch_size=16)
    write_study(tmp_path, "s", cells, lambda c: base_auroc(c) + c.batch_size / 1000)
    table = lamp_table1(connect(str(tmp_path)))
    (mse,) = [r for r in table.records if r["loss"] == "mse"]
    assert list(mse)[2:4] == ["bs 64", "bs 16"]  # descending, as the paper
    # per class the best config is the seed mean; then the mean over classes 0 and 1
    want = np.mean([0.6 + 0.03 * k + 0.002 + 0.0001 + 0.064 for k in (0, 1)])
    assert mse["bs 64"] == f"{want:.3f}" and mse["n classes"] == "2"


def lamp_cells(study):
    losses = [("mse", "{}"), ("lamp", "{}"), ("l1", "{}"), ("lamp", '{"base":"l1"}')]
    return [Cell(study=study, loss=name, loss_params=params, optimizer=opt, normal_class=k,
                 epochs=EPOCHS)
            for name, params in losses for opt in ("adam", "sgd") for k in range(3)]


def test_lamp_table2_pairs_each_base_loss_with_its_lamp_form(tmp_path):
    def auroc(c):
        lamp = 0.02 if c.loss == "lamp" else 0.0
        return 0.7 + 0.1 * c.normal_class + (0.05 if c.optimizer == "adam" else 0) + lamp

    write_study(tmp_path, "s", lamp_cells("s"), auroc)
    table = lamp_table2(connect(str(tmp_path)))
    rows = {r["normal"]: r for r in table.records}
    assert rows[1]["adam l2"] == "0.850 → 0.870" and rows[1]["sgd l1"] == "0.800 → 0.820"
    assert rows[1]["best"] == "0.850 → 0.870"
    assert rows["Average"]["adam l1"] == "0.850 → 0.870 (n=3)"
    assert (rows[1]["n cells"], rows[1]["n seeds"], rows["Average"]["n cells"]) == (8, 1, 24)


def test_lamp_table2_names_what_it_needs(tmp_path):
    write_study(tmp_path, "s", grid("s", classes=2), plus(0.0))
    table = lamp_table2(connect(str(tmp_path)))
    assert table.records == [] and "needs a lamp loss and its plain base loss" in table.note


def test_iaead_tables_average_classes_then_spread_over_seeds(tmp_path):
    cells = [Cell(study="s", loss=loss, protocol="contaminated", contamination=rho,
                  normal_class=k, seed=s, epochs=EPOCHS)
             for loss in ("mse", "iaead") for rho in (0.1, 0.2)
             for k in range(3) for s in range(3)]
    write_study(tmp_path, "s", cells, lambda c: 0.5 + 0.1 * c.normal_class + 0.01 * c.seed
                + (0.1 if c.loss == "iaead" else 0) - c.contamination / 2)
    con = connect(str(tmp_path))
    table2 = {(r["metric"], r["ρ"]): r for r in iaead_table2(con).records}
    per_seed = [np.mean([0.5 + 0.1 * k + 0.01 * s + 0.1 - 0.05 for k in range(3)])
                for s in range(3)]
    want = f"{100 * np.mean(per_seed):.2f} ± {100 * np.std(per_seed, ddof=1):.2f}"
    assert table2[("AUROC (%)", "10%")]["iaead"] == want
    # IAEAD's tables read the trapezoidal AUPR (its code's): the fixture's is AUROC - 0.06
    aupr_in = f"{100 * np.mean(per_seed) - 6:.2f}"
    assert table2[("AUPR-in (%)", "10%")]["iaead"].startswith(aupr_in)
    table3 = {(r["ρ"], r["normal_class"]): r for r in iaead_table3(con).records}
    # 0.5 + 0.1 * 2 + 0.01 * mean(seeds 0, 1, 2) - 0.2 / 2; std over seeds 0.01
    assert table3[("20%", 2)]["mse"] == "61.00 ± 1.00" and table3[("20%", 2)]["n seeds"] == 3
    assert table2[("AUROC (%)", "10%")]["n cells"] == 18  # 2 methods x 3 classes x 3 seeds


def test_aevae_outcomes_count_trials_at_each_loss_level(tmp_path):
    levels = {0: 0.0, 1: 1 / 16, 2: 1 / 16, 3: 0.25, 4: 0.3}  # by seed

    def ends_at(cell, start, rng):
        rows = curve(cell, start, rng)
        rows[-1]["train_mse"] = levels[cell.seed] + (1e-4 if cell.model == "mlp_ae" else 0)
        return rows

    cells = [Cell(study="s", dataset="lines2x2", model=m, loss="mse", seed=s, epochs=EPOCHS,
                  latent_dim=latent)
             for m in ("mlp_ae", "mlp_vae") for s in range(5) for latent in (1, 2)]
    write_study(tmp_path, "s", cells, base_auroc, make_curve=ends_at)
    table = aevae_outcomes(connect(str(tmp_path)))
    # one row per architecture: the bottleneck (latent_dim) is not pooled
    assert sorted((r["model"], r["bottleneck"]) for r in table.records) == [
        ("mlp_ae", 1), ("mlp_ae", 2), ("mlp_vae", 1), ("mlp_vae", 2)]
    (ae,) = [r for r in table.records if r["model"] == "mlp_ae" and r["bottleneck"] == 2]
    assert ae["0 (optimum)"] == "1 (20%)" and ae["1/16"] == "2 (40%)" and ae["1/4"] == "1 (20%)"
    assert ae["other"] == "1 (20%)" and ae["not complete"] == "0 (0%)" and ae["n cells"] == 5
    assert ae["study"] == "s"
