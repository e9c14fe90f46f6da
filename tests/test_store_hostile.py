"""Issue 14's hostile and careless cases that need no Ray: stray files through the CLI, a
results path with glob characters, the holes of read-only SQL, input that must be refused
(duplicate YAML keys, a name ending in a newline, a bad value against a stored study),
errors instead of tracebacks, and the scratch folders of killed drivers
(docs/reliability.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_helpers import snapshot

from study.cell import Cell
from study.cli import main
from study.scratch import PREFIX, sweep_scratch
from study.store import ResultsStore

REPO = Path(__file__).resolve().parents[1]
FINAL = {"status": "complete", "auroc": 0.75, "scores": [0.1, 0.4, 0.9], "labels": [0, 0, 1]}
EPOCHS = [{"epoch": 1, "train_loss": 0.5, "train_mse": 0.5},
          {"epoch": 2, "train_loss": 0.25, "train_mse": 0.25}]
SPEC = "study: s\ncompare:\n  loss: [mse, lmse]\nvary:\n  seed: [0, 1]\nfixed:\n  epochs: 2\n"
CELLS = [Cell(study="s", epochs=2, loss=loss, seed=seed)
         for loss in ("mse", "lmse") for seed in (0, 1)]


def store_at(root: Path, auroc: float = 0.75) -> Path:
    store = ResultsStore(str(root), "s")
    store.prepare()
    for cell in CELLS:
        store.write_cell(cell, dict(FINAL, auroc=auroc), EPOCHS)
    store.write_study_json({"study": "s", "spec_yaml": SPEC})
    return root


@pytest.fixture
def results(tmp_path) -> Path:
    return store_at(tmp_path / "results")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def sql(capsys, results: Path | str, query: str, *extra: str) -> tuple[int, object, str]:
    code, out, err = run_cli(capsys, "sql", query, "--results", str(results), "--format",
                             "json", *extra)
    return code, json.loads(out) if code == 0 else None, err


# -- 1: stray files ----------------------------------------------------------------------

def test_stray_files_neither_break_nor_falsify_sql_and_the_report(results, tmp_path, capsys):
    """A foreign Parquet file, one with compatible columns, a backup copy: every query and
    the report answer from the store's own files; each stray is named once."""
    trials = results / "s" / "trials"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1.0]}), trials / "foreign.parquet")
    pq.write_table(pa.table({"cell_id": [5], "status": ["1.5"]}), trials / "extra.parquet")
    first = trials / f"{CELLS[0].cell_id}.parquet"
    (trials / f"{CELLS[0].cell_id}_backup.parquet").write_bytes(first.read_bytes())
    code, answer, err = sql(capsys, results, "select count(*) n, count(distinct cell_id) c, "
                            "list(distinct status) s from trials")
    assert code == 0 and answer == [{"n": 4, "c": 4, "s": ["complete"]}]
    for name in ("foreign.parquet", "extra.parquet", f"{CELLS[0].cell_id}_backup.parquet"):
        assert err.count(f"{trials / name} (not a file this store writes") == 1
    code, out, err = run_cli(capsys, "report", "s", "--results", str(results), "--out",
                             str(tmp_path / "report"))
    assert code == 0, err
    text = (tmp_path / "report" / "s" / "report.md").read_text()
    assert "1.5" not in text.split("## ")[2]  # the trials section: no invented status


# -- 4: paths are literal ----------------------------------------------------------------

def test_a_results_path_with_glob_characters_reads_only_itself(tmp_path, capsys):
    store_at(tmp_path / "rg1", auroc=0.9)
    code, _, err = sql(capsys, tmp_path / "rg[1]", "select count(*) n from trials")
    assert code == 2 and "does not exist" in err
    store_at(tmp_path / "rg[1]", auroc=0.25)
    code, answer, _ = sql(capsys, tmp_path / "rg[1]", "select avg(auroc) a from trials")
    assert code == 0 and answer == [{"a": 0.25}]


# -- 5: read-only SQL --------------------------------------------------------------------

def test_landscape_where_cannot_run_a_second_statement(results, tmp_path, capsys):
    target = tmp_path / "x.csv"
    where = f"1=1); COPY (SELECT 42) TO '{target}'; SELECT * FROM trials WHERE (1=1"
    code, _, err = run_cli(capsys, "landscape", "s", "--results", str(results),
                           "--where", where)
    assert code == 2 and "must be one condition" in err
    assert not target.exists()
    code, _, err = run_cli(capsys, "landscape", "s", "--results", str(results), "--where",
                           f"cell_id IN (SELECT content FROM read_text('{results}/s/study.json'))")
    assert code == 2 and "disabled by configuration" in err


def test_sql_reads_no_file_under_the_working_directory(results, tmp_path, monkeypatch, capsys):
    """DuckDB's default temp directory is .tmp under the working directory; a read-only
    connection switches it off, so .tmp/secret.txt is as unreadable as any file."""
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "secret.txt").write_text("TOKEN-4242")
    monkeypatch.chdir(tmp_path)
    for path in (".tmp/secret.txt", "results/s/study.json"):
        code, _, err = sql(capsys, results, f"select content from read_text('{path}')")
        assert code == 2 and "disabled by configuration" in err and "TOKEN-4242" not in err


@pytest.mark.parametrize("option", [("--metric", "auroc) FROM trials; SELECT 42 --"),
                                    ("--by", "dataset,1); drop table trials; --"),
                                    ("--axis", "loss||'x'")])
def test_named_query_options_are_checked_against_whitelists(results, option, capsys):
    code, _, err = sql(capsys, results, "tuned_vs_grid", *option)
    assert code == 2 and err.startswith("adstudy sql: error: unknown ")


# -- 6 and 8: input refused, and refused as what it is -----------------------------------

REFUSED = {
    "duplicate key": (SPEC + "vary:\n  lr: [0.1]\n",
                      ["found the key 'vary' twice (first on line 4)"]),
    "duplicate nested key": (SPEC.replace("epochs: 2", "epochs: 2\n  epochs: 3"),
                             ["found the key 'epochs' twice"]),
    "name ending in a newline": ('study: "nl\\n"\n', ["study name 'nl\\n' is not allowed"]),
    "unknown device": (SPEC + "run: {device: tpu}\n",
                       ["run.device: 'tpu' is not allowed; choose from ['auto', 'cpu', "
                        "'cuda']"]),
    "bad value against the stored study": (SPEC.replace("epochs: 2", "epochs: -1"),
                                           ["epochs: -1 is not allowed; it must be > 0"]),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_input_is_refused_with_its_own_error_and_the_store_untouched(
    case, results, tmp_path, capsys
):
    text, words = REFUSED[case]
    config = tmp_path / "study.yaml"
    config.write_text(text)
    before = snapshot(results)
    code, _, err = run_cli(capsys, "submit", str(config), "--results", str(results))
    assert code == 2 and err.startswith("adstudy submit: error: "), err
    for word in words:
        assert word in err
    assert "different spec" not in err
    assert snapshot(results) == before


# -- 7: errors, not tracebacks -----------------------------------------------------------

def cli_process(*args: str, env: dict | None = None, prelude: str = "") -> subprocess.Popen:
    code = (f"import sys\n{prelude}\nfrom study.cli import main\n"
            f"sys.exit(main({list(args)!r}))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=120)


@pytest.mark.parametrize("content", [b"\x00\x01\xff\xfebinary", "study: caf\xe9\n".encode(
    "latin-1")])
def test_a_spec_that_is_not_utf8_text_is_an_error(tmp_path, content, capsys):
    config = tmp_path / "study.yaml"
    config.write_bytes(content)
    code, _, err = run_cli(capsys, "describe", str(config))
    assert code == 2 and "is not UTF-8 text" in err and str(config) in err


@pytest.mark.parametrize("content", [b"not an npz at all", b"PK\x03\x04broken zip"])
def test_an_npz_path_to_a_file_that_is_not_npz_is_named(tmp_path, content, capsys):
    data = tmp_path / "data.npz"
    data.write_bytes(content)
    config = tmp_path / "study.yaml"
    config.write_text(f"study: n\nfixed:\n  dataset: {{name: npz, path: {data}}}\n")
    problem = f"dataset npz(path={data}): its file cannot be read"
    code, out, _ = run_cli(capsys, "describe", str(config))  # data may live on the cluster
    assert code == 0 and "data missing or unusable on this machine" in out and problem in out
    code, _, err = run_cli(capsys, "submit", str(config), "--dry-run", "--results",
                           str(tmp_path / "results"))  # trials would run here: refused
    assert code == 2 and problem in err
    assert not (tmp_path / "results").exists()


def test_a_report_of_a_study_with_empty_folders_is_an_error(tmp_path, capsys):
    for table in ("trials", "epochs", "scores"):
        (tmp_path / "results" / "e" / table).mkdir(parents=True)
    code, _, err = run_cli(capsys, "report", "e", "--results", str(tmp_path / "results"),
                           "--out", str(tmp_path / "report"))
    assert code == 2 and "no stored trials of e" in err
    assert not (tmp_path / "report" / "e").exists()


def test_a_report_on_a_disk_that_fills_up_leaves_no_file(results, tmp_path):
    """A real limit: the report's process may write files of at most 20 kB (RLIMIT_FSIZE,
    as a full disk, EFBIG); the figures are bigger. Nothing half-written is left."""
    out = tmp_path / "report"
    prelude = ("import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
               "resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))")
    done = cli_process("report", "s", "--results", str(results), "--out", str(out),
                       prelude=prelude)
    assert done.returncode == 2, done.stderr
    assert "adstudy report: error: cannot write the report to" in done.stderr
    assert "Traceback" not in done.stderr
    assert [p for p in out.rglob("*") if p.is_file()] == []


def test_a_report_out_path_that_cannot_be_a_folder_is_an_error(results, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, "report", "s", "--results", str(results), "--out",
                           str(blocker / "report"))
    assert code == 2 and "cannot write the report to" in err


@pytest.mark.parametrize("what", ["missing", "a file"])
def test_sql_results_that_are_not_a_folder_are_an_error(tmp_path, what, capsys):
    root = tmp_path / "results"
    if what == "a file":
        root.write_text("x")
    code, _, err = sql(capsys, root, "select 1 as a")
    assert code == 2
    assert ("does not exist" if what == "missing" else "is a file") in err


# -- 8: scratch folders of killed drivers ------------------------------------------------

def test_scratch_folders_of_killed_drivers_are_swept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = time.time() - 2 * 3600
    folders = {name: tmp_path / name for name in (
        f"{PREFIX}{dead.pid}-gone", f"{PREFIX}{os.getpid()}-mine", f"{PREFIX}{dead.pid}-fresh",
        f"{PREFIX}oldstyle")}
    for name, folder in folders.items():
        (folder / "study").mkdir(parents=True)
        (folder / "study" / "experiment_state.json").write_text("{}")
        if "fresh" not in name:
            for path in (folder / "study" / "experiment_state.json", folder / "study", folder):
                os.utime(path, (old, old))
    swept = sweep_scratch(str(tmp_path))
    assert sorted(swept) == sorted(str(folders[n]) for n in folders
                                   if n.endswith(("gone", "oldstyle")))
    assert folders[f"{PREFIX}{os.getpid()}-mine"].exists()
    assert folders[f"{PREFIX}{dead.pid}-fresh"].exists()
