"""`adstudy export`: a stored study as TensorBoard and MLflow runs, read back with the
trackers' own readers (TensorBoard's EventAccumulator, mlflow.search_runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from analysis_data import EPOCHS, write_study

from study.cell import Cell
from study.cli import main
from study.export_runs import cell_runs
from study.store import ResultsStore

CELLS = [Cell(study="ex", loss=loss, loss_params=params, seed=seed)
         for loss, params in (("mse", "{}"), ("lamp", '{"base":"l1"}'))
         for seed in (0, 1)]


@pytest.fixture
def stored(tmp_path) -> Path:
    """Four cells through the real store; lamp seed 1 diverged (two epochs, no AUROC)."""
    results = tmp_path / "results"
    spec = ("study: ex\ncompare: {loss: [mse, {name: lamp, base: l1}]}\n"
            "vary: {seed: [0, 1]}\n")
    write_study(results, "ex", CELLS, auroc=lambda c: 0.7 + 0.1 * c.seed,
                status=lambda c: "diverged" if (c.loss, c.seed) == ("lamp", 1) else "complete")
    ResultsStore(str(results), "ex").write_study_json({"spec_yaml": spec})
    return results


def test_the_runs_carry_every_parameter_in_full_and_the_axes_as_their_label(stored):
    runs = {r.cell_id: r for r in cell_runs(ResultsStore(str(stored), "ex"))}
    lamp = runs[CELLS[2].cell_id]
    assert lamp.label == "loss=lamp(base=l1) seed=0"
    assert lamp.params["loss"] == "lamp" and lamp.params["loss.base"] == "l1"
    assert lamp.params["loss.reduction"] == "sum"  # a default, written out
    assert lamp.params["optimizer.beta1"] == 0.9 and lamp.params["lr"] == 0.001
    assert [e["epoch"] for e in lamp.epochs] == list(range(1, EPOCHS + 1))
    assert lamp.final["auroc"] == pytest.approx(0.7)
    assert runs[CELLS[3].cell_id].status == "diverged"
    assert "auroc" not in runs[CELLS[3].cell_id].final


def test_tensorboard_reads_the_curves_and_hparams_of_every_cell(stored, tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="tensorboard not installed: pip install "
                        "'adstudy[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = tmp_path / "tb"
    assert main(["export", "ex", "--results", str(stored), "--tensorboard", str(out)]) == 0
    assert "tensorboard: 4 run(s) written" in capsys.readouterr().out
    folders = sorted(p.parent for p in out.rglob("events.out.tfevents.*"))
    assert len(folders) == 4
    run = next(f for f in folders if f.name == CELLS[2].cell_id)
    assert run.parent.name == "loss=lamp(base=l1),seed=0"
    acc = EventAccumulator(str(run))
    acc.Reload()
    curve = acc.Scalars("epoch/train_mse")
    assert [s.step for s in curve] == list(range(1, EPOCHS + 1))
    assert curve[-1].value < curve[0].value
    assert acc.Scalars("auroc")[0].value == pytest.approx(0.7)
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert info.hparams["loss.base"].string_value == "l1"
    assert info.hparams["seed"].number_value == 0
    # exporting again adds nothing: every cell was exported before
    assert main(["export", "ex", "--results", str(stored), "--tensorboard", str(out)]) == 0
    assert "0 run(s) written" in capsys.readouterr().out
    assert len(list(out.rglob("events.out.tfevents.*"))) == 4


@pytest.mark.parametrize("backend", ["file", "sqlite"])
def test_mlflow_finds_one_run_per_cell_with_params_tags_and_epoch_metrics(
        stored, tmp_path, monkeypatch, backend):
    mlflow = pytest.importorskip("mlflow", reason="mlflow not installed: pip install "
                                 "'adstudy[mlflow]'")
    if backend == "file":  # MLflow 3 keeps its file store behind this opt-in
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = (tmp_path / "mlruns").as_uri()
    else:
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["export", "ex", "--results", str(stored), "--mlflow", uri]) == 0
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["ex"])
    assert len(runs) == 4
    assert set(runs["tags.adstudy.cell_id"]) == {c.cell_id for c in CELLS}
    assert set(runs["tags.adstudy.study"]) == {"ex"}
    lamp = runs[runs["tags.adstudy.cell_id"] == CELLS[2].cell_id].iloc[0]
    assert lamp["params.loss.base"] == "l1" and lamp["params.seed"] == "0"
    assert lamp["metrics.auroc"] == pytest.approx(0.7)
    assert lamp["tags.mlflow.runName"] == "loss=lamp(base=l1) seed=0"
    diverged = runs[runs["tags.adstudy.cell_id"] == CELLS[3].cell_id].iloc[0]
    assert diverged["tags.adstudy.status"] == "diverged"
    client = mlflow.tracking.MlflowClient(uri)
    history = client.get_metric_history(lamp["run_id"], "train_mse")
    assert [m.step for m in history] == list(range(1, EPOCHS + 1))
    assert main(["export", "ex", "--results", str(stored), "--mlflow", uri]) == 0
    assert len(mlflow.search_runs(experiment_names=["ex"])) == 4  # nothing twice


def test_export_without_a_target_is_refused(stored, capsys):
    assert main(["export", "ex", "--results", str(stored)]) == 2
    said = capsys.readouterr()
    assert "--tensorboard DIR and/or --mlflow URI" in said.err and said.out == ""


def test_a_tracking_uri_mlflow_refuses_is_said_in_one_line(stored, tmp_path, monkeypatch,
                                                           capsys):
    pytest.importorskip("mlflow", reason="mlflow not installed: pip install 'adstudy[mlflow]'")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = (tmp_path / "mlruns").as_uri()
    assert main(["export", "ex", "--results", str(stored), "--mlflow", uri]) == 2
    err = capsys.readouterr().err
    assert err.startswith("adstudy export: error: MLflow refused tracking URI")
    assert "MLFLOW_ALLOW_FILE_STORE" in err and "Traceback" not in err
