"""`adstudy sql`: named queries, the interactive shell, and studies read from a URI."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from analysis_data import grid, plus, write_study

from analysis.convergence import convergence
from analysis.deltas import delta_summary
from analysis.queries import QUERIES
from analysis.views import connect, study_names
from study.cli import main


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("results")
    write_study(path, "s", grid("s", classes=3), plus(0.01))
    return path


def same(found, want):
    """Records equal, floats to 1e-9 (DuckDB's parallel sums differ in the last bits)."""
    def close(a, b):
        return a == pytest.approx(b, rel=1e-9) if isinstance(b, float) else a == b

    return len(found) == len(want) and all(
        f.keys() == w.keys() and all(close(f[k], w[k]) for k in w)
        for f, w in zip(found, want, strict=True))


def run(capsys, *argv):
    code = main(["sql", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_names_every_statistic(capsys):
    code, out, _ = run(capsys, "--list", "--format", "json")
    names = [q["name"] for q in json.loads(out)]
    assert code == 0 and names == list(QUERIES)
    for name in ("convergence", "convergence_seeds", "oscillation", "divergence", "deltas",
                 "unpaired", "seed_stability", "best_of", "auroc_stability", "claims",
                 "lmse_table", "lamp_table1", "lamp_table2", "iaead_table2", "iaead_table3",
                 "aevae_outcomes"):
        assert name in names


def test_every_named_query_runs(root, capsys):
    for name in QUERIES:
        code, out, err = run(capsys, name, "--results", str(root), "--format", "json")
        assert code == 0, (name, err)
        assert isinstance(json.loads(out), list)


def test_named_queries_answer_what_the_functions_do(root, capsys):
    code, out, _ = run(capsys, "convergence", "--results", str(root), "--format", "json")
    assert code == 0 and same(json.loads(out), convergence(connect(str(root))))
    code, out, _ = run(capsys, "deltas", "--results", str(root), "--by", "normal_class",
                       "--metric", "aupr_out", "--format", "json")
    found = json.loads(out)
    assert [r["normal_class"] for r in found] == [0, 1, 2]
    assert all(r["n_pairs"] == 2 and r["mean_delta"] == pytest.approx(0.01) for r in found)


def test_show_sql_prints_a_query_that_gives_the_same_answer(root, capsys):
    code, sql, _ = run(capsys, "oscillation", "--show-sql", "--last", "3")
    assert code == 0 and "back <= 3" in sql
    _, direct, _ = run(capsys, sql, "--results", str(root), "--format", "json")
    _, named, _ = run(capsys, "oscillation", "--last", "3", "--results", str(root),
                      "--format", "json")
    assert same(json.loads(direct), json.loads(named))
    code, _, err = run(capsys, "claims", "--show-sql")
    assert code == 2 and "combines several queries in Python" in err


def test_bad_names_and_values_are_named(root, capsys):
    code, _, err = run(capsys, "convergnce", "--results", str(root))
    assert code == 2 and "unknown named query 'convergnce' (did you mean 'convergence'?)" in err
    code, _, err = run(capsys, "deltas", "--results", str(root), "--baseline", "msee")
    assert code == 2 and "baseline loss 'msee' not found in trials; choose from" in err
    code, _, err = run(capsys, "deltas", "--results", str(root), "--metric", "auc")
    assert code == 2 and "unknown metric 'auc'" in err
    code, _, err = run(capsys, "select nope from trials", "--results", str(root))
    assert code == 2 and 'adstudy sql: error: Binder Error' in err


def test_shell_reads_statements_until_semicolon(root, capsys, monkeypatch):
    script = ("select count(*) as n\n  from trials;\n"
              "unpaired;\n"
              "select nope from trials;\n"
              ".list\n"
              "select 41 + 1 as answer\n")  # the last statement may omit its ';'
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    code, out, _ = run(capsys, "--results", str(root))
    assert code == 1  # one statement failed; the others ran
    assert "| n |\n|---|\n| 12 |" in out
    assert "| value | status | reason |" in out or "_no rows_" in out
    assert "error: Binder Error" in out
    assert "| convergence |" in out and "| 42 |" in out


def test_a_file_uri_reads_like_a_local_path(root, capsys):
    uri = f"file://{root}"
    assert study_names(uri) == ["s"]
    query = "select loss, count(*) n, avg(auroc) a from trials group by loss order by loss"
    _, local, _ = run(capsys, query, "--results", str(root), "--format", "json")
    _, remote, _ = run(capsys, query, "--results", uri, "--format", "json")
    assert same(json.loads(remote), json.loads(local)) and json.loads(local)[0]["n"] == 6
    _, named, _ = run(capsys, "deltas", "--results", uri, "--format", "json")
    assert json.loads(named)[0]["n_pairs"] == 6


@pytest.mark.parametrize("prefix", ["", "file://"])
def test_files_from_an_older_schema_read_with_nulls(tmp_path, prefix):
    write_study(tmp_path, "s", grid("s", classes=1, seeds=1), plus(0.01))
    old = pa.table({"study": ["s"], "cell_id": ["000000000a1d"], "loss": ["mse"],
                    "loss_label": ["mse"], "status": ["failed"]})
    pq.write_table(old, tmp_path / "s" / "trials" / "000000000a1d.parquet")
    con = connect(f"{prefix}{tmp_path}")
    found = con.execute("select status, count(*), count(auroc) from trials "
                        "group by status order by status").fetchall()
    assert found == [("complete", 2, 2), ("failed", 1, 0)]


def test_a_missing_study_is_named_for_a_uri(tmp_path, capsys):
    code, _, err = run(capsys, "select 1", "--results", f"file://{tmp_path}", "--study", "nope")
    assert code == 2 and "study 'nope' not found" in err


def test_a_study_older_than_a_field_still_pairs(tmp_path):
    """Every trials file lacks max_test (a cell field: read as its default 0) and node_id
    (not a cell field: NULL); one file also lacks max_train, which the others have."""
    write_study(tmp_path, "s", grid("s", classes=3), plus(0.01))
    for i, path in enumerate(sorted((tmp_path / "s" / "trials").glob("*.parquet"))):
        drop = ["max_test", "node_id"] + (["max_train"] if i == 0 else [])
        pq.write_table(pq.read_table(path).drop_columns(drop), path)
    con = connect(str(tmp_path))
    found = con.execute("select sum(max_test), sum(max_train), count(node_id), count(*) "
                        "from trials").fetchone()
    assert found == (0, 0, 0, 12)
    (row,) = delta_summary(con, "mse")
    assert row["n_pairs"] == 6 and row["mean_delta"] == pytest.approx(0.01)


def test_sql_over_several_studies_pools_only_when_asked(tmp_path, capsys):
    for study in ("a", "b"):
        write_study(tmp_path, study, grid(study, classes=3), plus(0.01))
    query = "select count(*) n, count(distinct study) s from trials"
    code, _, err = run(capsys, query, "--results", str(tmp_path))
    assert code == 2 and "2 studies in" in err and "['a', 'b']" in err
    assert "--study (repeatable), or pass --all-studies" in err
    code, out, err = run(capsys, query, "--results", str(tmp_path), "--all-studies",
                         "--format", "json")
    assert code == 0 and json.loads(out) == [{"n": 24, "s": 2}]
    assert "pooling 2 studies: a, b" in err
    code, out, err = run(capsys, query, "--results", str(tmp_path), "--study", "a",
                         "--format", "json")
    assert code == 0 and json.loads(out) == [{"n": 12, "s": 1}] and "pooling" not in err
