"""Packing cells into trials, and running a trial's pack."""

import pytest

from study.cell import Cell
from study.packing import auto_pack_size, pack_cells
from trainables.run import run_cells
from trainables.stacking import can_stack


def test_packs_keep_stackable_families_together_and_respect_the_size():
    family = [Cell(study="s", seed=s, lr=lr) for s in range(5) for lr in (0.1, 0.01)]
    other = [Cell(study="s", latent_dim=3, seed=s) for s in range(3)]
    loose = [Cell(study="s", model="mlp_vae", seed=s) for s in range(4)]
    packs = pack_cells([*family, *other, *loose], size=4)
    assert sorted(c.cell_id for g in packs for c in g) == sorted(
        c.cell_id for c in [*family, *other, *loose]
    )
    assert all(1 <= len(g) <= 4 for g in packs)
    for pack in packs:
        if pack[0].model == "cae":
            assert can_stack(pack) or len(pack) == 1
    assert [len(g) for g in packs] == [4, 3, 3, 3, 4]  # 10 -> 4+3+3, 3 -> 3, 4 loose -> 4


def test_size_one_means_one_cell_per_trial():
    cells = [Cell(study="s", seed=s) for s in range(3)]
    assert pack_cells(cells, 1) == [[c] for c in cells]


def test_auto_pack_size_gives_about_four_trials_per_slot():
    assert auto_pack_size(160, slots=2) == 20
    assert auto_pack_size(5, slots=2) == 1
    assert auto_pack_size(100_000, slots=8) == 64


@pytest.mark.slow
def test_run_cells_stacks_what_it_can_and_fails_cells_as_data(tmp_path):
    cells = [Cell(study="s", dataset="digits", epochs=2, latent_dim=4, seed=s) for s in (0, 1)]
    records = list(run_cells(cells, str(tmp_path), "cpu"))
    finals = {cid: r for cid, r in records if r["kind"] == "final"}
    assert set(finals) == {c.cell_id for c in cells}
    assert all(r["status"] == "complete" and r["host"] and r["finished_at"]
               for r in finals.values())
    broken = [Cell(study="s", dataset="npz", dataset_params='{"path":"nope.npz"}', seed=s)
              for s in (0, 1)]
    finals = [r for _, r in run_cells(broken, str(tmp_path), "cpu") if r["kind"] == "final"]
    assert [r["status"] for r in finals] == ["failed", "failed"]
    assert all("nope.npz" in r["error"] for r in finals)


@pytest.mark.slow
def test_on_a_cpu_small_images_train_stacked_and_large_ones_one_by_one(tmp_path):
    """Stacked cells end their epochs together; cells one by one end all their epochs in
    turn (trainables.stacking.CPU_STACK_MAX_PIXELS)."""
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "big.npz", x=rng.random((60, 20, 20), dtype=np.float32),
             y=np.repeat([0, 1], 30))
    small = [Cell(study="s", dataset="digits", epochs=2, latent_dim=4, seed=s) for s in (0, 1)]
    large = [Cell(study="s", dataset="npz", dataset_params='{"path": "big.npz"}', epochs=2,
                  latent_dim=4, seed=s) for s in (0, 1)]
    for cells, stacked in ((small, True), (large, False)):
        assert can_stack(cells)
        order = [(cid, r.get("epoch")) for cid, r in run_cells(cells, str(tmp_path), "cpu")]
        first, second = cells[0].cell_id, cells[1].cell_id
        together = [(first, 1), (second, 1), (first, 2), (second, 2)]
        apart = [(first, 1), (first, 2), (first, None), (second, 1)]
        assert order[:4] == (together if stacked else apart), order
