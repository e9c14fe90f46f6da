import numpy as np
import pytest

from study.cell import Cell
from trainables.run import run_cell
from trainables.train import train_cell

pytestmark = pytest.mark.slow  # every test here trains

CELL = Cell(study="t", dataset="digits", normal_class=1, latent_dim=4, epochs=3, batch_size=32,
            max_test=300)


def records(cell, **kw):
    out = list(run_cell(cell, **kw))
    return out[:-1], out[-1]


def test_train_cell_yields_epoch_records_then_a_complete_final_record(tmp_path):
    epochs, final = records(CELL, data_root=str(tmp_path))
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    for e in epochs:
        assert {"train_loss", "train_mse", "test_auroc", "test_mse_normal",
                "test_mse_anomalous", "grad_norm", "wall_s"} <= set(e)
        assert np.isfinite([e["train_loss"], e["train_mse"], e["grad_norm"]]).all()
    assert final["status"] == "complete" and final["epochs_run"] == 3
    assert 0.0 <= final["auroc"] <= 1.0 and final["auroc"] == epochs[-1]["test_auroc"]
    assert len(final["scores"]) == len(final["labels"]) == 300
    assert final["device"] == "cpu" and final["torch_version"] and final["host"]


def test_training_reduces_the_reconstruction_error(tmp_path):
    epochs, _ = records(Cell(study="t", dataset="digits", epochs=12, lr=0.003, latent_dim=8),
                        data_root=str(tmp_path))
    assert epochs[-1]["train_mse"] < 0.6 * epochs[0]["train_mse"]


def test_same_cell_gives_the_same_numbers(tmp_path):
    a_epochs, a = records(CELL, data_root=str(tmp_path))
    b_epochs, b = records(CELL, data_root=str(tmp_path))
    assert [e["train_loss"] for e in a_epochs] == [e["train_loss"] for e in b_epochs]
    assert a["auroc"] == b["auroc"] and np.array_equal(a["scores"], b["scores"])
    _, other_seed = records(Cell(**{**CELL.to_dict(), "seed": 1}), data_root=str(tmp_path))
    assert other_seed["auroc"] != a["auroc"]


def test_non_finite_loss_ends_the_trial_as_diverged(tmp_path):
    # eps = 0 maps the batch's largest error to -log(0) = inf in the first step.
    cell = Cell(study="t", dataset="digits", loss="lmse", epochs=3,
                loss_params='{"eps":0.0,"max_over":"batch"}')
    epochs, final = records(cell, data_root=str(tmp_path))
    assert epochs == []
    assert final["status"] == "diverged" and "epoch 1" in final["error"]
    assert final["auroc"] is None


def test_an_exception_becomes_a_failed_record_with_its_error(tmp_path):
    cell = Cell(study="t", dataset="npz", dataset_params='{"path":"missing.npz"}')
    epochs, final = records(cell, data_root=str(tmp_path))
    assert epochs == [] and final["status"] == "failed"
    assert "FileNotFoundError" in final["error"] and "missing.npz" in final["error"]


def test_train_cell_itself_raises_so_callers_see_real_errors(tmp_path):
    with pytest.raises(KeyError, match="unknown loss 'nope'"):
        list(train_cell(Cell(study="t", loss="nope"), data_root=str(tmp_path)))


def test_trains_on_real_mnist(mnist5k):
    cell = Cell(study="t", dataset="npz", dataset_params=f'{{"path":"{mnist5k}"}}',
                normal_class=1, epochs=3, latent_dim=16, lr=0.003)
    epochs, final = records(cell)
    assert final["status"] == "complete"
    assert final["auroc"] > 0.9  # digit 1 against the rest: the easiest split for a CAE
