"""Paired deltas, unpaired trials and the claims table on Parquet with known answers."""

import pytest
from analysis_data import base_auroc, grid, plus, write_study

from analysis.claims import claims
from analysis.deltas import delta_summary, paired_deltas, unpaired
from analysis.views import connect
from study.cell import Cell


def claim(found, start):
    (row,) = [c for c in found if c["claim"].startswith(start)]
    return row


def test_a_delta_of_plus_001_on_every_pair(tmp_path):
    write_study(tmp_path, "s", grid("s"), plus(0.01))
    con = connect(str(tmp_path))
    (summary,) = delta_summary(con, "mse")
    assert summary["value"] == "lmse" and summary["n_pairs"] == 20 and summary["n_seeds"] == 2
    assert (summary["over"], summary["n_over"]) == ("normal_class", 10)  # classes, not pairs
    assert summary["mean_delta"] == pytest.approx(0.01)
    assert summary["median_delta"] == pytest.approx(0.01)
    assert summary["wins"] == 20 and summary["losses"] == 0
    assert summary["ci_low"] == pytest.approx(0.01) and summary["ci_high"] == pytest.approx(0.01)
    assert summary["p"] < 0.001
    for metric in ("aupr_in", "aupr_out"):
        assert delta_summary(con, "mse", metric=metric)[0]["mean_delta"] == pytest.approx(0.01)
    auroc = claim(claims(con, "mse"), "lmse detects anomalies better")
    assert auroc["verdict"] == "better" and auroc["n_pairs"] == 20 and auroc["n_cells"] == 40
    assert auroc["n_units"] == 10 and auroc["margin"] == 0.005


def test_identical_losses_are_equivalent(tmp_path):
    write_study(tmp_path, "s", grid("s"), plus(0.0))
    con = connect(str(tmp_path))
    (summary,) = delta_summary(con, "mse")
    assert summary["p"] == 1.0 and summary["ties"] == 20 and summary["mean_delta"] == 0.0
    auroc = claim(claims(con, "mse"), "lmse detects anomalies better")
    assert auroc["verdict"] == "equivalent" and auroc["p_holm"] == 1.0


def test_deltas_grouped_by_columns(tmp_path):
    cells = grid("s", classes=3) + grid("s", classes=3, lr=0.01)
    write_study(tmp_path, "s", cells, lambda c: base_auroc(c) + (c.lr if c.loss == "lmse" else 0))
    con = connect(str(tmp_path))
    by_lr = delta_summary(con, "mse", by=["lr"])
    assert [(r["lr"], r["n_pairs"]) for r in by_lr] == [(0.001, 6), (0.01, 6)]
    assert [r["mean_delta"] for r in by_lr] == pytest.approx([0.001, 0.01])
    by_two = delta_summary(con, "mse", by=["normal_class", "lr"])
    assert len(by_two) == 6 and all(r["n_pairs"] == 2 for r in by_two)
    with pytest.raises(ValueError, match="cannot group pairs by 'loss'"):
        delta_summary(con, "mse", by=["loss"])
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        delta_summary(con, "mse", metric="auc")


def test_any_axis_can_be_compared(tmp_path):
    cells = grid("s", losses=("mse",), classes=4) + grid("s", losses=("mse",), classes=4, lr=0.01)
    write_study(tmp_path, "s", cells, base_auroc)
    (summary,) = delta_summary(connect(str(tmp_path)), "0.001", axis="lr")
    assert summary["value"] == "0.01" and summary["n_pairs"] == 8
    assert summary["mean_delta"] == pytest.approx(0.1 * 0.009)


def test_unpaired_cells_are_reported_never_dropped(tmp_path):
    cells = grid("s", classes=3)
    lonely = Cell(study="s", loss="mse", normal_class=7, epochs=6)  # no lmse at class 7
    diverged = {cells[-1]}  # lmse, class 2, seed 1: its mse partner loses its pair
    write_study(tmp_path, "s", cells + [lonely], plus(0.01),
                status=lambda c: "diverged" if c in diverged else "complete")
    con = connect(str(tmp_path))
    assert len(paired_deltas(con, "mse")) == 5
    found = {(r["value"], r["status"], r["reason"]): r["n_cells"] for r in unpaired(con, "mse")}
    assert found == {
        ("lmse", "diverged", "trial diverged"): 1,
        ("mse", "complete", "no complete partner at any other value"): 2,
    }
    (row,) = [r for r in unpaired(con, "mse") if r["value"] == "mse"]
    assert lonely.cell_id in row["example_cells"]


def test_claims_carry_evidence_and_one_unit_is_inconclusive(tmp_path):
    write_study(tmp_path, "s", grid("s", classes=1, seeds=4), plus(0.01))
    found = claims(connect(str(tmp_path)), "mse")
    auroc = claim(found, "lmse detects anomalies better")
    assert auroc["n_pairs"] == 4 and auroc["n_units"] == 1 and auroc["verdict"] == "inconclusive"
    assert "an interval over units needs 2" in auroc["reason"]
    for row in found:
        assert {"mean", "ci_low", "ci_high", "p", "p_holm", "p_equivalence_holm", "n_units",
                "n_pairs", "n_cells", "n_seeds", "unit", "margin", "estimand", "test",
                "verdict", "reason", "source", "family"} <= set(row)
        assert row["verdict"] in ("better", "worse", "equivalent", "inconclusive")


def test_a_baseline_absent_from_the_trials_is_named(tmp_path):
    write_study(tmp_path, "s", grid("s", classes=2), plus(0.01))
    from analysis.deltas import check_baseline

    with pytest.raises(ValueError, match=r"baseline loss 'msee' not found.*\['lmse', 'mse'\]"):
        check_baseline(connect(str(tmp_path)), "msee")
