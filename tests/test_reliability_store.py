"""The store and `adstudy sql` under damage: corrupt or truncated Parquet files, a disk
that fills up, and SQL that tries to write or attach files (docs/reliability.md)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from reliability_helpers import full_disk, snapshot

from analysis.views import connect, rows
from study.cell import Cell
from study.cli import main
from study.plan import make_plan
from study.spec import parse_spec
from study.store import ResultsStore

FINAL = {"status": "complete", "auroc": 0.75, "scores": [0.1, 0.4, 0.9], "labels": [0, 0, 1]}
EPOCHS = [{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.25}]
SPEC = "study: s\nvary:\n  seed: [0, 1, 2, 3]\nfixed:\n  epochs: 2\n"
CELLS = [Cell(study="s", epochs=2, seed=seed) for seed in range(4)]


@pytest.fixture
def results(tmp_path) -> Path:
    """A study 's' of four stored cells (the cells of SPEC)."""
    store = ResultsStore(str(tmp_path / "results"), "s")
    store.prepare()
    for cell in CELLS:
        store.write_cell(cell, FINAL, EPOCHS)
    store.write_study_json({"study": "s", "spec_yaml": SPEC})
    return tmp_path / "results"


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "empty": b"",
                      "garbage": b"PAR1" + bytes(range(256)) * 4}[how])


def sql_json(results: Path, query: str, capsys, *extra: str) -> tuple[int, object, str]:
    code = main(["sql", query, "--results", str(results), "--format", "json", *extra])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else None, captured.err


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage"])
@pytest.mark.parametrize("table", ["trials", "epochs", "scores"])
def test_sql_names_a_damaged_file_and_answers_from_the_rest(results, table, how, capsys):
    bad = results / "s" / table / f"{CELLS[1].cell_id}.parquet"
    damage(bad, how)
    code, answer, err = sql_json(results, f"select count(*) n from {table}", capsys)
    assert code == 0
    per_cell = {"trials": 1, "epochs": len(EPOCHS), "scores": len(FINAL["scores"])}[table]
    assert answer == [{"n": 3 * per_cell}]
    assert f"adstudy: warning: cannot read {bad}" in err and "leave it out" in err
    # The other tables still hold all four cells.
    for other in {"trials", "epochs", "scores"} - {table}:
        code, answer, _ = sql_json(results, f"select count(distinct cell_id) n from {other}",
                                   capsys)
        assert code == 0 and answer == [{"n": 4}]


def test_temp_files_a_killed_writer_left_are_never_read(results, capsys):
    """A writer killed mid-write leaves `.<cell>.<uuid>.tmp` (never a .parquet): neither the
    views nor the store count it."""
    source = results / "s" / "trials" / f"{CELLS[0].cell_id}.parquet"
    for table in ("trials", "epochs", "scores"):
        stray = results / "s" / table / f".{'f' * 12}.{'0' * 32}.tmp"
        stray.write_bytes(source.read_bytes()[:200])  # half a file
    stray_full = results / "s" / "trials" / f".{'e' * 12}.{'1' * 32}.tmp"
    stray_full.write_bytes(source.read_bytes())  # whole, but not yet renamed: not stored
    code, answer, err = sql_json(results, "select (select count(*) from trials) t, (select "
                                 "count(*) from epochs) e, (select count(*) from scores) s",
                                 capsys)
    assert code == 0 and err == ""
    assert answer == [{"t": 4, "e": 4 * len(EPOCHS), "s": 4 * len(FINAL["scores"])}]
    store = ResultsStore(str(results), "s")
    assert set(store.stored_statuses()) == {c.cell_id for c in CELLS}
    assert store.unreadable == {}


def test_a_damaged_trials_file_is_reported_and_its_cell_runs_again(results):
    bad = results / "s" / "trials" / f"{CELLS[2].cell_id}.parquet"
    damage(bad, "truncated")
    store = ResultsStore(str(results), "s")
    work = make_plan(parse_spec(SPEC), store)
    assert [c.cell_id for c in work.todo] == [CELLS[2].cell_id]
    assert list(store.unreadable) == [str(bad)]
    assert "magic bytes" in store.unreadable[str(bad)].lower()
    store.write_cell(CELLS[2], FINAL, EPOCHS)  # what the rerun does: replaces the file
    assert set(store.stored_statuses()) == {c.cell_id for c in CELLS}
    assert store.unreadable == {}


def test_a_full_disk_keeps_no_part_of_the_cell_and_the_store_recovers(tmp_path):
    fs, disk = full_disk(fail_at=5)  # cell 1: files 1-3; cell 2: epochs ok, scores fails
    store = ResultsStore(str(tmp_path), "s", filesystem=fs)
    store.prepare()
    store.write_cell(CELLS[0], FINAL, EPOCHS)
    with pytest.raises(OSError, match="No space left on device"):
        store.write_cell(CELLS[1], FINAL, EPOCHS)
    files = sorted(p.name for p in (tmp_path / "s").rglob("*") if p.is_file())
    assert files == [f"{CELLS[0].cell_id}.parquet"] * 3  # no temp file, no epochs of cell 2
    with pytest.raises(OSError, match="No space left on device"):
        store.write_study_json({"study": "s", "spec_yaml": SPEC})
    assert not (tmp_path / "s" / "study.json").exists()
    assert store.stored_statuses() == {CELLS[0].cell_id: "complete"}
    disk.free()
    store.write_cell(CELLS[1], FINAL, EPOCHS)
    assert set(store.stored_statuses()) == {CELLS[0].cell_id, CELLS[1].cell_id}
    for path in (tmp_path / "s").rglob("*.parquet"):
        pq.read_table(path)  # every file whole


FORBIDDEN = [
    ("COPY (SELECT 1) TO '{tmp}/x.csv'", "x.csv", "COPY statements are not allowed"),
    ("COPY trials TO '{tmp}/x.parquet' (FORMAT parquet)", "x.parquet",
     "COPY statements are not allowed"),
    # Inside the views' own folder too: a file there would be read as results.
    ("COPY (SELECT * FROM trials) TO '{results}/s/trials/extra.parquet'",
     "results/s/trials/extra.parquet", "COPY statements are not allowed"),
    ("ATTACH '{tmp}/db.duckdb' AS d", "db.duckdb", "ATTACH statements are not allowed"),
    ("ATTACH '{results}/s/trials/db.duckdb' AS d", "results/s/trials/db.duckdb",
     "ATTACH statements are not allowed"),
    ("EXPORT DATABASE '{tmp}/dump'", "dump", "EXPORT DATABASE statements are not allowed"),
    ("INSTALL httpfs", None, "INSTALL/LOAD statements are not allowed"),
    ("SELECT 1; COPY (SELECT 1) TO '{tmp}/y.csv'", "y.csv", "COPY statements are not allowed"),
    ("SELECT * FROM read_csv('{tmp}/secret.csv')", None, "file system operations are disabled"),
    ("SET enable_external_access = true", None, "the configuration has been locked"),
]


@pytest.mark.parametrize("query, written, message", FORBIDDEN)
def test_sql_is_read_only_by_default(results, tmp_path, query, written, message, capsys):
    (tmp_path / "secret.csv").write_text("a\n1\n")
    before = snapshot(tmp_path)
    code, _, err = sql_json(results, query.format(tmp=tmp_path, results=results), capsys)
    assert code == 2 and err.startswith("adstudy sql: error: ") and message in err
    assert "--allow-files" in err or "locked" in err
    if written:
        assert not (tmp_path / written).exists()
    assert snapshot(tmp_path) == before


def test_the_sql_shell_is_read_only_too_and_goes_on(results, tmp_path, monkeypatch, capsys):
    statements = (f"COPY (SELECT 1) TO '{tmp_path}/x.csv';\n"
                  "SELECT count(*) AS n FROM trials;\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(statements))
    assert main(["sql", "--results", str(results), "--format", "json"]) == 1  # one failed
    out = capsys.readouterr().out
    assert "COPY statements are not allowed" in out and '"n": 4' in out
    assert not (tmp_path / "x.csv").exists()


def test_reading_sql_still_works_and_allow_files_lifts_the_lock(results, tmp_path, capsys):
    code, answer, _ = sql_json(results, "select count(*) n from trials t join epochs e "
                               "using (cell_id) where t.status = 'complete'", capsys)
    assert code == 0 and answer == [{"n": 8}]
    code, answer, _ = sql_json(results, "describe trials", capsys)
    assert code == 0 and any(r["column_name"] == "auroc" for r in answer)
    target = tmp_path / "out.csv"
    code, _, err = sql_json(results, f"COPY (SELECT 1 AS a) TO '{target}'", capsys,
                            "--allow-files")
    assert code == 0, err
    assert target.read_text().splitlines() == ["a", "1"]


def test_library_connections_stay_writable_unless_asked(results, tmp_path):
    con = connect(str(results))
    rows(con, f"COPY (SELECT 1 AS a) TO '{tmp_path}/lib.csv'")
    assert (tmp_path / "lib.csv").exists()
    locked = connect(str(results), read_only=True)
    with pytest.raises(ValueError, match="COPY statements are not allowed"):
        rows(locked, f"COPY (SELECT 1 AS a) TO '{tmp_path}/lib2.csv'")
    assert rows(locked, "select count(*) n from scores") == [{"n": 12}]
