"""Detection metrics: anomalies are the positives, higher scores more anomalous. AUPR both
as average precision and as the trapezoidal area under the PR curve (IAEAD's code)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from trainables.metrics import METRICS, aupr_trapz, auroc, detection_metrics


def test_auroc_direction_perfect_scores_give_one():
    labels = np.array([0, 0, 1, 1])
    perfect = detection_metrics(labels, np.array([0.1, 0.2, 0.8, 0.9]))
    assert perfect == dict.fromkeys(METRICS, 1.0)
    inverted = detection_metrics(labels, np.array([0.9, 0.8, 0.2, 0.1]))
    assert inverted["auroc"] == 0.0
    with pytest.raises(ValueError, match="both normals and anomalies"):
        detection_metrics(np.array([0, 0]), np.array([0.1, 0.2]))


def test_fast_auroc_equals_sklearn_with_and_without_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 2, 50)
        labels[:2] = (0, 1)
        scores = rng.integers(0, 6, 50).astype(float)  # many ties
        assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        scores = rng.random(50)
        assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def pr_points(labels: np.ndarray, scores: np.ndarray) -> tuple[list[float], list[float]]:
    """(recall, precision) at every distinct threshold, highest first, from (0, 1): the
    curve written out by hand (ties cross together)."""
    recall, precision = [0.0], [1.0]
    for t in sorted(set(scores.tolist()), reverse=True):
        flagged = scores >= t
        tp = int(np.sum(flagged & (labels == 1)))
        recall.append(tp / int(np.sum(labels == 1)))
        precision.append(tp / int(np.sum(flagged)))
    return recall, precision


def area(recall: list[float], precision: list[float]) -> float:
    """The trapezoids between consecutive points of the curve."""
    return sum((r1 - r0) * (p0 + p1) / 2 for r0, r1, p0, p1
               in zip(recall, recall[1:], precision, precision[1:], strict=False))


def test_trapezoidal_aupr_is_the_area_under_the_hand_drawn_curve_beside_average_precision():
    labels = np.array([1, 0, 1, 0, 0, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    recall, precision = pr_points(labels, scores)
    trapezoid = area(recall, precision)
    step = sum((r1 - r0) * p1 for r0, r1, p1 in zip(recall, recall[1:], precision[1:],
                                                    strict=False))
    assert aupr_trapz(labels, scores) == pytest.approx(trapezoid, abs=1e-12)
    got = detection_metrics(labels, scores)
    assert got["aupr_out_trapz"] == pytest.approx(trapezoid, abs=1e-12)
    assert got["aupr_out"] == pytest.approx(step, abs=1e-12)  # average precision: steps
    assert got["aupr_out_trapz"] != pytest.approx(got["aupr_out"], abs=1e-3)
    r_in, p_in = pr_points(1 - labels, -scores)  # normals positive, negated scores
    assert got["aupr_in_trapz"] == pytest.approx(area(r_in, p_in), abs=1e-12)


def test_a_store_written_before_the_trapezoid_columns_stays_readable(tmp_path):
    """Rows stored before aupr_*_trapz existed: the views read those columns as NULL, the
    resume path sees the cell as stored, and IAEAD's table leaves its AUPR blank."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from analysis.tables_iaead_vae import iaead_table2
    from analysis.views import connect, rows
    from study.cell import Cell
    from study.schema import TRIALS
    from study.store import ResultsStore, trial_row

    store = ResultsStore(str(tmp_path), "old")
    store.prepare()
    cells = [Cell(study="old", protocol="contaminated", contamination=0.1, seed=s)
             for s in range(2)]
    before = pa.schema([f for f in TRIALS if not f.name.endswith("_trapz")])
    for cell in cells:
        metrics = {"status": "complete", "auroc": 0.7, "aupr_in": 0.9, "aupr_out": 0.4}
        store.write_cell(cell, metrics, [])  # its epochs and scores; trials rewritten below
        row = trial_row(cell, metrics)
        table = pa.Table.from_pylist([{k: row[k] for k in before.names}], schema=before)
        pq.write_table(table, f"{store.table_dir('trials')}/{cell.cell_id}.parquet")
    assert store.stored_statuses() == {c.cell_id: "complete" for c in cells}
    con = connect(str(tmp_path))
    got = rows(con, "SELECT aupr_in, aupr_in_trapz, aupr_out_trapz FROM trials")
    assert got == [{"aupr_in": 0.9, "aupr_in_trapz": None, "aupr_out_trapz": None}] * 2
    table = {r["metric"]: r for r in iaead_table2(con).records}
    assert table["AUROC (%)"]["mse"] == "70.00 ± 0.00" and table["AUPR-in (%)"]["mse"] == ""
