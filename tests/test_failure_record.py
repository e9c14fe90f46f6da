"""What a failed cell's row keeps (study/recorder.py): the cause on one line (Ray's advice
cut), the node, the attempts and the path of the trial process's log; and stores written
before the log_path column stay readable (the views and the store read it as NULL)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from analysis.views import connect, rows
from study.cell import Cell
from study.progress import Progress, cell_label
from study.recorder import Failure, Recorder, TrialInfo, short_cause
from study.schema import TRIALS
from study.store import ResultsStore, trial_row

DEATH = ("The actor died unexpectedly before finishing this task.\n\tclass_name: ImplicitFunc\n"
         "\tpid: 2958\nThe actor is dead because its worker process has died. Worker exit "
         "type: SYSTEM_ERROR Worker exit detail: Worker unexpectedly exits with a connection "
         "error code 2. End of file. Some common causes include: (1) the process was killed "
         "by the OOM killer due to high memory usage, (2) ray stop --force was called")


def test_a_cause_is_one_line_without_rays_advice():
    assert short_cause("ActorDiedError", DEATH) == (
        "ActorDiedError: The actor is dead because its worker process has died. Worker exit "
        "type: SYSTEM_ERROR Worker exit detail: Worker unexpectedly exits with a connection "
        "error code 2. End of file.")
    assert short_cause("ValueError", "x holds 6 images\nbut 4 labels") == (
        "ValueError: x holds 6 images but 4 labels")


def test_a_trial_out_of_retries_stores_its_cells_failed_with_cause_node_log_and_attempts(
    tmp_path
):
    store = ResultsStore(str(tmp_path), "s")
    store.prepare()
    out = io.StringIO()
    cells = [Cell(study="s", seed=k) for k in (0, 1)]
    progress = Progress("s", 2, out, label=lambda c: cell_label(c, ["seed"]))
    recorder = Recorder(store, progress)
    trial = TrialInfo("t1", {c.cell_id: c for c in cells}, {}, num_failures=2)
    recorder.start(trial)
    failure = Failure(error=short_cause("ActorDiedError", DEATH), node_id="ab12" * 14,
                      log_path="/tmp/ray/session_x/logs/worker-1-01000000-2958.err",
                      where="pid 2958 on 10.0.0.5")
    recorder.error(trial, failure)
    found = rows(connect(str(tmp_path)), "select seed, status, error, node_id, log_path, "
                 "retries from trials order by seed")
    assert [r["status"] for r in found] == ["failed", "failed"]
    for row in found:
        assert row["error"].startswith("trial failed after 2 attempt(s): ActorDiedError: The "
                                       "actor is dead because its worker process has died")
        assert row["error"].endswith("(pid 2958 on 10.0.0.5)")
        assert row["node_id"] == "ab12" * 14 and row["retries"] == 2
        assert row["log_path"] == "/tmp/ray/session_x/logs/worker-1-01000000-2958.err"
    lines = [x for x in out.getvalue().splitlines() if "] failed: " in x]
    assert [x.split(" (cell")[0] for x in lines] == ["[s] failed: seed=0", "[s] failed: seed=1"]
    assert progress.counts == {"failed": 2} and progress.running == 0


def test_rows_stored_before_the_log_path_column_read_as_null(tmp_path):
    store = ResultsStore(str(tmp_path), "old")
    store.prepare()
    cell = Cell(study="old")
    old_schema = pa.schema([f for f in TRIALS if f.name != "log_path"])
    store.write_cell(cell, {"status": "complete", "auroc": 0.7}, [])  # epochs and scores
    row = {k: v for k, v in trial_row(cell, {"status": "complete", "auroc": 0.7}).items()
           if k != "log_path"}  # its trials row as a store before the column wrote it
    pq.write_table(pa.Table.from_pylist([row], old_schema),
                   tmp_path / "old" / "trials" / f"{cell.cell_id}.parquet")
    assert store.read_trials(["cell_id", "log_path"]).to_pylist() == [
        {"cell_id": cell.cell_id, "log_path": None}]
    assert store.stored_statuses() == {cell.cell_id: "complete"}
    new = Cell(study="old", seed=1)
    store.write_cell(new, {"status": "complete", "auroc": 0.8, "log_path": "/x.err"}, [])
    for root in (str(tmp_path), f"file://{tmp_path}"):  # union_by_name, and the schema
        found = rows(connect(root), "select seed, auroc, log_path from trials order by seed")
        assert found == [{"seed": 0, "auroc": 0.7, "log_path": None},
                         {"seed": 1, "auroc": 0.8, "log_path": "/x.err"}]
