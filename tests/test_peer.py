"""bench/peer.py's peer (the Ray Tune script a competent user writes, issue 21) runs the
same cells as `adstudy submit` and detects as well: a tiny grid on one local Ray."""

import io
import statistics

import pytest
import yaml

from bench.peer import cell_key, check_same_cells, floor_line, floor_rows, peer_rows
from study.spec import parse_spec
from study.store import ResultsStore
from study.submit import submit

pytestmark = pytest.mark.slow  # (ray: added by conftest for ray_local)

TINY = {
    "study": "peer_tiny",
    "compare": {"loss": ["mse", "lmse"]},
    "vary": {"normal_class": [0, 1], "lr": [0.003], "latent_dim": [8], "seed": [0, 1]},
    "fixed": {"dataset": "digits", "protocol": "one_class", "model": "cae",
              "optimizer": "adam", "batch_size": 32, "epochs": 15},
    "resources": {"cpu": 1, "gpu": 0},
}


def test_the_peer_runs_the_same_cells_as_adstudy_with_sensible_aurocs(ray_local, tmp_path):
    peer = peer_rows(TINY, str(tmp_path / "data"), str(tmp_path / "peer"))
    submit(parse_spec(yaml.safe_dump(TINY)), results=str(tmp_path / "results"),
           out=io.StringIO())
    ours = ResultsStore(str(tmp_path / "results"), "peer_tiny").read_trials(
        columns=["loss", "normal_class", "lr", "latent_dim", "seed", "auroc", "status"]
    ).to_pylist()

    assert len(peer) == 8 and len({cell_key(r) for r in peer}) == 8  # one trial per cell
    check_same_cells(peer, ours)  # raises when the grids differ
    assert {r["status"] for r in ours} == {"complete"}
    # Digits 0 and 1 against the rest (measured: 0.88-1.0 on both sides): well above
    # chance, and close to each other (they differ only in the order batches are drawn).
    assert all(0.8 < r["auroc"] <= 1.0 for r in peer), peer
    mean_peer = statistics.fmean(r["auroc"] for r in peer)
    mean_ours = statistics.fmean(r["auroc"] for r in ours)
    assert abs(mean_peer - mean_ours) < 0.03, (mean_peer, mean_ours)


def test_the_grids_must_match():
    row = {"loss": "mse", "normal_class": 0, "lr": 0.003, "latent_dim": 8, "seed": 0}
    with pytest.raises(RuntimeError, match="not the same grid"):
        check_same_cells([row], [row | {"seed": 1}])


def test_the_floor_runs_one_torch_trial_per_slot(ray_local, tmp_path):
    rows = floor_rows(2, str(tmp_path / "floor"))
    assert sorted(r["slot"] for r in rows) == [0, 1]


def test_the_floor_bounds_the_ratio_and_gives_the_ratio_past_it():
    line = floor_line(peer=40.0, ours=26.0, floor=14.0)
    # at most 40 / 14 = 2.86x; 3x needs 40 / 3 = 13.3 s; past the floor 26 s against 12 s
    assert "at most 2.86x" in line and "3x needs 13.3 s" in line
    assert "2.17x the peer's speed (26.0 s against 12.0 s)" in line
    assert "n/a (at the floor)" in floor_line(peer=40.0, ours=14.0, floor=14.0)
