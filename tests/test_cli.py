import json

from study.cell import Cell
from study.cli import main
from study.store import ResultsStore


def test_describe_prints_axes_and_cell_count(capsys):
    assert main(["describe", "configs/quickstart.yaml"]) == 0
    out = capsys.readouterr().out
    assert "compare loss             2 x [mse, lmse]" in out
    assert "160 combinations, 160 distinct cells" in out


def test_describe_rejects_a_bad_name_before_any_work(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("study: b\ncompare:\n  loss: [mse, lmsee]\n")
    assert main(["describe", str(config)]) == 2
    err = capsys.readouterr().err
    assert "unknown loss 'lmsee'; did you mean 'lmse'?" in err


def test_describe_rejects_unknown_parameters_and_bad_values(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("study: b\ncompare:\n  loss: [{name: lamp, bse: l1}]\n")
    assert main(["describe", str(config)]) == 2
    assert "loss 'lamp' has no parameter 'bse'" in capsys.readouterr().err
    config.write_text("study: b\nfixed:\n  lr: -0.1\n")
    assert main(["describe", str(config)]) == 2
    assert "lr: -0.1 is not allowed; it must be > 0" in capsys.readouterr().err
    config.write_text("study: b\nvary:\n  normal_class: [0, 10]\n")
    assert main(["describe", str(config)]) == 2
    assert "normal_class: 10 is not a class of dataset 'digits'" in capsys.readouterr().err


def test_sql_answers_over_stored_results_in_each_format(tmp_path, capsys):
    store = ResultsStore(str(tmp_path), "s")
    store.prepare()
    for loss, auroc in (("mse", 0.7), ("lmse", 0.8)):
        store.write_cell(Cell(study="s", loss=loss), {"status": "complete", "auroc": auroc}, [])
    query = "select loss, avg(auroc) as a from trials group by loss order by loss"
    assert main(["sql", query, "--results", str(tmp_path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"loss": "lmse", "a": 0.8},
                                                  {"loss": "mse", "a": 0.7}]
    assert main(["sql", query, "--results", str(tmp_path), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["loss,a", "lmse,0.8", "mse,0.7"]
    assert main(["sql", "select count(*) n from epochs", "--results", str(tmp_path)]) == 0
    assert "| 0 |" in capsys.readouterr().out


def test_sql_names_a_missing_study(tmp_path, capsys):
    assert main(["sql", "select 1", "--results", str(tmp_path), "--study", "nope"]) == 2
    assert "study 'nope' not found" in capsys.readouterr().err
