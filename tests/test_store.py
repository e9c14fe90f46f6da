import os
import time

import duckdb

from study.cell import Cell
from study.store import ResultsStore

FINAL = {"status": "complete", "auroc": 0.9, "scores": [0.1, 0.7], "labels": [0, 1],
         "epochs_run": 2}
EPOCHS = [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}]


def test_write_cell_lands_three_tables_named_by_cell_id(tmp_path):
    store = ResultsStore(str(tmp_path), "s")
    store.prepare()
    cell = Cell(study="s", loss="lamp", loss_params='{"base":"l1"}')
    store.write_cell(cell, FINAL, EPOCHS)
    for table in ("trials", "epochs", "scores"):
        assert os.listdir(tmp_path / "s" / table) == [f"{cell.cell_id}.parquet"]
    row = duckdb.sql(f"select * from '{tmp_path}/s/trials/*.parquet'").fetchall()
    names = duckdb.sql(f"select * from '{tmp_path}/s/trials/*.parquet'").columns
    record = dict(zip(names, row[0], strict=True))
    assert record["loss_label"] == "lamp(base=l1)" and record["status"] == "complete"
    assert record["cell_id"] == cell.cell_id and record["auroc"] == 0.9
    assert store.stored_statuses() == {cell.cell_id: "complete"}
    n = duckdb.sql(f"select count(*) from '{tmp_path}/s/epochs/*.parquet'").fetchall()[0][0]
    assert n == 2


def test_a_failed_write_leaves_no_file_behind(tmp_path):
    store = ResultsStore(str(tmp_path), "s")
    store.prepare()
    bad = dict(FINAL, scores=["not a number"])
    try:
        store.write_cell(Cell(study="s"), bad, EPOCHS)
    except Exception:
        pass
    assert os.listdir(tmp_path / "s" / "scores") == []
    assert os.listdir(tmp_path / "s" / "trials") == []
    assert store.stored_statuses() == {}


def test_prepare_sweeps_temp_files_a_killed_writer_left(tmp_path):
    store = ResultsStore(str(tmp_path), "s")
    store.prepare()
    store.write_cell(Cell(study="s"), {"status": "complete", "auroc": 0.5}, [])
    old = tmp_path / "s" / "trials" / ".abc.0123.tmp"
    fresh = tmp_path / "s" / "epochs" / ".def.4567.tmp"
    for path in (old, fresh):
        path.write_bytes(b"half a parquet file")
    os.utime(old, (time.time() - 2 * 3600,) * 2)  # two hours old: its writer is gone
    store.prepare()
    assert not old.exists()
    assert fresh.exists()  # may belong to a writer still at work
    assert sorted(store.stored_statuses().values()) == ["complete"]  # results untouched
