"""The trial loop: one cell in, epoch records and a final record out. No Ray here.

Data stays in one tensor on the device for the whole trial; batches are index slices of a
seeded permutation, so no DataLoader, worker process or per-batch copy is involved.
Images reach the model preprocessed as its paper does (trainables.preprocess); train_mse,
test_mse_* and the recon_mse score are on that scale. Losses with trainer-owned state
(iaead: centre and radius, trainables.svdd) get it as their ``state`` argument and the
loop calls its after_step / after_epoch hooks.
"""

from __future__ import annotations

import io
import time

import numpy as np
import torch
from torch import nn

from trainables.assemble import Training, build_task, build_training
from trainables.cell import Cell
from trainables.curves import curve_subset, on_curve
from trainables.metrics import METRICS, detection_metrics, test_figures
from trainables.scores import SCORES
from trainables.validation import val_figures

EVAL_BATCH = 256  # images per forward pass at evaluation (memory and speed, not results:
# 1024 was 10-25% slower on 2 CPU cores, same scores bit for bit; bench/RESULTS.md)


class Diverged(Exception):
    """The objective became NaN or infinite; the trial stops with status 'diverged'."""

    def __init__(self, epoch: int, value: float):
        super().__init__(f"non-finite train loss ({value}) at epoch {epoch}")
        self.epoch = epoch


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def device_name(dev: torch.device) -> str:
    """The device as a trial row records it: 'cpu', or the GPU's model name."""
    return str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev)


def train_epoch(training: Training, batch_size: int, epoch: int) -> dict[str, float]:
    """One pass over the training images in a seeded order.

    Returns the sample-weighted mean objective and MSE, and the mean gradient norm.
    Raises:
        Diverged: when the epoch's objective is not finite.
    """
    training.model.train()
    n = len(training.train_x)
    order = torch.randperm(n, generator=training.generator).to(training.train_x.device)
    if training.batch_norm and n > 1 and n % batch_size == 1:
        n -= 1  # BatchNorm cannot normalise a last batch of one image: it sits this epoch out
    loss_sum = mse_sum = grad_sum = torch.zeros((), device=training.train_x.device)
    steps = 0
    for start in range(0, n, batch_size):
        batch = training.train_x[order[start : start + batch_size]]
        out = training.model(batch)
        per_sample = training.loss_fn(out, batch)
        loss = per_sample.mean()
        training.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # The total 2-norm only (clip_grad_norm_ with an infinite max also rescales every
        # gradient by 1: a second pass over them each step).
        grads = [p.grad for p in training.model.parameters() if p.grad is not None]
        grad_sum = grad_sum + nn.utils.get_total_norm(grads)
        training.optimizer.step()
        if training.state is not None:
            training.state.after_step(out.z)
        with torch.no_grad():
            loss_sum = loss_sum + per_sample.sum()
            mse_sum = mse_sum + ((out.recon - batch) ** 2).flatten(1).mean(1).sum()
        steps += 1
    # Checked once per epoch: a per-step check would sync the GPU on every batch.
    if not torch.isfinite(loss_sum):
        raise Diverged(epoch, float(loss_sum))
    if training.schedule is not None:
        training.schedule.step()
    return {
        "train_loss": float(loss_sum) / n,
        "train_mse": float(mse_sum) / n,
        "grad_norm": float(grad_sum) / steps,
    }


@torch.no_grad()
def score_test(training: Training, score: str, images: torch.Tensor | None = None) -> np.ndarray:
    """Anomaly scores of every test image (or of ``images``), in evaluation mode."""
    if score not in SCORES:
        raise KeyError(f"unknown score {score!r}; choose from {sorted(SCORES)}")
    center = embed_train(training).mean(dim=0) if score == "latent_center" else None
    training.model.eval()
    images = training.test_x if images is None else images
    parts = [SCORES[score](training.model(batch), batch, center)
             for batch in images.split(EVAL_BATCH)]
    return torch.cat(parts).double().cpu().numpy()


@torch.no_grad()
def embed_train(training: Training) -> torch.Tensor:
    """Embeddings of every training image, in evaluation mode."""
    training.model.eval()
    return torch.cat([training.model.encode(b) for b in training.train_x.split(EVAL_BATCH)])


@torch.no_grad()
def test_mse(training: Training, images: torch.Tensor | None = None) -> np.ndarray:
    """Per-image reconstruction MSE on the test set, or on ``images`` (the common
    yardstick)."""
    training.model.eval()
    images = training.test_x if images is None else images
    parts = [SCORES["recon_mse"](training.model(b), b, None) for b in images.split(EVAL_BATCH)]
    return torch.cat(parts).double().cpu().numpy()


def val_scores(training: Training, score: str = "recon_mse") -> dict[str, float]:
    """The validation figures (trainables.validation) with ``score`` as the anomaly score;
    {} for a cell without a validation split."""
    if training.val_x is None:
        return {}
    normal_mse = test_mse(training, training.val_x)
    normal = normal_mse if score == "recon_mse" else score_test(training, score, training.val_x)
    anomalies = None
    if training.val_anomalies is not None:
        anomalies = score_test(training, score, training.val_anomalies)
    return val_figures(normal_mse, normal, anomalies)


def weights_bytes(model: nn.Module) -> bytes:
    """The model's state_dict as torch.save bytes, on the CPU (loadable anywhere)."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def train_cell(cell: Cell, data_root: str = "~/.cache/adstudy", device: str = "auto",
               save_weights: bool = False, score_every: int = 1, curve_images: int = 0):
    """Trains one cell. Yields one record per epoch, then a final record.

    Epoch records: kind="epoch", epoch, train_loss, train_mse, test_auroc, test_mse_normal,
    test_mse_anomalous, grad_norm, wall_s (and val_recon_mse, val_auroc on the recon-MSE
    yardstick, for a cell with a validation split). With ``score_every`` k > 1 the test_*
    figures (half the work of a small cell) come every k-th epoch and the last one only,
    absent (NULL) in the others; with ``curve_images`` N > 0 they are computed on a fixed
    subsample of N test images (trainables.curves). The final record is the same either way.
    The final record: kind="final", status ("complete" or "diverged"), error, metrics,
    final losses, timing, device and the per-sample test scores and labels; with
    ``save_weights``, a complete trial's final record also carries ``weights``
    (weights_bytes of the trained model).

    Raises:
        Exception: anything that goes wrong other than divergence (run_cell turns it
            into a 'failed' record).
    """
    started = time.perf_counter()
    dev = pick_device(device)
    task = build_task(cell, data_root)
    training = build_training(cell, task, dev)
    picked = curve_subset(len(task.test_y), curve_images)  # chosen once, used every epoch
    curve = (on_curve(training.test_x, picked), on_curve(training.test_y, picked))
    train_seconds, last, epochs_run, error, status = 0.0, {}, 0, "", "complete"
    end_of_epoch(training, 0)  # a warm-up of 0 epochs sets the SVDD centre before training
    for epoch in range(1, cell.epochs + 1):
        tick = time.perf_counter()
        try:
            last = train_epoch(training, cell.batch_size, epoch)
        except Diverged as err:
            status, error = "diverged", str(err)
            break
        end_of_epoch(training, epoch)
        train_seconds += time.perf_counter() - tick
        epochs_run = epoch
        figures = evaluate(training, scored_epoch(epoch, cell.epochs, score_every), curve)
        yield {"kind": "epoch", "epoch": epoch, **last, **figures,
               "wall_s": time.perf_counter() - started}
    record = final_record(status, error, last, epochs_run)
    if status == "complete":
        scores = score_test(training, cell.score)
        record |= detection_metrics(training.test_y, scores)
        record |= {"scores": scores, "labels": training.test_y}
        # The trained model's validation figures, with the cell's own score.
        record |= val_scores(training, cell.score)
        if save_weights:
            record["weights"] = weights_bytes(training.model)
    yield record | {
        "wall_s": time.perf_counter() - started,
        "train_samples_per_s": epochs_run * len(training.train_x) / max(train_seconds, 1e-9),
        "device": device_name(dev),
    }


def final_record(status: str, error: str, last: dict, epochs_run: int) -> dict:
    """A cell's final record without its test figures: metrics None, no scores (a
    diverged cell keeps it so; a complete one adds them)."""
    return {
        "kind": "final",
        "status": status,
        "error": error,
        **dict.fromkeys(METRICS),
        "final_train_loss": last.get("train_loss"),
        "final_train_mse": last.get("train_mse"),
        "epochs_run": epochs_run,
        "scores": np.zeros(0),
        "labels": np.zeros(0, np.int64),
    }


def end_of_epoch(training: Training, epoch: int) -> None:
    """The loss state's end-of-epoch hook (IAEAD: the centre after warm-up)."""
    if training.state is not None:
        training.state.after_epoch(epoch, lambda: embed_train(training))


def evaluate(training: Training, scored: bool = True,
             curve: tuple[torch.Tensor, np.ndarray] | None = None) -> dict[str, float]:
    """Per-epoch test (unless not ``scored``; on ``curve``'s test images and labels when
    given: trainables.curves, else on every test image) and validation figures on the
    recon-MSE yardstick."""
    images, labels = curve or (training.test_x, training.test_y)
    figures = test_figures(test_mse(training, images), labels) if scored else {}
    return figures | val_scores(training)


def scored_epoch(epoch: int, epochs: int, every: int) -> bool:
    """Whether an epoch's record carries test figures: every ``every``-th epoch and the
    last (so a curve always ends at the final model)."""
    return every <= 1 or epoch % every == 0 or epoch == epochs
