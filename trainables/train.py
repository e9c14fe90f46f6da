"""The trial loop: one cell in, epoch records and a final record out. No Ray here.

Data stays in one tensor on the device for the whole trial; batches are index slices of a
seeded permutation, so no DataLoader, worker process or per-batch copy is involved.
Images reach the model preprocessed as its paper does (trainables.preprocess); train_mse,
test_mse_* and the recon_mse score are on that scale. Losses with trainer-owned state
(iaead: centre and radius, trainables.svdd) get it as their ``state`` argument and the
loop calls its after_step / after_epoch hooks.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from study.cell import Cell
from trainables.datasets import load_dataset
from trainables.losses import LOSSES, loss_keywords
from trainables.metrics import detection_metrics, test_figures
from trainables.models import MODELS
from trainables.optimizers import build_optimizer
from trainables.preprocess import VALUE_RANGE, preprocess
from trainables.protocols import PROTOCOLS, Task
from trainables.scores import SCORES
from trainables.svdd import LOSS_STATES, SvddState
from trainables.validation import val_figures

EVAL_BATCH = 1024  # images per forward pass at evaluation (memory, not results)


class Diverged(Exception):
    """The objective became NaN or infinite; the trial stops with status 'diverged'."""

    def __init__(self, epoch: int, value: float):
        super().__init__(f"non-finite train loss ({value}) at epoch {epoch}")
        self.epoch = epoch


@dataclasses.dataclass
class Trial:
    """Everything built from a cell before the first step."""

    model: nn.Module
    loss_fn: Callable[..., torch.Tensor]
    optimizer: torch.optim.Optimizer
    schedule: Any
    train_x: torch.Tensor
    test_x: torch.Tensor
    test_y: np.ndarray
    generator: torch.Generator
    state: SvddState | None = None  # trainer-owned loss state (iaead)
    batch_norm: bool = False  # the model normalises over the batch
    val_x: torch.Tensor | None = None  # the validation split (trainables.validation)
    val_anomalies: torch.Tensor | None = None


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def build_task(cell: Cell, data_root: str) -> Task:
    """The dataset, split by the cell's protocol, capped by max_train/max_test, and
    preprocessed for the cell's model (a set used for both training and test, as in the
    contaminated protocol, stays one array)."""
    if cell.protocol not in PROTOCOLS:
        raise KeyError(f"unknown protocol {cell.protocol!r}; choose from {sorted(PROTOCOLS)}")
    if cell.model not in MODELS:
        raise KeyError(f"unknown model {cell.model!r}; choose from {sorted(MODELS)}")
    images = load_dataset(cell.dataset, data_root, cell.params("dataset"))
    task = PROTOCOLS[cell.protocol](
        images,
        normal_class=cell.normal_class,
        seed=cell.seed,
        contamination=cell.contamination,
        max_train=cell.max_train,
        max_test=cell.max_test,
        val_fraction=cell.val_fraction,
    )
    train_x = preprocess(cell.model, task.train_x)
    test_x = train_x if task.test_x is task.train_x else preprocess(cell.model, task.test_x)
    held = {k: preprocess(cell.model, getattr(task, k))
            for k in ("val_x", "val_anomalies") if getattr(task, k) is not None}
    return dataclasses.replace(task, train_x=train_x, test_x=test_x, **held)


def build_trial(cell: Cell, task: Task, device: torch.device) -> Trial:
    torch.manual_seed(cell.seed)
    if cell.model not in MODELS:
        raise KeyError(f"unknown model {cell.model!r}; choose from {sorted(MODELS)}")
    if cell.loss not in LOSSES:
        raise KeyError(f"unknown loss {cell.loss!r}; choose from {sorted(LOSSES)}")
    image_shape = task.train_x.shape[1:]
    model = MODELS[cell.model](image_shape, cell.latent_dim, **cell.params("model")).to(device)
    optimizer, schedule = build_optimizer(
        cell.optimizer, model.parameters(), cell.lr, cell.params("optimizer")
    )
    generator = torch.Generator(device="cpu").manual_seed(cell.seed)
    loss_params = cell.params("loss")
    state = LOSS_STATES[cell.loss](**loss_params) if cell.loss in LOSS_STATES else None
    supplied = {"value_range": VALUE_RANGE[cell.model], "state": state}
    loss_params |= {k: supplied[k] for k in loss_keywords(cell.loss)}
    train_x = torch.tensor(task.train_x, device=device)
    return Trial(
        model=model,
        loss_fn=functools.partial(LOSSES[cell.loss], **loss_params),
        optimizer=optimizer,
        schedule=schedule,
        train_x=train_x,
        test_x=train_x if task.test_x is task.train_x else torch.tensor(task.test_x, device=device),
        test_y=task.test_y,
        generator=generator,
        state=state,
        batch_norm=any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()),
        **{k: torch.tensor(getattr(task, k), device=device)
           for k in ("val_x", "val_anomalies") if getattr(task, k) is not None},
    )


def train_epoch(trial: Trial, batch_size: int, epoch: int) -> dict[str, float]:
    """One pass over the training images in a seeded order.

    Returns the sample-weighted mean objective and MSE, and the mean gradient norm.
    Raises:
        Diverged: when the epoch's objective is not finite.
    """
    trial.model.train()
    n = len(trial.train_x)
    order = torch.randperm(n, generator=trial.generator).to(trial.train_x.device)
    if trial.batch_norm and n > 1 and n % batch_size == 1:
        n -= 1  # BatchNorm cannot normalise a last batch of one image: it sits this epoch out
    loss_sum = mse_sum = grad_sum = torch.zeros((), device=trial.train_x.device)
    steps = 0
    for start in range(0, n, batch_size):
        batch = trial.train_x[order[start : start + batch_size]]
        out = trial.model(batch)
        per_sample = trial.loss_fn(out, batch)
        loss = per_sample.mean()
        trial.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # The total 2-norm only (clip_grad_norm_ with an infinite max also rescales every
        # gradient by 1: a second pass over them each step).
        grads = [p.grad for p in trial.model.parameters() if p.grad is not None]
        grad_sum = grad_sum + nn.utils.get_total_norm(grads)
        trial.optimizer.step()
        if trial.state is not None:
            trial.state.after_step(out.z)
        with torch.no_grad():
            loss_sum = loss_sum + per_sample.sum()
            mse_sum = mse_sum + ((out.recon - batch) ** 2).flatten(1).mean(1).sum()
        steps += 1
    # Checked once per epoch: a per-step check would sync the GPU on every batch.
    if not torch.isfinite(loss_sum):
        raise Diverged(epoch, float(loss_sum))
    if trial.schedule is not None:
        trial.schedule.step()
    return {
        "train_loss": float(loss_sum) / n,
        "train_mse": float(mse_sum) / n,
        "grad_norm": float(grad_sum) / steps,
    }


@torch.no_grad()
def score_test(trial: Trial, score: str, images: torch.Tensor | None = None) -> np.ndarray:
    """Anomaly scores of every test image (or of ``images``), in evaluation mode."""
    if score not in SCORES:
        raise KeyError(f"unknown score {score!r}; choose from {sorted(SCORES)}")
    center = embed_train(trial).mean(dim=0) if score == "latent_center" else None
    trial.model.eval()
    images = trial.test_x if images is None else images
    parts = [SCORES[score](trial.model(batch), batch, center) for batch in images.split(EVAL_BATCH)]
    return torch.cat(parts).double().cpu().numpy()


@torch.no_grad()
def embed_train(trial: Trial) -> torch.Tensor:
    """Embeddings of every training image, in evaluation mode."""
    trial.model.eval()
    return torch.cat([trial.model.encode(b) for b in trial.train_x.split(EVAL_BATCH)])


@torch.no_grad()
def test_mse(trial: Trial, images: torch.Tensor | None = None) -> np.ndarray:
    """Per-image reconstruction MSE on the test set, or on ``images`` (the common
    yardstick)."""
    trial.model.eval()
    images = trial.test_x if images is None else images
    parts = [SCORES["recon_mse"](trial.model(b), b, None) for b in images.split(EVAL_BATCH)]
    return torch.cat(parts).double().cpu().numpy()


def validate(trial: Trial, score: str = "recon_mse") -> dict[str, float]:
    """The validation figures (trainables.validation) with ``score`` as the anomaly score;
    {} for a cell without a validation split."""
    if trial.val_x is None:
        return {}
    normal_mse = test_mse(trial, trial.val_x)
    normal = normal_mse if score == "recon_mse" else score_test(trial, score, trial.val_x)
    anomalies = None
    if trial.val_anomalies is not None:
        anomalies = score_test(trial, score, trial.val_anomalies)
    return val_figures(normal_mse, normal, anomalies)


def weights_bytes(model: nn.Module) -> bytes:
    """The model's state_dict as torch.save bytes, on the CPU (loadable anywhere)."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def train_cell(cell: Cell, data_root: str = "~/.cache/adstudy", device: str = "auto",
               save_weights: bool = False):
    """Trains one cell. Yields one record per epoch, then a final record.

    Epoch records: kind="epoch", epoch, train_loss, train_mse, test_auroc, test_mse_normal,
    test_mse_anomalous, grad_norm, wall_s (and val_recon_mse, val_auroc on the recon-MSE
    yardstick, for a cell with a validation split). The final record: kind="final", status
    ("complete" or "diverged"), error, metrics, final losses, timing, device and the
    per-sample test scores and labels; with ``save_weights``, a complete trial's final
    record also carries ``weights`` (weights_bytes of the trained model).

    Raises:
        Exception: anything that goes wrong other than divergence (run_cell turns it
            into a 'failed' record).
    """
    started = time.perf_counter()
    dev = pick_device(device)
    task = build_task(cell, data_root)
    trial = build_trial(cell, task, dev)
    train_seconds, last, epochs_run, error, status = 0.0, {}, 0, "", "complete"
    end_of_epoch(trial, 0)  # a warm-up of 0 epochs sets the SVDD centre before training
    for epoch in range(1, cell.epochs + 1):
        tick = time.perf_counter()
        try:
            last = train_epoch(trial, cell.batch_size, epoch)
        except Diverged as err:
            status, error = "diverged", str(err)
            break
        end_of_epoch(trial, epoch)
        train_seconds += time.perf_counter() - tick
        epochs_run = epoch
        figures = evaluate(trial)
        yield {"kind": "epoch", "epoch": epoch, **last, **figures,
               "wall_s": time.perf_counter() - started}
    scores = score_test(trial, cell.score) if status == "complete" else np.zeros(0)
    metrics = detection_metrics(trial.test_y, scores) if status == "complete" else {}
    yield {
        "kind": "final",
        "status": status,
        "error": error,
        "auroc": metrics.get("auroc"),
        "aupr_in": metrics.get("aupr_in"),
        "aupr_out": metrics.get("aupr_out"),
        "final_train_loss": last.get("train_loss"),
        "final_train_mse": last.get("train_mse"),
        "epochs_run": epochs_run,
        "wall_s": time.perf_counter() - started,
        "train_samples_per_s": epochs_run * len(trial.train_x) / max(train_seconds, 1e-9),
        "device": str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev),
        "scores": scores,
        "labels": trial.test_y if status == "complete" else np.zeros(0, np.int64),
        # The trained model's validation figures, with the cell's own score.
        **(validate(trial, cell.score) if status == "complete" else {}),
        **({"weights": weights_bytes(trial.model)} if save_weights and status == "complete"
           else {}),
    }


def end_of_epoch(trial: Trial, epoch: int) -> None:
    """The loss state's end-of-epoch hook (IAEAD: the centre after warm-up)."""
    if trial.state is not None:
        trial.state.after_epoch(epoch, lambda: embed_train(trial))


def evaluate(trial: Trial) -> dict[str, float]:
    """Per-epoch test (and validation) figures on the recon-MSE yardstick."""
    return test_figures(test_mse(trial), trial.test_y) | validate(trial)
