"""trainables.accelerate: the accelerated stacked epoch equals the plain one (bf16 close to
it), and the on-device AUROC equals trainables.metrics.auroc, ties included."""

import numpy as np
import pytest
import torch

from study.cell import Cell
from trainables.accelerate import StackStepper, device_auroc, device_errors
from trainables.metrics import auroc
from trainables.train_stack import Stack, stacked_errors, train_stack_epoch

SHAPE = (1, 8, 8)


def make_stack(device: str = "cpu") -> Stack:
    cells = [Cell(study="s", dataset="digits", latent_dim=4, batch_size=16, seed=s, lr=lr)
             for s in (0, 1) for lr in (0.001, 0.01)]
    return Stack(cells, SHAPE, torch.device(device))


def run_epochs(stepper_or_none, stack, x, epochs=2):
    generator = torch.Generator().manual_seed(0)
    out = []
    for _ in range(epochs):
        orders = torch.stack([torch.randperm(len(x), generator=generator) for _ in range(4)])
        orders = orders.to(x.device)
        if stepper_or_none is None:
            sums = train_stack_epoch(stack, x, [0, 1, 2, 3], orders, 16)
        else:
            sums = stepper_or_none.epoch([0, 1, 2, 3], orders)
        out.append({k: v.cpu().numpy() for k, v in sums.items()})
    return out


def images(n=72, device="cpu"):
    # 72 = 4 full batches of 16 and a last batch of 8 (the eager remainder)
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(1)).to(device)


@pytest.mark.slow
def test_the_stepper_equals_the_plain_stacked_epoch_and_asks_no_graph_on_a_cpu():
    x = images()
    plain, mine = make_stack(), make_stack()
    stepper = StackStepper(mine, x, 16, graphs=True)
    assert not stepper.graphs  # CUDA graphs need a CUDA device: eager on the CPU
    for a, b in zip(run_epochs(None, plain, x), run_epochs(stepper, mine, x), strict=True):
        for key in ("train_loss", "train_mse", "grad_norm"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-6, err_msg=key)
    errors = device_errors(mine, [0, 1, 2, 3], x).numpy()
    np.testing.assert_allclose(errors, stacked_errors(plain, [0, 1, 2, 3], x), rtol=1e-5)


@pytest.mark.slow
def test_the_stepper_honours_the_padding_mask_of_a_mixed_class_stack():
    """Cells of different classes in one stack (trainables.stack_data): a shorter class's
    last batch is padded with copies that count for nothing."""
    x = images()
    generator = torch.Generator().manual_seed(0)
    orders = torch.stack([torch.randperm(len(x), generator=generator) for _ in range(4)])
    mask = torch.ones(4, len(x))
    # two cells' classes are shorter: their last batch (8 positions) ends in padding, as
    # stack_data pads (classes with fewer batches stack apart: a last batch keeps a real image)
    mask[1, -5:] = 0
    mask[3, -7:] = 0
    orders[1, -5:] = orders[1, 0]
    orders[3, -7:] = orders[3, 0]
    plain, mine = make_stack(), make_stack()
    stepper = StackStepper(mine, x, 16)
    for _ in range(2):
        a = train_stack_epoch(plain, x, [0, 1, 2, 3], orders, 16, mask)
        b = stepper.epoch([0, 1, 2, 3], orders, mask)
        for key in ("train_loss", "train_mse", "grad_norm"):
            np.testing.assert_allclose(b[key].numpy(), a[key].numpy(), rtol=1e-6, err_msg=key)
    unmasked = make_stack()
    c = StackStepper(unmasked, x, 16).epoch([0, 1, 2, 3], orders)
    assert not np.allclose(c["train_loss"].numpy(), a["train_loss"].numpy())  # mask matters
    for p, q in zip(plain.params().values(), mine.params().values(), strict=True):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_bf16_autocast_changes_the_arithmetic_but_stays_close():
    x = images()
    plain, mine = make_stack(), make_stack()
    fp32 = run_epochs(None, plain, x, epochs=1)[0]
    bf16 = run_epochs(StackStepper(mine, x, 16, bf16=True), mine, x, epochs=1)[0]
    assert not np.array_equal(bf16["train_loss"], fp32["train_loss"])  # autocast took effect
    np.testing.assert_allclose(bf16["train_loss"], fp32["train_loss"], rtol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_graph_replay_equals_eager_steps_on_a_gpu():
    x = images(200, "cuda")
    eager, graphed = make_stack("cuda"), make_stack("cuda")
    stepper = StackStepper(graphed, x, 16, graphs=True)
    assert stepper.graphs
    for a, b in zip(run_epochs(None, eager, x, 3), run_epochs(stepper, graphed, x, 3),
                    strict=True):
        for key in ("train_loss", "train_mse", "grad_norm"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-4, err_msg=key)
    assert stepper.graph is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_graph_replay_of_a_masked_stack_equals_eager_steps_on_a_gpu():
    x = images(200, "cuda")
    generator = torch.Generator().manual_seed(0)
    mask = torch.ones(4, 200)
    mask[2, -3:] = 0  # a shorter class: its last batch (8 positions) ends in padding
    eager, graphed = make_stack("cuda"), make_stack("cuda")
    stepper = StackStepper(graphed, x, 16, graphs=True)
    for _ in range(3):
        orders = torch.stack([torch.randperm(200, generator=generator) for _ in range(4)])
        orders = orders.cuda()
        a = train_stack_epoch(eager, x, [0, 1, 2, 3], orders, 16, mask)
        b = stepper.epoch([0, 1, 2, 3], orders, mask)
        for key in ("train_loss", "train_mse", "grad_norm"):
            np.testing.assert_allclose(b[key].cpu().numpy(), a[key].cpu().numpy(), rtol=1e-4,
                                       err_msg=key)
    assert stepper.graph is not None


def test_device_auroc_equals_the_rank_auroc_with_ties_and_nan_rows():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = rng.integers(0, 20, (5, 300)).astype(np.float64)  # many ties
    scores[1] += labels * 3  # one row that separates well
    got = device_auroc(torch.tensor(scores), torch.tensor(labels)).numpy()
    want = [auroc(labels, row) for row in scores]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    scores[2, 7] = np.nan
    assert np.isnan(device_auroc(torch.tensor(scores), torch.tensor(labels))[2])
    with pytest.raises(ValueError, match="both normals and anomalies"):
        device_auroc(torch.tensor(scores), torch.zeros(300))
