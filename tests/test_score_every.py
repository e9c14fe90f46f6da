"""Test figures every k-th epoch (score_every, issue 21): the other epochs carry none, the
last epoch always does, and nothing else changes: the training figures of every epoch
and the final record are those of scoring every epoch, bit for bit."""

import numpy as np
import pytest

from study.cell import Cell
from trainables.run import run_cells
from trainables.train import scored_epoch

pytestmark = pytest.mark.slow  # trains

TEST_KEYS = ("test_auroc", "test_mse_normal", "test_mse_anomalous")


def cells(n: int):
    base = dict(study="s", dataset="digits", normal_class=3, latent_dim=4, epochs=5,
                batch_size=32, val_fraction=0.2)
    return [Cell(**base, seed=s, lr=0.003) for s in range(n)]


def test_scored_epochs_are_every_kth_and_the_last():
    assert [e for e in range(1, 8) if scored_epoch(e, 7, 3)] == [3, 6, 7]
    assert [e for e in range(1, 4) if scored_epoch(e, 3, 1)] == [1, 2, 3]


@pytest.mark.parametrize("n", [1, 2])  # one cell (train_cell), a stack (train_stack)
def test_every_kth_epoch_is_scored_and_the_rest_is_unchanged(n, tmp_path):
    every = list(run_cells(cells(n), str(tmp_path), "cpu"))
    sparse = list(run_cells(cells(n), str(tmp_path), "cpu", score_every=2))
    assert [(c, r["kind"]) for c, r in every] == [(c, r["kind"]) for c, r in sparse]
    for (_, full), (_, part) in zip(every, sparse, strict=True):
        if part["kind"] == "epoch":
            scored = part["epoch"] in (2, 4, 5)
            assert all((k in part) == scored for k in TEST_KEYS), part
            shared = {k: v for k, v in full.items() if k in part and k != "wall_s"}
            assert shared == {k: part[k] for k in shared}  # train and validation figures
            assert "val_auroc" in part  # validation stays every epoch (ASHA reads it)
        else:
            np.testing.assert_array_equal(full["scores"], part["scores"])
            for key in ("auroc", "aupr_in", "aupr_out", "val_auroc", "final_train_loss"):
                assert full[key] == part[key], key


def test_the_study_file_sets_score_every_and_refuses_less_than_one():
    from study.errors import SpecError
    from study.spec import parse_spec

    assert parse_spec("study: s\n").run.score_every == 1
    assert parse_spec("study: s\nrun: {score_every: 5}\n").run.score_every == 5
    for bad, said in (("0", "run.score_every: 0 is not allowed"),
                      ("2.5", "run.score_every: expected a whole number")):
        with pytest.raises(SpecError, match=said):
            parse_spec(f"study: s\nrun: {{score_every: {bad}}}\n")
