"""The store contract, one suite over every backend the store supports (as optuna runs one
storage suite against each storage): a local folder, a file:// URI, pyarrow's in-memory
filesystem (``pyarrow.fs._MockFileSystem``, the in-memory filesystem pyarrow ships and
tests itself with) and an S3-protocol server on 127.0.0.1 (moto's, started here).

Each case writes through study.store and reads back through the store and through the
DuckDB views (analysis.views), so analysis reads exactly what a study writes."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from moto_s3 import s3_server

import study.lease as lease_mod
from analysis.views import connect, rows
from study.cell import Cell
from study.compaction import compact
from study.errors import StoreError
from study.lease import hold, read_lease
from study.schema import LANDSCAPE_SUMMARY, TRIALS
from study.status import check_store, study_status
from study.store import ResultsStore

FINAL = {"status": "complete", "auroc": 0.75, "scores": [0.1, 0.4, 0.9], "labels": [0, 0, 1]}
EPOCHS = [{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.25}]
SPEC = "study: s\nvary:\n  seed: [0, 1, 2, 3]\nfixed:\n  epochs: 2\n"
CELLS = [Cell(study="s", epochs=2, seed=seed) for seed in range(4)]
BACKENDS = ("local", "file", "memory", "s3")


@dataclasses.dataclass
class Backend:
    """Where a test's store lives: ``root`` (a path or URI), ``fs`` (None: the one root
    names), and the filesystem + path to reach its files directly."""

    name: str
    root: str
    fs: pafs.FileSystem | None

    def store(self, study: str = "s") -> ResultsStore:
        return ResultsStore(self.root, study, self.fs)

    def connect(self, **kwargs):
        return connect(self.root, filesystem=self.fs, **kwargs)

    def put(self, path: str, data: bytes) -> None:
        """Writes raw bytes at ``<study s>/<path>`` (what a careless user would)."""
        store = self.store()
        with store.fs.open_output_stream(f"{store.path}/{path}") as stream:
            stream.write(data)

    def get(self, path: str) -> bytes:
        store = self.store()
        with store.fs.open_input_stream(f"{store.path}/{path}") as stream:
            return stream.read()

    def delete(self, path: str) -> None:
        store = self.store()
        store.fs.delete_file(f"{store.path}/{path}")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, monkeypatch) -> Backend:
    monkeypatch.setattr(lease_mod, "SETTLE_S", 0.2)  # object stores: read-back wait
    if request.param == "local":
        return Backend("local", str(tmp_path / "results"), None)
    if request.param == "file":
        return Backend("file", f"file://{tmp_path}/results", None)
    if request.param == "memory":
        return Backend("memory", "results", pafs._MockFileSystem())
    server = request.getfixturevalue("s3")
    return Backend("s3", server.uri(uuid.uuid4().hex), None)


@pytest.fixture
def stored(backend) -> Backend:
    """The four cells of SPEC stored, with study.json."""
    store = backend.store()
    store.prepare()
    for cell in CELLS:
        store.write_cell(cell, FINAL, EPOCHS)
    store.write_study_json({"study": "s", "spec_yaml": SPEC})
    return backend


def counts(backend: Backend, warnings: list[str] | None = None) -> dict[str, int]:
    con = backend.connect(warn=(warnings.append if warnings is not None else lambda m: None))
    return rows(con, "select (select count(*) from trials) t, (select count(distinct cell_id) "
                     "from trials) c, (select count(*) from epochs) e, (select count(*) from "
                     "scores) s, (select avg(auroc) from trials) a")[0]


WHOLE = {"t": 4, "c": 4, "e": 8, "s": 12, "a": 0.75}


def test_a_written_cell_reads_back_through_the_store_and_the_views(stored):
    store = stored.store()
    assert store.cell_state() == {c.cell_id: "complete" for c in CELLS}
    assert store.damaged == {} and store.unreadable == {}
    assert counts(stored) == WHOLE
    assert json.loads(stored.get("study.json"))["spec_yaml"] == SPEC
    assert store.read_study_json()["study"] == "s"
    assert check_store(store) == []


def test_temp_files_are_never_read_and_are_swept(stored):
    stored.put(f"trials/.{CELLS[0].cell_id}.parquet.{'0' * 32}.tmp", b"half a file")
    assert counts(stored) == WHOLE
    assert stored.store().sweep_stale_temps(older_than_s=3600) == []  # a writer may be at work
    swept = stored.store().sweep_stale_temps(older_than_s=-1)
    assert len(swept) == 1 and swept[0].endswith(".tmp")
    assert counts(stored) == WHOLE


@pytest.mark.parametrize("stray", ["foreign", "compatible", "backup", "other cell"])
def test_a_file_the_store_did_not_write_is_named_once_and_left_out(stored, stray):
    """Issue 14.1: a foreign Parquet file, one with compatible columns (cell_id 5, status
    "1.5"), a backup copy beside a cell's file, a copy under another cell's name."""
    source = stored.get(f"trials/{CELLS[0].cell_id}.parquet")
    name, data = {
        "foreign": ("other.parquet", _parquet({"x": [1.0, 2.0]})),
        "compatible": ("extra.parquet", _parquet({"cell_id": [5], "status": ["1.5"]})),
        "backup": (f"{CELLS[0].cell_id}_backup.parquet", source),
        "other cell": ("0123456789ab.parquet", source),
    }[stray]
    stored.put(f"trials/{name}", data)
    warnings: list[str] = []
    assert counts(stored, warnings) == WHOLE
    assert len(warnings) == 1 and name in warnings[0] and "leave it out" in warnings[0]
    store = stored.store()
    assert set(store.cell_state()) == {c.cell_id for c in CELLS}
    assert [p for p in store.unreadable if p.endswith(name)]
    assert [p["where"] for p in check_store(store)] == [f"{store.shown}/trials/{name}"]


def _parquet(columns: dict) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("how", ["garbage epochs", "deleted scores", "truncated trials"])
def test_a_cell_is_stored_only_when_its_three_tables_read(stored, how):
    """Issue 14.3: damaged or missing epochs/scores of a stored cell are found; the cell
    is not stored, so a submit reruns it, and the reason is given."""
    cell = CELLS[1].cell_id
    if how == "garbage epochs":
        stored.put(f"epochs/{cell}.parquet", b"PAR1" + bytes(range(256)) + b"PAR1")
    elif how == "deleted scores":
        stored.delete(f"scores/{cell}.parquet")
    else:
        stored.put(f"trials/{cell}.parquet", stored.get(f"trials/{cell}.parquet")[:100])
    store = stored.store()
    state = store.cell_state()
    assert set(state) == {c.cell_id for c in CELLS} - {cell}
    if how != "truncated trials":
        assert list(store.damaged) == [cell]
        table = how.split()[1]
        assert store.damaged[cell] == f"its {table} file is missing or unreadable"
    problems = check_store(store)
    assert any(cell in p["where"] for p in problems)
    store.write_cell(CELLS[1], FINAL, EPOCHS)  # what the rerun does
    assert set(store.cell_state()) == {c.cell_id for c in CELLS} and store.damaged == {}
    assert counts(stored) == WHOLE and check_store(store) == []


def test_compaction_keeps_every_row_and_the_views_read_both_forms(stored):
    store = stored.store()
    done = compact(store, cells_per_part=3)
    assert (done.cells, done.groups, done.left) == (4, 2, 0)
    names = {i.base_name for i in store.fs.get_file_info(
        pafs.FileSelector(store.table_dir("trials")))}
    assert len(names) == 2 and all(n.startswith("part-") for n in names)
    assert counts(stored) == WHOLE
    assert store.cell_state() == {c.cell_id: "complete" for c in CELLS}
    # A cell rerun after compaction writes its own files: they win over its part rows.
    store.write_cell(CELLS[0], dict(FINAL, auroc=0.35), EPOCHS)
    assert counts(stored) == dict(WHOLE, a=0.65)
    assert compact(store).groups == 1 and counts(stored) == dict(WHOLE, a=0.65)
    assert check_store(store) == []


def test_an_interrupted_compaction_changes_nothing_a_reader_sees(stored):
    """Parts written but no manifest switched to them (a compaction killed at step 1)
    are left out, named; the next compaction removes them."""
    store = stored.store()
    part = pa.Table.from_pylist([dict(r, auroc=0.0) for r in store.read_trials().to_pylist()],
                                schema=TRIALS)
    store.write_parquet("trials", f"part-{'a' * 32}", part)
    warnings: list[str] = []
    assert counts(stored, warnings) == WHOLE
    assert len(warnings) == 1 and "part no compaction manifest lists" in warnings[0]
    compact(store)
    assert counts(stored) == WHOLE and check_store(store) == []


def test_one_driver_holds_a_study_and_a_dead_drivers_lease_is_taken_over(stored):
    """Issue 14.2: the lease. A second driver is refused with who holds it; a lease that
    expired (its driver gone) is taken over; the heartbeat renews it."""
    store = stored.store()
    with hold(store, "submit") as held:
        record = read_lease(store)
        assert record["token"] == held.token and record["command"] == "submit"
        with pytest.raises(StoreError, match="held by another driver: 'submit' pid"):
            with hold(stored.store(), "submit"):
                pass
        before = record["renewed"]
        time.sleep(0.01)
        held.renew()
        assert read_lease(store)["renewed"] > before
    assert read_lease(store) is None
    gone = dict(record, token="x" * 32, pid=1, host="elsewhere", expires=time.time() - 1)
    stored.put("driver.lease", json.dumps(gone).encode())
    with hold(stored.store(), "compact") as taker:
        assert read_lease(store)["token"] == taker.token


def test_status_counts_what_the_spec_expects_and_the_store_holds(stored):
    store = stored.store()
    stored.delete(f"scores/{CELLS[3].cell_id}.parquet")
    store.write_cell(CELLS[2], dict(FINAL, status="failed", auroc=None), [])
    found = study_status(store)
    assert found["expected"] == 4 and found["stored"] == 2 and found["failed"] == 1
    assert found["damaged"] == 1 and found["running"] is None and found["driver"] == ""
    with hold(store, "submit") as held:
        held.info = lambda: {"cells_total": 3, "cells_done": 1}
        held.renew()
        found = study_status(stored.store())
        assert found["running"] == 2 and "heartbeat" in found["driver"]


def test_landscape_tables_and_weights_round_trip(stored):
    store = stored.store()
    row = {name: None for name in LANDSCAPE_SUMMARY.names} | {
        "study": "s", "cell_id": CELLS[0].cell_id, "sharpness": 1.5}
    store.write_parquet("landscape/summary", CELLS[0].cell_id,
                        pa.Table.from_pylist([row], schema=LANDSCAPE_SUMMARY))
    store.write_bytes("weights", f"{CELLS[0].cell_id}.pt", b"\x00weights")
    assert [r["sharpness"] for r in store.read_folder("landscape/summary",
                                                       LANDSCAPE_SUMMARY)] == [1.5]
    assert store.read_weights(CELLS[0].cell_id) == b"\x00weights"
    assert store.read_weights(CELLS[1].cell_id) is None
    con = stored.connect()
    assert rows(con, "select cell_id, sharpness from landscape") == [
        {"cell_id": CELLS[0].cell_id, "sharpness": 1.5}]


def test_read_only_sql_reads_no_file_on_any_backend(stored, tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    con = stored.connect(read_only=True)
    with pytest.raises(Exception, match="disabled by configuration"):
        rows(con, f"select * from read_text('{tmp_path}/secret.txt')")
    assert rows(con, "select count(*) n from scores") == [{"n": 12}]
