"""Bad input is refused before any trial starts, naming the field, the value and what is
allowed, and leaves every stored byte as it was (docs/reliability.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from reliability_helpers import snapshot

from study.cell import Cell
from study.cli import main
from study.errors import SpecError, StoreError
from study.grid import expand
from study.identity import choose_study
from study.probe import image_shape, probe_cells
from study.spec import parse_spec
from study.store import ResultsStore
from trainables.datasets import load_dataset

STORED = """
study: s
compare:
  loss: [mse, lmse]
vary:
  lr: [0.001, 0.01]
fixed:
  dataset: digits
  epochs: 2
"""


def store_study(root: Path, text: str = STORED, name: str | None = None) -> ResultsStore:
    """A results root holding every cell of ``text`` as stored (no training)."""
    spec = parse_spec(text)
    store = ResultsStore(str(root), name or spec.study)
    store.prepare()
    for cell in expand(spec):
        store.write_cell(cell, {"status": "complete", "auroc": 0.5, "scores": [0.1, 0.9],
                                "labels": [0, 1]}, [{"epoch": 1, "train_loss": 0.1}])
    store.write_study_json({"study": store.study, "spec_yaml": text})
    return store


@pytest.fixture
def results(tmp_path) -> Path:
    root = tmp_path / "results"
    store_study(root)
    return root


def submit_args(tmp_path: Path, text: str, results: Path, *extra: str) -> list[str]:
    config = tmp_path / "study.yaml"
    config.write_text(text)
    return ["submit", str(config), "--results", str(results), *extra]


def big_grid() -> str:
    seeds = ", ".join(str(i) for i in range(400))
    caps = ", ".join(str(i) for i in range(1, 301))
    return f"study: t\nvary:\n  seed: [{seeds}]\n  max_test: [{caps}]\n"


# (study file, words the error must hold). Study 't' is not stored; 's' is (the fixture).
BAD_INPUT = {
    "malformed yaml": ("study: t\ncompare: [unclosed\n", ["is not valid YAML"]),
    "unknown key": ("study: t\nvary:\n  lr_rate: [0.1]\n",
                    ["unknown key 'lr_rate' in vary; did you mean 'lr'?"]),
    "unknown top key": ("study: t\nfixd: {}\n",
                        ["unknown key 'fixd' in study file; did you mean 'fixed'?"]),
    "wrong type": ("study: t\nfixed:\n  epochs: ten\n", ["fixed.epochs: expected int, got 'ten'"]),
    "wrong run type": ("study: t\nrun: {max_failures: many}\n",
                       ["run.max_failures: expected a number >= 0, got 'many'"]),
    "non-finite lr": ("study: t\nvary:\n  lr: [.nan, 0.1]\n",
                      ["vary.lr: expected a finite number, got nan"]),
    "seed out of range": ("study: t\nfixed: {seed: 99999999999999999999}\n",
                          ["fixed.seed: 99999999999999999999 is out of range"]),
    "date parameter": ("study: t\nfixed:\n  loss: {name: lamp, base: 2020-01-01}\n",
                       ["fixed.loss: parameters must be", "(quote dates)"]),
    "loss parameter range": ("study: t\nfixed:\n  loss: {name: lmse, eps: 5}\n",
                             ["fixed.loss: lmse eps 5 is not allowed; it must be a number in "
                              "(0, 1)"]),
    "loss parameter negative": ("study: t\nvary:\n  loss: [vae, {name: vae, beta: -1}]\n",
                                ["vary.loss: vae beta -1 is not allowed; it must be a number "
                                 ">= 0"]),
    "default written twice": ("study: t\ncompare:\n  loss: [lamp, {name: lamp, base: l2}]\n",
                              ["compare.loss repeats a value"]),
    "fractional count": ("study: t\nrun: {cells_per_trial: 1.5}\n",
                         ["run.cells_per_trial: expected a whole number >= 0, got 1.5"]),
    "axis not a list": ("study: t\nvary:\n  lr: 0.1\n", ["vary.lr must be a list"]),
    "empty axis": ("study: t\nvary:\n  seed: []\n", ["vary.seed is empty"]),
    "grid too large": (big_grid(), ["120,000 cells (over 100,000)", "--yes"]),
    "normal class": ("study: t\nvary:\n  normal_class: [0, 10]\n",
                     ["normal_class: 10 is not a class of dataset 'digits'",
                      "choose from [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"]),
    "normal class lines": ("study: t\nfixed: {dataset: lines, normal_class: 2}\n",
                           ["normal_class: 2 is not a class of dataset 'lines'",
                            "choose from [0, 1]"]),
    "model cannot take 2x2": (
        "study: t\nfixed: {dataset: lines2x2, model: lamp_ae, batch_size: 1}\n",
        ["model 'lamp_ae'", "batch_size 1", "cannot train on dataset 'lines2x2'",
         "[C, H, W] = [1, 2, 2]", "Expected more than 1 value per channel"]),
    "loss cannot take model": ("study: t\ncompare:\n  loss: [mse, vae]\n",
                               ["model 'cae'", "loss 'vae'",
                                "loss 'vae' needs a variational model (e.g. mlp_vae)"]),
    "model parameter value": (
        "study: t\nfixed:\n  model: {name: lamp_ae, kernel_size: 4}\n",
        ["model 'lamp_ae(kernel_size=4)'", "kernel_size 4 must be odd"]),
    "optimizer value": ("study: t\nfixed:\n  optimizer: {name: sgd, momentum: -1}\n",
                        ["optimizer 'sgd(momentum=-1)'", "momentum must be >= 0, got -1"]),
    "contamination 0.5": ("study: t\nfixed: {protocol: contaminated, contamination: 0.5}\n",
                          ["contamination: 0.5 is not allowed; it must be in [0, 0.5)"]),
    "contamination 0": ("study: t\nfixed: {protocol: contaminated, contamination: 0}\n",
                        ["contamination: 0.0 is not allowed with protocol 'contaminated'",
                         "(0, 0.5)"]),
    "contamination negative": ("study: t\nvary: {contamination: [-0.1]}\n",
                               ["contamination: -0.1 is not allowed"]),
    "lr zero": ("study: t\nvary: {lr: [0.001, 0]}\n", ["lr: 0.0 is not allowed; it must be > 0"]),
    "lr negative": ("study: t\nfixed: {lr: -1e-3}\n",
                    ["lr: -0.001 is not allowed; it must be > 0"]),
    "batch size zero": ("study: t\nfixed: {batch_size: 0}\n",
                        ["batch_size: 0 is not allowed; it must be > 0"]),
    "batch size negative": ("study: t\nvary: {batch_size: [-8]}\n",
                            ["batch_size: -8 is not allowed; it must be > 0"]),
    "epochs zero": ("study: t\nfixed: {epochs: 0}\n", ["epochs: 0 is not allowed; it must be > 0"]),
    "epochs negative": ("study: t\nfixed: {epochs: -3}\n",
                        ["epochs: -3 is not allowed; it must be > 0"]),
    "name ../x": ("study: ../x\n", ["study name '../x' is not allowed"]),
    "name absolute": ("study: /etc/x\n", ["study name '/etc/x' is not allowed"]),
    "name with slash": ("study: a/b\n", ["study name 'a/b' is not allowed"]),
    "name hidden": ("study: .s\n", ["study name '.s' is not allowed"]),
    "name with space": ("study: 'a b'\n", ["study name 'a b' is not allowed"]),
    "name with ..": ("study: s..x\n", ["study name 's..x' is not allowed"]),
    "name odd characters": ("study: \"s\\u00e9;rm\"\n", ["study name 'sé;rm' is not allowed"]),
    "different fixed value": (STORED.replace("epochs: 2", "epochs: 3"),
                              ["holds study 's' with a different spec", "epochs 2 -> 3",
                               "--new-version", "study 's.v2'"]),
    "different axes": (STORED.replace("vary:\n", "vary:\n  seed: [0, 1]\n"),
                       ["holds study 's' with a different spec",
                        "axes ['loss', 'lr'] -> ['loss', 'lr', 'seed']"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_refused_before_any_trial_and_the_store_is_untouched(
    case, tmp_path, results, capsys
):
    text, words = BAD_INPUT[case]
    before = snapshot(results)
    assert main(submit_args(tmp_path, text, results)) == 2
    err = capsys.readouterr().err
    assert err.startswith("adstudy submit: error: ")
    for word in words:
        assert word in err
    assert snapshot(results) == before  # byte for byte; no folder for 't' either


def test_a_results_dir_that_cannot_be_written_is_refused_before_any_trial(tmp_path, capsys):
    blocker = tmp_path / "file"  # root runs these tests: a mode bit would not stop it
    blocker.write_text("not a folder")
    results = blocker / "results"
    assert main(submit_args(tmp_path, "study: t\nfixed: {epochs: 1}\n", results)) == 2
    err = capsys.readouterr().err
    assert f"results dir '{results}/t' is not writable" in err
    assert blocker.read_text() == "not a folder"


def test_a_store_refuses_a_study_name_that_is_not_one_folder(tmp_path):
    for name in ("../x", "/abs", "a/b", ".hidden", "", "x/../../y"):
        with pytest.raises(StoreError, match="is not allowed"):
            ResultsStore(str(tmp_path), name)
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_study_json_is_reported_by_name(tmp_path, results, capsys):
    (results / "s" / "study.json").write_text('{"study": "s", "spec_yaml": ')
    before = snapshot(results)
    assert main(submit_args(tmp_path, STORED, results)) == 2
    assert f"cannot read {results}/s/study.json" in capsys.readouterr().err
    assert snapshot(results) == before


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.replace("lr: [0.001, 0.01]", "lr: [0.001, 0.01, 0.1]"),  # grown
        lambda t: t.replace("lr: [0.001, 0.01]", "lr: [0.01]"),  # shrunk
        lambda t: t.replace("loss: [mse, lmse]", "loss: [lmse, mse, l1]"),  # reordered, grown
        lambda t: t.replace("  epochs: 2\n", "  epochs: 2\n  latent_dim: 16\n"),  # = default
        lambda t: t.replace("study: s", "study: s\ndescription: again")
        + "resources: {cpu: 2}\nrun: {max_failures: 3}\n",  # how it runs, not what
    ],
)
def test_a_grown_or_reordered_spec_is_the_same_study(change, results):
    assert choose_study(parse_spec(change(STORED)), str(results), new_version=False) == "s"


def test_new_version_stores_a_changed_spec_beside_the_old_one(tmp_path, results, capsys):
    changed = STORED.replace("epochs: 2", "epochs: 3")
    spec = parse_spec(changed)
    assert choose_study(spec, str(results), new_version=True) == "s.v2"
    # s.v2 holding every cell of the changed spec: submit runs nothing (no Ray) and stores
    # under s.v2, leaving s byte for byte as it was.
    v2 = store_study(results, changed.replace("study: s", "study: s.v2"), name="s.v2")
    v2.write_study_json({"study": "s.v2", "spec_yaml": changed})
    old = {k: v for k, v in snapshot(results).items() if k == "s" or k.startswith("s/")}
    assert main(submit_args(tmp_path, changed, results, "--new-version")) == 0
    out = capsys.readouterr().out
    assert "storing this one as study 's.v2'" in out
    assert "nothing to run: every cell is stored" in out
    after = snapshot(results)
    assert {k: v for k, v in after.items() if k == "s" or k.startswith("s/")} == old
    record = json.loads((results / "s.v2" / "study.json").read_text())
    assert record["study"] == "s.v2" and record["spec_yaml"] == changed
    # A third spec skips s.v2 (taken by another spec) for s.v3.
    third = parse_spec(STORED.replace("epochs: 2", "epochs: 4"))
    assert choose_study(third, str(results), new_version=True) == "s.v3"
    with pytest.raises(SpecError, match="study 's.v3'"):
        choose_study(third, str(results), new_version=False)


def test_every_dataset_has_an_image_shape_that_matches_its_loader(tmp_path):
    arrays = tmp_path / "a.npz"
    np.savez(arrays, x=np.zeros((20, 5, 7, 3), np.uint8), y=np.arange(20) % 2)
    for dataset, params in [("digits", {}), ("lines", {"n_train": 4, "n_test": 4}),
                            ("lines", {"size": 12, "n_train": 4, "n_test": 4}),
                            ("lines2x2", {}), ("npz", {"path": "a.npz"})]:
        cell = Cell(study="p", dataset=dataset, dataset_params=json.dumps(params))
        loaded = load_dataset(dataset, tmp_path, params).x_train.shape[1:]
        assert image_shape(cell, str(tmp_path)) == tuple(loaded), dataset
    missing = Cell(study="p", dataset="npz", dataset_params='{"path": "absent.npz"}')
    assert image_shape(missing, str(tmp_path)) is None  # not probed: the trial says why


def test_the_probe_judges_a_model_on_the_dataset_shape():
    # lamp_ae with batches of one image: its 1x1 feature maps cannot be batch-normalised
    # on 2x2 images, its 2x2 maps can on 28x28 ones.
    probe_cells([Cell(study="p", dataset="mnist", model="lamp_ae", batch_size=1)], None)
    with pytest.raises(SpecError, match="cannot train on dataset 'lines2x2'"):
        probe_cells([Cell(study="p", dataset="lines2x2", model="lamp_ae", batch_size=1)], None)
    # SSIM's 11-pixel window on 2x2 images is cut to fit (trainables.losses.ssim_map):
    # accepted, as the trial would run it.
    probe_cells([Cell(study="p", dataset="lines2x2", loss="ssim"),
                 Cell(study="p", dataset="lines2x2", loss="lamp", loss_params='{"base":"ssim"}')],
                None)


# Property-based: spec parsing and grid expansion.
LOSSES = ["mse", "lmse", "l1", {"name": "lamp", "base": "l1"},
          {"name": "lamp", "base": "ssim", "max_over": "sample"}]
POOLS = {
    "loss": LOSSES,
    "lr": [0.001, 0.003, 0.01, 0.1],
    "seed": [0, 1, 2, 3],
    "normal_class": [0, 1, 5, 9],
    "batch_size": [16, 32, 64],
    "latent_dim": [2, 8, 16],
}


def shuffled(draw, items: list) -> list:
    return draw(st.permutations(items))


def reorder(value):
    """A named value with its parameter keys in another order (same meaning)."""
    if isinstance(value, dict):
        return dict(reversed(list(value.items())))
    return value


@st.composite
def grids(draw):
    """A study as a dict: some axes, each a subset of its pool, split compare/vary."""
    names = draw(st.lists(st.sampled_from(sorted(POOLS)), min_size=1, max_size=4, unique=True))
    axes = {n: draw(st.lists(st.sampled_from(range(len(POOLS[n]))), min_size=1, unique=True))
            for n in names}
    split = draw(st.integers(0, len(names)))
    doc = {"study": "h", "compare": {}, "vary": {}, "fixed": {"epochs": 2}}
    for i, name in enumerate(names):
        doc["compare" if i < split else "vary"][name] = [POOLS[name][j] for j in axes[name]]
    return doc


def permuted(draw, doc: dict) -> dict:
    """The same study with sections, axes, values and parameter keys in other orders."""
    out = {}
    for key in shuffled(draw, list(doc)):
        section = doc[key]
        if isinstance(section, dict):
            out[key] = {a: [reorder(v) for v in shuffled(draw, section[a])]
                        if isinstance(section[a], list) else section[a]
                        for a in shuffled(draw, list(section))}
        else:
            out[key] = section
    return out


@settings(max_examples=60, deadline=None)
@given(doc=grids(), data=st.data())
def test_cell_ids_are_unique_and_stable_under_key_and_value_order(doc, data):
    cells = expand(parse_spec(yaml.safe_dump(doc, sort_keys=False)))
    expected = 1
    for section in ("compare", "vary"):
        for values in doc[section].values():
            expected *= len(values)
    ids = [c.cell_id for c in cells]
    assert len(ids) == len(set(ids)) == expected
    again = expand(parse_spec(yaml.safe_dump(permuted(data.draw, doc), sort_keys=False)))
    assert sorted(c.cell_id for c in again) == sorted(ids)
    assert {c.cell_id: c for c in again} == {c.cell_id: c for c in cells}


# Any YAML document: parse_spec either accepts it or raises SpecError, never another error.
scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=6)
plausible = st.sampled_from([0, 1, 2, 0.1, 1e-3, 0.6, -1, 2**70, "mse", "lmse", "digits", "cae",
                             "one_class", "1e-3", "nan", {"name": "lamp", "base": "l1"},
                             {"name": 3}, {"base": "l1"}, [], {}])
values = st.recursive(scalars | plausible, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6) | st.just("name"), inner,
                                        max_size=3), max_leaves=8)
field_names = st.sampled_from(["loss", "lr", "seed", "dataset", "model", "epochs", "optimizer",
                               "normal_class", "contamination", "lr_rate", "batch_size"])
sections = st.dictionaries(field_names, values | st.lists(plausible, max_size=3), max_size=3)
options = st.dictionaries(
    st.sampled_from(["cpu", "gpu", "max_concurrent", "max_failures", "cells_per_trial",
                     "device", "data_root", "save_weights", "reuse_actors", "x"]),
    scalars | plausible, max_size=3)
documents = st.fixed_dictionaries(
    {"study": st.sampled_from(["h", "h.v2"]) | scalars},
    optional={"compare": sections, "vary": sections, "fixed": sections, "resources": options,
              "run": options, "search": st.sampled_from(["grid", "optuna", "x"]),
              "tune": values, "optuna": values, "description": values},
)


@settings(max_examples=300, deadline=None)
@given(doc=documents)
def test_any_yaml_document_parses_or_raises_a_spec_error(doc):
    try:
        spec = parse_spec(yaml.safe_dump(doc))
    except SpecError:
        return
    cells = expand(spec)
    assert len({c.cell_id for c in cells}) == len(cells)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80))
def test_any_text_parses_or_raises_a_spec_error(text):
    try:
        parse_spec(text)
    except SpecError:
        pass
