"""K cells trained as one vmapped stack equal K sequential runs, cell by cell."""

import numpy as np
import pytest

from study.cell import Cell
from trainables.stacking import stack_key
from trainables.train import train_cell
from trainables.train_stack import train_stack

pytestmark = pytest.mark.slow  # every test here trains


def cells_for(**fixed):
    base = dict(study="s", dataset="digits", normal_class=2, latent_dim=4, epochs=3,
                batch_size=32) | fixed
    if "losses" in base:  # rows of different losses (one with a batch maximum) and
        losses = base.pop("losses")  # normal classes (118, 122 and 121 training images)
        del base["normal_class"]
        return [Cell(**base, seed=s, lr=lr, loss=loss, loss_params=params, normal_class=c)
                for s in (0, 1) for lr in (0.001, 0.01) for loss, params in losses
                for c in (2, 3, 6)]
    return [Cell(**base, seed=s, lr=lr) for s in (0, 1) for lr in (0.001, 0.01)]


MIXED = (("mse", "{}"), ("lmse", "{}"), ("lmse", '{"max_over": "batch"}'))


def by_cell(records):
    out: dict[str, list[dict]] = {}
    for cell_id, record in records:
        out.setdefault(cell_id, []).append(record)
    return out


VAL_KEYS = ("val_recon_mse", "val_auroc")


@pytest.mark.parametrize("model, loss, val", [("cae", "mse", 0.0), ("cae", "lmse", 0.0),
                                              ("mlp_ae", "mse", 0.0), ("cae", "mse", 0.2),
                                              ("cae", MIXED, 0.0), ("cae", MIXED, 0.2)])
def test_stacked_training_equals_sequential_training(model, loss, val, tmp_path):
    by_loss = {"losses": loss} if isinstance(loss, tuple) else {"loss": loss}
    # batch 20: classes 3 and 6 stack (7 steps, last batches of 2 and 1), class 2 apart
    by_loss |= {"batch_size": 20} if isinstance(loss, tuple) else {}
    cells = cells_for(model=model, **by_loss, val_fraction=val,
                      model_params='{"hidden":[16]}' if model == "mlp_ae" else "{}")
    stacked = by_cell(train_stack(cells, data_root=str(tmp_path), device="cpu"))
    for cell in cells:
        sequential = list(train_cell(cell, data_root=str(tmp_path), device="cpu"))
        mine = stacked[cell.cell_id]
        assert [r["kind"] for r in mine] == [r["kind"] for r in sequential]
        # Dividing by the batch's largest error amplifies float rounding chaotically (a
        # stack of such cells alone, one class and loss, drifts from sequential runs as
        # much): its first epoch is compared, which reads its own batches' maxima or not.
        chaotic = "batch" in cell.loss_params
        rel = 2e-3 if chaotic else 2e-4
        if chaotic:
            mine, sequential = mine[:1] + mine[-1:], sequential[:1] + sequential[-1:]
        for a, b in zip(mine[:-1], sequential[:-1], strict=True):
            for key in ("train_loss", "train_mse", "grad_norm", "test_auroc", "test_mse_normal"):
                # an AUROC near 0.6 has many near-ties: rounding flips a few dozen pairs
                near = 5e-3 if chaotic and key == "test_auroc" else 1e-6
                assert a[key] == pytest.approx(b[key], rel=rel, abs=near), key
            # a held-out split is validated on as in a sequential run (and only then)
            assert {k for k in VAL_KEYS if k in a} == {k for k in VAL_KEYS if k in b}
            assert (val > 0) == ("val_auroc" in a)
            for key in (k for k in VAL_KEYS if k in b):
                assert a[key] == pytest.approx(b[key], rel=rel, abs=1e-6), key
        assert mine[-1]["status"] == sequential[-1]["status"] == "complete"
        if chaotic:
            continue
        for key in (k for k in VAL_KEYS if k in sequential[-1]):
            assert mine[-1][key] == pytest.approx(sequential[-1][key], abs=2e-3), key
        assert mine[-1]["auroc"] == pytest.approx(sequential[-1]["auroc"], abs=2e-3)
        assert np.allclose(mine[-1]["scores"], sequential[-1]["scores"], rtol=1e-3, atol=1e-6)


def test_a_diverging_cell_leaves_the_stack_and_the_others_complete(tmp_path):
    good = Cell(study="s", dataset="digits", loss="lmse", epochs=2, latent_dim=4)
    # The cells differ only in lr: an infinite lr makes one diverge in its first epoch.
    bad = Cell(**{**good.to_dict(), "lr": float("inf")})
    records = by_cell(train_stack([good, bad], data_root=str(tmp_path), device="cpu"))
    assert [r["kind"] for r in records[bad.cell_id]] == ["final"]
    assert records[bad.cell_id][-1]["status"] == "diverged"
    assert "epoch 1" in records[bad.cell_id][-1]["error"]
    assert records[good.cell_id][-1]["status"] == "complete"
    assert len(records[good.cell_id]) == 3
    # the diverged cell's NaNs stay in its own rows: the other trains as it would alone
    alone = list(train_cell(good, data_root=str(tmp_path), device="cpu"))
    for a, b in zip(records[good.cell_id][:-1], alone[:-1], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=2e-4)
    assert records[good.cell_id][-1]["auroc"] == pytest.approx(alone[-1]["auroc"], abs=2e-3)


def test_stack_key_groups_only_cells_that_share_data_and_model():
    a = Cell(study="s", seed=0, lr=0.1)
    assert stack_key(a) == stack_key(Cell(study="s", seed=5, lr=0.2))
    assert stack_key(a) == stack_key(Cell(study="s", loss="lmse", loss_params='{"eps": 0.01}'))
    assert stack_key(a) != stack_key(Cell(study="s", latent_dim=3))
    assert stack_key(a) == stack_key(Cell(study="s", normal_class=4))  # data: stack_data
    assert stack_key(a) != stack_key(Cell(study="s", dataset="lines"))
    assert stack_key(Cell(study="s", loss="ssim")) is None  # not a stacked loss
    assert stack_key(Cell(study="s", model="mlp_vae")) is None
    assert stack_key(Cell(study="s", max_train=10)) is None
