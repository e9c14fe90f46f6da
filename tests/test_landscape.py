"""Loss landscapes (trainables.landscape, study.landscape_store, `adstudy landscape`): filter
normalisation as Li et al., the trained weights left untouched, a trained minimum that
rises on every side, and the whole path: a study that saves weights through Ray, then
Parquet points and summaries, figures, a sharpness table, and a rerun that skips."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from analysis.views import connect, rows
from study.cell import Cell
from study.cli import main
from study.spec import parse_spec
from study.store import ResultsStore
from study.submit import submit
from trainables.landscape import Options, cell_landscape, filter_normalised, surface_for
from trainables.models import MODELS
from trainables.train import train_cell

pytestmark = pytest.mark.slow  # trains, or submits through Ray

LINES = '{"n_test":100,"n_train":200}'


def trained(epochs: int = 15) -> tuple[Cell, bytes]:
    """A small MLP autoencoder trained on 200 line images, with its weights."""
    cell = Cell(study="t", dataset="lines", dataset_params=LINES, model="mlp_ae",
                model_params='{"hidden":[16]}', latent_dim=4, epochs=epochs, batch_size=16,
                lr=0.003)
    final = list(train_cell(cell, "~/.cache/adstudy", "cpu", save_weights=True))[-1]
    assert final["status"] == "complete"
    return cell, final["weights"]


def test_directions_are_filter_normalised_and_skip_biases():
    torch.manual_seed(0)
    model = MODELS["lamp_ae"]((1, 28, 28), 8)
    params = list(model.parameters())
    directions = filter_normalised(params, torch.Generator().manual_seed(1))
    for p, d in zip(params, directions, strict=True):
        assert d.shape == p.shape
        if p.dim() <= 1:
            assert torch.all(d == 0)  # biases and batch-norm parameters stay put
        else:
            torch.testing.assert_close(d.flatten(1).norm(dim=1), p.flatten(1).norm(dim=1))
    again = filter_normalised(params, torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(directions, again, strict=True))


def test_a_trained_minimum_rises_on_every_side_and_weights_are_restored():
    cell, weights = trained()
    options = Options(directions=2, points=9, grid=5, radius=0.5, samples=64, batch=32)
    surface = surface_for(cell, weights, "~/.cache/adstudy", options)
    before = [p.detach().clone() for p in surface.params]
    rows, summary = cell_landscape(cell, weights, "~/.cache/adstudy", options)
    assert len(rows) == 2 * 9 + 5 * 5
    line = [r for r in rows if r["kind"] == "1d" and r["direction"] == 0]
    centre = min(line, key=lambda r: abs(r["alpha"]))
    assert centre["mse"] == pytest.approx(summary["mse_center"], rel=1e-5)
    assert line[0]["mse"] > centre["mse"] and line[-1]["mse"] > centre["mse"]
    assert summary["sharpness_mse"] > 0 and summary["sharpness"] == summary["sharpness_mse"]
    surface.at([(0.3, [torch.ones_like(p) for p in surface.params])])
    assert all(torch.equal(p, b) for p, b in zip(surface.params, before, strict=True))
    state = torch.load(io.BytesIO(weights), weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in surface.model.state_dict().items())


def test_options_reject_bad_values_naming_them():
    with pytest.raises(ValueError, match="landscape points: 0 must be >= 1"):
        Options(points=0)
    with pytest.raises(ValueError, match="radius -1.0 > 0"):
        Options(radius=-1.0)


STUDY = """
study: scape
compare:
  loss: [mse, lamp]
fixed:
  dataset: {name: lines, n_train: 100, n_test: 60}
  model: {name: mlp_ae, hidden: [8]}
  latent_dim: 2
  batch_size: 16
  lr: 0.003
  epochs: 6
run: {save_weights: true}
"""


def test_landscape_of_a_submitted_study(ray_local, tmp_path, capsys):
    results = str(tmp_path)
    spec = parse_spec(STUDY)
    progress = submit(spec, results=results, out=io.StringIO())
    assert progress.done == 2
    store = ResultsStore(results, "scape")
    cells = sorted(store.stored_statuses())
    assert all(store.read_weights(c) for c in cells)  # weights/<cell_id>.pt, torch.load-able

    args = ["landscape", "scape", "--results", results, "--by", "loss", "--points", "7",
            "--grid", "5", "--samples", "50", "--radius", "0.5"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("landscape of") == 2 and "| loss |" in out
    folder = tmp_path / "scape" / "landscape"
    assert (folder / "landscape_1d.png").stat().st_size > 0
    assert (folder / "landscape_2d.png").stat().st_size > 0
    summary = pq.read_table(folder / "summary").to_pylist()
    assert sorted(r["cell_id"] for r in summary) == cells
    assert {r["loss_label"] for r in summary} == {"mse", "lamp"}
    assert all(np.isfinite(r["sharpness_mse"]) and r["landscape_points"] == 7 for r in summary)
    points = pq.read_table(folder / "points").to_pylist()
    assert len(points) == 2 * (2 * 7 + 5 * 5)
    # the same tables as SQL views, joinable with the trials
    con = connect(results, read_only=True)
    by_loss = rows(con, """SELECT l.loss_label, l.sharpness_mse, t.auroc FROM landscape l
                           JOIN trials t USING (cell_id) ORDER BY 1""")
    assert [r["loss_label"] for r in by_loss] == ["lamp", "mse"]
    assert {r["sharpness_mse"] for r in by_loss} == {r["sharpness_mse"] for r in summary}
    (count,) = rows(con, "SELECT count(*) AS n FROM landscape_points WHERE kind = '2d'")
    assert count["n"] == 2 * 5 * 5

    assert main(args) == 0  # measured trials are skipped; the table and figures remain
    assert "landscape of" not in capsys.readouterr().out


def test_a_study_without_weights_says_how_to_get_them(ray_local, tmp_path, capsys):
    spec = parse_spec(STUDY.replace("scape", "noweights").replace("true", "false"))
    submit(spec, results=str(tmp_path), out=io.StringIO())
    assert main(["landscape", "noweights", "--results", str(tmp_path)]) == 2
    assert "stored no weights: submit it with run: {save_weights: true}" in capsys.readouterr().err
    assert main(["landscape", "absent", "--results", str(tmp_path)]) == 2
    assert "no study 'absent'" in capsys.readouterr().err
