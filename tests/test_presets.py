"""The paper presets (configs/*.yaml): every one passes `adstudy describe` (or fails only
for want of a downloadable data set, saying which files and how to get them), states its
cell count, prints its expected cost; every smoke companion keeps its preset's scientific
axes, and its first cell trains to completion. Also: the cost model, save_weights in a
spec, and the MLP models' Keras initialisation."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MNIST5K

from study.cell import Cell
from study.cli import main
from study.cost import PACKING, PACKING_STACKED, RATES, data_size, estimate, rates, train_rate
from study.errors import SpecError
from study.grid import expand
from study.spec import load_spec, parse_spec
from trainables.models import MODELS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = ("lmse_mnist", "lmse_fashion_mnist", "lamp_batch_size", "lamp_mvtec",
           "iaead_contamination", "iaead_contamination_cifar100", "ae_vs_vae", "ae_vs_vae_a2",
           "ae_vs_vae_lines", "ae_vs_vae_lines_a2", "ae_vs_vae_mnist", "ae_vs_vae_mnist_a2")
# How describe may fail where a data set is absent: the missing files and how to get them.
DOWNLOAD_HINTS = ("download: true", "torchvision.datasets")
MVTEC_HINTS = ("mvtec_ad/", "mvtec.com", "by hand")
NPZ_HINTS = ("not found", "mnist5k.npz", "ADSTUDY_DATA")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_preset_passes_describe_with_its_cell_count_and_cost(
    path, tmp_path, capsys, monkeypatch
):
    if MNIST5K.exists():  # the smoke presets read it from the data root
        monkeypatch.setenv("ADSTUDY_DATA", str(MNIST5K.parent))
    spec = load_spec(path)
    cells = expand(spec)
    # describe works without the data (a cluster's workers may hold it): exit 0, the cost
    # from the datasets' known sizes, and what is missing here with how to get it
    assert main(["describe", str(path), "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    if spec.search == "grid":  # a tuned study states its trials instead
        assert f"{len(cells)} distinct cells" in out
    assert "estimated cost (an estimate" in out and "start-up" in out
    assert "one GPU (H100)" in out and "2 CPU cores" in out and "not counted" not in out
    assert "checks: every field" in out
    if "data missing or unusable on this machine" in out:
        missing = out.split("data missing or unusable on this machine")[1]
        if "dataset npz" in missing:
            assert not MNIST5K.exists() and all(h in missing for h in NPZ_HINTS), missing
            return
        hints = MVTEC_HINTS if "mvtec" in missing else DOWNLOAD_HINTS
        assert "missing" in missing and all(h in missing for h in hints), missing
        assert any(c.dataset in missing for c in cells)


def test_describe_counts_a_smoke_preset_without_its_data_at_the_files_known_size(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("ADSTUDY_DATA", str(tmp_path / "no-data-here"))
    assert main(["describe", str(CONFIGS / "lmse_mnist_smoke.yaml"), "--results",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # 80 cells x 10 epochs x 400 training images (one digit of mnist5k.npz's 4,000)
    assert "320,000 training samples in the 80 cells to run" in out
    missing = out.split("data missing or unusable on this machine")[1]
    assert "path 'mnist5k.npz' not found" in missing


@pytest.mark.parametrize("name", PRESETS + tuple(f"{p}_smoke" for p in PRESETS))
def test_each_preset_states_its_cell_count(name):
    text = (CONFIGS / f"{name}.yaml").read_text()
    stated = re.search(r"= ([\d,]+) cells", text)
    assert stated, f"{name}.yaml does not state its cell count ('... = N cells')"
    assert int(stated.group(1).replace(",", "")) == len(expand(parse_spec(text)))


@pytest.fixture(scope="module")
def mnist5k_shaped(tmp_path_factory) -> Path:
    """A data root holding an mnist5k.npz of the real one's shape (5,000 28x28 images, 500
    a digit), which is all the cost estimate reads: the test does not need shared/."""
    root = tmp_path_factory.mktemp("data")
    np.savez(root / "mnist5k.npz", x=np.zeros((5000, 28, 28), np.uint8),
             y=np.repeat(np.arange(10), 500))
    return root


@pytest.mark.parametrize("name", PRESETS)
def test_smoke_companion_keeps_the_scientific_axes(name, mnist5k_shaped, monkeypatch):
    monkeypatch.setenv("ADSTUDY_DATA", str(mnist5k_shaped))
    full = load_spec(CONFIGS / f"{name}.yaml")
    smoke = load_spec(CONFIGS / f"{name}_smoke.yaml")
    assert [(n, len(v)) for n, v in smoke.compare] == [(n, len(v)) for n, v in full.compare]
    assert smoke.study == f"{full.study}_smoke"
    assert smoke.resources.gpu == 0  # runs on a laptop, in minutes
    smoke_s = estimate(expand(smoke), smoke.run.data_root).seconds["cpu"]
    assert smoke_s < 20 * 60
    assert smoke_s < estimate(expand(full), full.run.data_root).seconds["cpu"]


def first_cell_runs(name: str) -> dict:
    """The smoke preset's first cell, at most 2 epochs, trained for real (no Ray)."""
    from trainables.run import run_cell

    spec = load_spec(CONFIGS / f"{name}_smoke.yaml")
    cell = expand(spec)[0]
    cell = dataclasses.replace(cell, epochs=min(cell.epochs, 2))
    records = list(run_cell(cell, spec.run.data_root, "cpu", save_weights=True))
    return records[-1]


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_first_cell_of_every_smoke_preset_trains(name, mnist5k):
    final = first_cell_runs(name)
    assert final["status"] == "complete", final.get("error")
    assert 0.0 <= final["auroc"] <= 1.0
    assert torch.load(__import__("io").BytesIO(final["weights"]), weights_only=True)


def test_cost_follows_the_measured_rates_and_the_data_size():
    spec = load_spec(CONFIGS / "lmse_mnist.yaml")
    cells = expand(spec)
    cost = estimate(cells, spec.run.data_root)
    assert cost.cells == 720
    assert cost.train_samples == 720 * 30 * 6000  # one MNIST digit: 6,000 training images
    assert cost.seconds["gpu"] < cost.seconds["cpu"]  # the CAE at batch 128
    longer = [dataclasses.replace(c, epochs=60) for c in cells]
    assert estimate(longer).seconds["cpu"] > 1.9 * cost.seconds["cpu"]
    table = RATES["gpu"][("cae", 1, 28, 28)]["train"]
    assert train_rate(table, 128) == table[128]
    assert table[128] < train_rate(table, 200) < table[256]
    assert train_rate(table, 4096) == table[1024]


def test_cost_of_the_protocols():
    mnist = Cell(study="s", dataset="mnist", max_train=500, max_test=300)
    assert data_size(mnist, "")[:2] == (500, 300)
    pooled = Cell(study="s", dataset="mnist", protocol="contaminated", contamination=0.2,
                  model="iaead_cae")
    n_train, n_test, shape = data_size(pooled, "")
    assert n_train == n_test == int(7000 / 0.8) and shape == (1, 32, 32)
    toy = Cell(study="s", dataset="lines2x2", model="mlp_ae", batch_size=4, epochs=2000)
    assert 1 < estimate([toy]).seconds["cpu"] < 30


def test_cost_counts_vmapped_stacks_and_trials_sharing_a_gpu():
    seeds = [Cell(study="s", dataset="digits", batch_size=bs, seed=k, epochs=5)
             for bs in (4, 512) for k in range(8)]  # two stack families of 8 seeds
    alone = estimate(seeds)
    stacked = estimate(seeds, cells_per_trial=8)
    assert (alone.stacked, stacked.stacked) == (0, 16)
    # batch 4: 8 cells stacked run like batch 32, far faster per cell on both devices
    # (one trial at a time on the CPU, cpus_per_trial=2, to compare like with like)
    small = estimate(seeds[:8], cells_per_trial=8, cpus_per_trial=2).seconds
    assert small["cpu"] < estimate(seeds[:8], cpus_per_trial=2).seconds["cpu"] / 3
    assert small["gpu"] < estimate(seeds[:8]).seconds["gpu"]
    # batch 512 is past the measured sizes: a stack is never counted slower than alone
    big = estimate(seeds[8:], cells_per_trial=8, cpus_per_trial=2).seconds
    assert big["cpu"] <= estimate(seeds[8:], cpus_per_trial=2).seconds["cpu"]
    loose = [Cell(study="s", dataset="digits", model="mlp_vae", seed=k) for k in range(8)]
    assert estimate(loose, cells_per_trial=8).stacked == 0  # VAEs sample: never stacked
    shared = estimate(seeds, gpu_share=0.25)  # four trials at a time on the one GPU
    assert shared.seconds["gpu"] == pytest.approx(alone.seconds["gpu"] / PACKING[4])
    assert shared.seconds["cpu"] == alone.seconds["cpu"] and shared.trials_per_gpu == 4
    assert "4 trials at a time" in shared.lines()[1]
    # trials of stacked cells gain less from sharing the GPU (measured: a stack already
    # keeps it busier); 2 trials a GPU were not measured for stacks: no gain counted
    stacks = [Cell(study="s", dataset="digits", batch_size=4, seed=k, epochs=5)
              for k in range(64)]  # 8 stacks of 8
    one_by_one = estimate(stacks, cells_per_trial=8).seconds["gpu"]
    for share, trials in ((0.125, 8), (0.25, 4)):
        shared_stacks = estimate(stacks, cells_per_trial=8, gpu_share=share)
        assert shared_stacks.seconds["gpu"] == pytest.approx(
            one_by_one / PACKING_STACKED[trials])
        assert PACKING_STACKED[trials] < PACKING[trials]
    assert estimate(stacks, cells_per_trial=8, gpu_share=0.5).seconds["gpu"] == one_by_one
    # never more trials at once than the study has: one pack runs alone
    lone = estimate(stacks[:8], cells_per_trial=8, gpu_share=0.125)
    assert lone.trials_per_gpu == 1
    assert lone.seconds["gpu"] == estimate(stacks[:8], cells_per_trial=8).seconds["gpu"]


def test_cost_on_two_cores_curve_subsamples_and_large_images_on_a_cpu():
    digits = [Cell(study="s", dataset="digits", seed=k, epochs=5) for k in range(8)]
    side_by_side, alone = estimate(digits), estimate(digits, cpus_per_trial=2)
    assert (side_by_side.trials_per_cpu, alone.trials_per_cpu) == (2, 1)
    assert side_by_side.seconds["cpu"] == pytest.approx(alone.seconds["cpu"] / 2)
    assert side_by_side.seconds["gpu"] == alone.seconds["gpu"]
    assert "2 trials at a time" in side_by_side.lines()[2]
    assert estimate(digits[:1]).trials_per_cpu == 1  # one trial: nothing beside it
    # curves on 200 of digits' 599 test images every epoch, and every image once at the end
    full, curves = estimate(digits), estimate(digits, curve_images=200)
    _, evaluate, _ = rates("cpu", "cae", (1, 8, 8))
    expected = 8 * (5 * (599 - 200) - 599) / evaluate / 2
    assert full.seconds["cpu"] - curves.seconds["cpu"] == pytest.approx(expected)
    # MNIST-size images stack on a GPU but not on a CPU (CPU_STACK_MAX_PIXELS)
    mnist = [dataclasses.replace(c, dataset="mnist") for c in digits]
    packed = estimate(mnist, cells_per_trial=8)
    assert (packed.stacked, packed.stacked_on_cpu) == (8, 0)
    assert estimate(digits, cells_per_trial=8).stacked_on_cpu == 8
    assert "vmapped" in packed.lines()[1] and "vmapped" not in packed.lines()[2]


def test_save_weights_is_a_run_option_and_must_be_a_boolean():
    assert parse_spec("study: a\nrun: {save_weights: true}").run.save_weights is True
    assert parse_spec("study: a").run.save_weights is False
    with pytest.raises(SpecError, match="run.save_weights: expected true or false, got 'yes'"):
        parse_spec("study: a\nrun: {save_weights: 'yes'}")


def test_mlp_glorot_init_is_keras_default():
    torch.manual_seed(0)
    model = MODELS["mlp_vae"]((1, 2, 2), 1, hidden=[2], init="glorot")
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(layers) == 5  # 4 -> 2, 2 -> 1 (mean), 1 -> 2, 2 -> 4, 2 -> 1 (log-variance)
    for layer in layers:
        fan_out, fan_in = layer.weight.shape
        assert torch.all(layer.bias == 0)
        assert layer.weight.abs().max() <= (6 / (fan_in + fan_out)) ** 0.5
    default = MODELS["mlp_ae"]((1, 2, 2), 1, hidden=[2])
    assert any(torch.any(m.bias != 0) for m in default.modules() if isinstance(m, torch.nn.Linear))
    with pytest.raises(ValueError, match=r"mlp init 'he' is not allowed; choose from \['torch'"):
        MODELS["mlp_ae"]((1, 2, 2), 1, init="he")


def test_presets_hold_the_papers_options():
    """LAMP: the number of patches is among the tuned axes; AE-vs-VAE's MNIST appendix:
    binarised MNIST beside the gray one, and the Keras KL weight derived from the shapes
    (not a hand-computed beta: 1/784 was 8x too small for 8 latent units)."""
    for name in ("lamp_batch_size", "lamp_mvtec", "lamp_mvtec_smoke"):
        spec = load_spec(CONFIGS / f"{name}.yaml")
        models = dict(spec.vary)["model"]
        assert ("lamp_ae", "{}") in models and ("lamp_ae", '{"patches":2}') in models, name
    patches = load_spec(CONFIGS / "lamp_batch_size_patches_smoke.yaml")
    assert dict(patches.fixed)["model"] == ("lamp_ae", '{"patches":2}')
    assert patches.compare == load_spec(CONFIGS / "lamp_batch_size_smoke.yaml").compare
    for name in ("ae_vs_vae_mnist", "ae_vs_vae_mnist_a2"):
        for path in (CONFIGS / f"{name}.yaml", CONFIGS / f"{name}_smoke.yaml"):
            spec = load_spec(path)
            datasets = [json.loads(params) for _, params in dict(spec.compare)["dataset"]]
            assert [d.get("binarize", 0) for d in datasets] == [0, 0.5], path.name
            if name.endswith("a2"):
                assert dict(spec.compare)["loss"] == (("vae", "{}"), ("vae", '{"kl":"keras"}'))
