"""The tuned comparison over real Parquet written by the real store, read by real DuckDB:
which row is a group's best, the budget, the paired tuned bests, the report section."""

from pathlib import Path

import pytest
from analysis_data import grid, plus, write_study

from analysis import tuned
from analysis.queries import Options, run_named
from analysis.report import build_report
from analysis.views import connect, rows
from study.cell import Cell
from study.store import ResultsStore
from study.tuned_groups import group_id

# Per group, four trials (lr, status, val_recon_mse, test auroc offset). The val-best
# complete trial (lr 0.002) is NOT the test-best one (lr 0.001): selecting on validation
# must pick 0.002; the pruned trial has the lowest val_recon_mse of all and must never win.
TRIALS = [(0.001, "complete", 0.30, 0.10), (0.002, "complete", 0.20, 0.00),
          (0.004, "pruned", 0.01, None), (0.008, "diverged", None, None)]
LMSE_GAIN = 0.02


def write_tuned(root: Path, study: str, metric: str = "val_recon_mse") -> dict[str, Cell]:
    """Six groups (mse, lmse x classes 0-2) of four trials; returns the expected best per
    group under ``metric``."""
    store = ResultsStore(str(root), study)
    store.prepare()
    best = {}
    for loss in ("mse", "lmse"):
        for k in range(3):
            base = Cell(study=study, loss=loss, normal_class=k, val_fraction=0.2, epochs=4)
            gid = group_id(base, ["lr"])
            top = None
            for index, (lr, status, val, offset) in enumerate(TRIALS):
                cell = Cell(**{**base.to_dict(), "lr": lr})
                auroc = None if offset is None else 0.7 + 0.05 * k + offset + (
                    LMSE_GAIN if loss == "lmse" else 0.0)
                final = {"status": status, "val_recon_mse": val, "auroc": auroc,
                         "aupr_in": auroc, "aupr_out": auroc, "val_auroc": 0.5,
                         "epochs_run": 4 if status == "complete" else 2, "wall_s": 1.0,
                         "group_id": gid, "group_trial": index, "tuned_axes": "lr",
                         "tune_metric": metric}
                store.write_cell(cell, final, [])
                key = {"val_recon_mse": val, "auroc": None if auroc is None else -auroc}[metric]
                if status == "complete" and (top is None or key < top[0]):
                    top = (key, cell)
            best[gid] = top[1]
    return best


@pytest.mark.parametrize("metric", ["val_recon_mse", "auroc"])
def test_a_groups_best_is_chosen_by_its_tune_metric_alone(tmp_path, metric):
    expected = write_tuned(tmp_path, "tq", metric)
    best = tuned.tuned_best(connect(str(tmp_path)))
    assert len(best) == 6
    for row in best:
        assert row["best_cell"] == expected[row["group_id"]].cell_id
        assert row["selected_on"] == metric
        assert row["n_trials"] == 4 and row["n_pruned"] == 1 and row["n_diverged"] == 1
    chosen_lr = {r["best_config"] for r in best}
    # Validation picks lr 0.002 (test AUROC 0.10 lower); only a spec allowing test labels
    # (tune_metric auroc) picks the test-best lr 0.001.
    assert chosen_lr == {"lr=0.002"} if metric == "val_recon_mse" else {"lr=0.001"}


def test_ranks_cover_complete_trials_only(tmp_path):
    write_tuned(tmp_path, "tq")
    ranked = tuned.tuned_trials(connect(str(tmp_path)))
    assert len(ranked) == 24
    by_status = {}
    for r in ranked:
        by_status.setdefault(r["status"], set()).add(r["group_rank"])
    assert by_status == {"complete": {1, 2}, "pruned": {None}, "diverged": {None}}
    assert all(r["group_rank"] == 1 for r in ranked if r["lr"] == 0.002)


def test_tuned_bests_pair_across_losses_with_their_budgets(tmp_path):
    write_tuned(tmp_path, "tq")
    con = connect(str(tmp_path))
    pairs = tuned.tuned_pairs(con, "mse")
    assert len(pairs) == 3 and {p["normal_class"] for p in pairs} == {0, 1, 2}
    assert all(p["delta"] == pytest.approx(LMSE_GAIN) for p in pairs)
    assert all(p["n_trials"] == p["base_n_trials"] == 4 for p in pairs)
    (summary,) = tuned.tuned_summary(con, "mse")
    assert summary["value"] == "lmse" and summary["n_pairs"] == 3 and summary["wins"] == 3
    budget = tuned.budget_table(con)
    assert [(b["loss"], b["n_groups"], b["min_per_group"], b["max_per_group"]) for b in budget] \
        == [("lmse", 3, 4, 4), ("mse", 3, 4, 4)]
    table = tuned.per_class_table(tuned.tuned_best(con), "mse")
    assert [r["lmse − mse"] for r in table] == pytest.approx([LMSE_GAIN] * 3)
    assert run_named(con, "tuned_deltas")[0]["n_pairs"] == 3
    with pytest.raises(ValueError, match="baseline loss 'mae' not found"):
        run_named(con, "tuned_deltas", Options(baseline="mae"))


def test_the_report_of_a_tuned_study_shows_the_tuned_comparison(tmp_path):
    write_tuned(tmp_path / "results", "tq")
    report = build_report(["tq"], results=str(tmp_path / "results"), out=str(tmp_path / "r"))
    text = report.read_text()
    assert "## Tuned comparison" in text and "Tuned best per group" in text
    assert "| lmse | 3 | 12 | 4 | 4 |" in text  # the budget: 3 groups, 4 trials each
    assert "| digits | 0 | 1 | 0.7 | 0.72 |" in text  # LAMP Table 2 layout, val-chosen bests
    assert "## Metric deltas" not in text  # no grid rows: no grid sections


def test_a_study_with_grid_and_tuned_rows_shows_both_side_by_side(tmp_path):
    results = tmp_path / "results"
    write_tuned(results, "both")
    write_study(results, "both", grid("both", classes=3, seeds=1), plus(0.05))
    con = connect(str(results))
    (row,) = tuned.side_by_side(con, "mse")
    assert row["tuned_n"] == 3 and row["tuned_mean_delta"] == pytest.approx(LMSE_GAIN)
    assert row["grid_n"] == 3 and row["grid_mean_delta"] == pytest.approx(0.05)
    text = build_report(["both"], results=str(results), out=str(tmp_path / "r")).read_text()
    assert "## Metric deltas against mse" in text and "## Tuned comparison" in text
    assert "Tuned bests (each loss at its own best, equal budget) beside the grid" in text
    # The grid sections count the grid rows alone (6 cells), not the 24 tuned ones.
    grid_trials = [line for line in text.splitlines() if line.startswith("| both | digits")]
    assert grid_trials and all("| complete | 3 |" in line for line in grid_trials[:2])
    assert rows(con, "SELECT count(*) AS n FROM trials")[0]["n"] == 30
