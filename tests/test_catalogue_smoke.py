"""Issue 3's "done when": `adstudy describe` accepts a study naming every catalogue item,
and a tiny study with a cell of every loss and every model completes on CPU."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from catalogue_files import write_mvtec, write_torchvision_root

from study.checks import check_cells
from study.cli import main
from study.grid import expand
from study.spec import load_spec, parse_spec
from trainables.datasets import DATASETS
from trainables.losses import BASE_MAPS, LOSSES
from trainables.models import MODELS
from trainables.optimizers import OPTIMIZERS
from trainables.protocols import PROTOCOLS
from trainables.run import run_cell
from trainables.scores import SCORES

SMOKE = ("configs/catalogue_smoke.yaml", "configs/catalogue_smoke_vae.yaml")


@pytest.mark.slow
def test_the_smoke_studies_run_every_loss_and_model_to_completion(tmp_path):
    cells = [cell for path in SMOKE for cell in expand(load_spec(path))]
    check_cells(cells, str(tmp_path))
    assert {c.loss for c in cells} == set(LOSSES) and {c.model for c in cells} == set(MODELS)
    bases = {json.loads(c.loss_params).get("base", "l2") for c in cells if c.loss == "lamp"}
    assert bases == set(BASE_MAPS)
    failures = []
    for cell in cells:
        *epochs, final = list(run_cell(cell, data_root=str(tmp_path), device="cpu"))
        if final["status"] != "complete" or len(epochs) != cell.epochs:
            failures.append((cell.label("loss"), cell.model, final["status"], final["error"]))
        assert final["device"] == "cpu"
    assert failures == []


CATALOGUE = """
study: catalogue_all
compare:
  loss: [mse, mae, l1, msle, ssim, lmse, lamp, {{name: lamp, base: l1}},
         {{name: lamp, base: ssim, window: 7, max_over: sample, detach: false, eps: 0.01}},
         {{name: iaead, lam: 5e-5, nu: 1.0, warmup: 20}}]
  model: [cae, {{name: lamp_ae, kernel_size: 5}}, {{name: iaead_cae, width: 64}},
          {{name: mlp_ae, hidden: [64, 8, 64]}}, mlp_vae]
vary:
  dataset: [digits, lines, lines2x2, {{name: npz, path: arrays.npz}},
            {{name: mnist, download: false, verify: false}},
            {{name: fashion_mnist, verify: false}}, {{name: svhn, verify: false}},
            {{name: cifar10, verify: false}}, {{name: cifar100, verify: false}},
            {{name: mvtec, path: mvtec/bottle, size: 64}}]
  protocol: [one_class, contaminated]
  contamination: [0.05, 0.1, 0.15, 0.2, 0.25]
  optimizer: [{{name: sgd, momentum: 0.9, step_every: 50, gamma: 0.5}}, rmsprop, adam]
  score: [recon_mse, latent_center]
fixed:
  normal_class: 0
  max_train: 100
  max_test: 100
run:
  data_root: {root}
"""


@pytest.fixture(scope="module")
def catalogue_root(tmp_path_factory):
    root = write_torchvision_root(tmp_path_factory.mktemp("data"))
    write_mvtec(root / "mvtec" / "bottle")
    np.savez(root / "arrays.npz", x=np.zeros((30, 8, 8), np.uint8), y=np.arange(30) % 3)
    return root


@pytest.mark.slow
def test_describe_accepts_a_study_naming_every_item(catalogue_root, tmp_path, capsys):
    # `vae` needs a variational model, so it cannot cross every model: it gets its own
    # study (every model that can take it), and crossing it with cae is refused up front.
    config = tmp_path / "all.yaml"
    config.write_text(CATALOGUE.format(root=catalogue_root))
    vae_config = tmp_path / "vae.yaml"
    vae_config.write_text(
        CATALOGUE.format(root=catalogue_root)
        .replace("study: catalogue_all", "study: catalogue_vae")
        .split("compare:")[0]
        + "compare:\n  loss: [{name: vae, beta: 1.0}]\n  model: [mlp_vae]\n"
        + "vary:" + CATALOGUE.format(root=catalogue_root).split("vary:")[1]
    )
    cells = expand(load_spec(config)) + expand(load_spec(vae_config))
    for field, registry in (("loss", LOSSES), ("model", MODELS), ("dataset", DATASETS),
                            ("protocol", PROTOCOLS), ("optimizer", OPTIMIZERS),
                            ("score", SCORES)):
        assert {getattr(c, field) for c in cells} == set(registry), field
    results = str(tmp_path / "results")
    assert main(["describe", str(config), "--results", results]) == 0
    out = capsys.readouterr().out
    assert f"{10 * 5 * 10 * 2 * 5 * 3 * 2} distinct cells" in out and "nothing missing" in out
    assert main(["describe", str(vae_config), "--results", results]) == 0
    assert f"{10 * 2 * 5 * 3 * 2} distinct cells" in capsys.readouterr().out
    vae_config.write_text(vae_config.read_text().replace("model: [mlp_vae]", "model: [cae]"))
    assert main(["describe", str(vae_config), "--results", results]) == 2
    assert "variational" in capsys.readouterr().err


def test_describe_lists_missing_dataset_files_and_submit_refuses_them(tmp_path, capsys):
    config = tmp_path / "all.yaml"
    config.write_text(CATALOGUE.format(root=tmp_path / "empty"))
    results = tmp_path / "results"
    assert main(["describe", str(config), "--results", str(results)]) == 0  # data elsewhere
    out = capsys.readouterr().out
    missing = out.split("data missing or unusable on this machine")[1]
    assert "dataset 'mnist' has download: false" in missing  # every dataset, in one list
    assert "MNIST/raw/train-images-idx3-ubyte" in missing and "download: true" in missing
    assert "dataset npz: path 'arrays.npz' not found" in missing
    assert "30000 distinct cells" in out and "estimated cost" in out
    assert main(["submit", str(config), "--results", str(results), "--yes"]) == 2
    err = capsys.readouterr().err
    assert "dataset 'mnist' has download: false" in err and "arrays.npz' not found" in err
    assert not results.exists()  # refused before anything was written


NPZ_STUDY = """
study: npz_files
fixed: {{dataset: {{name: npz, path: {path}}}, epochs: 1}}
run: {{data_root: {root}}}
"""


def test_describe_names_a_missing_or_malformed_npz_file_before_any_trial(tmp_path, capsys):
    config = tmp_path / "npz.yaml"
    config.write_text(NPZ_STUDY.format(path="mine.npz", root=tmp_path))
    describe = ["describe", str(config), "--results", str(tmp_path / "results")]
    assert main(describe) == 0
    out = capsys.readouterr().out
    assert "path 'mine.npz' not found" in out and str(tmp_path / "mine.npz") in out
    assert "ADSTUDY_DATA" in out
    assert main(["submit", str(config), "--results", str(tmp_path / "results")]) == 2
    assert "path 'mine.npz' not found" in capsys.readouterr().err
    np.savez(tmp_path / "mine.npz", images=np.zeros((4, 8, 8)))
    assert main(describe) == 0
    out = capsys.readouterr().out
    assert "has no array x or y" in out and "['images']" in out
    np.savez(tmp_path / "mine.npz", x=np.zeros((4, 8, 8)), y=np.array([0, 0, 1, 1]))
    assert main(describe) == 0
    out = capsys.readouterr().out
    assert "data: npz(path=mine.npz): nothing missing" in out and "checks:" in out


@pytest.mark.slow
def test_contaminated_iaead_runs_on_real_mnist(mnist5k):
    cell = parse_spec(f"""
study: iaead_mnist
fixed:
  dataset: {{name: npz, path: {mnist5k}}}
  normal_class: 1
  protocol: contaminated
  contamination: 0.1
  model: {{name: iaead_cae, width: 16}}
  latent_dim: 64
  loss: {{name: iaead, warmup: 1}}
  score: latent_center
  optimizer: {{name: sgd, step_every: 50, gamma: 0.5}}
  lr: 0.1
  batch_size: 64
  epochs: 3
""")
    (cell,) = expand(cell)
    *epochs, final = list(run_cell(cell))
    assert final["status"] == "complete" and len(epochs) == 3
    # 500 ones (train + test of the subset) and int(500 * 0.1 / 0.9) = 55 other digits.
    assert len(final["labels"]) == 555 and final["labels"].sum() == 55
    assert 0.0 <= final["auroc"] <= 1.0 and np.isfinite(final["scores"]).all()


@pytest.mark.slow
@pytest.mark.ray
def test_a_catalogue_study_runs_through_ray(ray_local, tmp_path):
    from analysis.stats import rows
    from analysis.views import connect
    from study.submit import submit

    spec = parse_spec("""
study: catalogue_ray
compare:
  loss: [{name: lamp, base: ssim}, {name: iaead, warmup: 1}]
fixed:
  model: {name: iaead_cae, width: 8}
  protocol: contaminated
  contamination: 0.1
  score: latent_center
  dataset: digits
  latent_dim: 8
  epochs: 2
  max_train: 128
""")
    progress = submit(spec, results=str(tmp_path / "results"), out=io.StringIO())
    assert progress.counts == {"complete": 2}
    stored = rows(connect(str(tmp_path / "results")),
                  "select loss_label, status, epochs_run from trials order by loss_label")
    assert [(r["status"], r["epochs_run"]) for r in stored] == [("complete", 2)] * 2
