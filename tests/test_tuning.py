"""Tuned studies without a running Ray: the spec, cell ids, the validation split, groups,
and GroupSearch (one real Optuna study per group) driven by hand."""

import dataclasses

import numpy as np
import optuna
import pytest

from study.cell import Cell
from study.errors import SpecError
from study.group_search import GroupSearch, selection_value
from study.spec import parse_spec
from study.tuned_groups import (
    Group,
    StoredTrial,
    base_cells,
    group_id,
    params_of,
    probe_cells,
    tuned_cell,
)
from trainables.datasets import load_dataset
from trainables.protocols import contaminated, one_class
from trainables.train import train_cell

TUNED = """
study: t
search: optuna
compare: {loss: [mse, lmse]}
vary: {normal_class: [0, 1]}
tune:
  lr: {log_uniform: [1e-4, 1e-2]}
  latent_dim: {choice: [4, 8]}
  optimizer: {choice: [adam, {name: sgd, momentum: 0.9}]}
optuna: {n_trials: 3, seed: 1}
fixed: {dataset: digits, epochs: 2}
"""


def test_a_tuned_spec_parses_its_axes_and_options():
    spec = parse_spec(TUNED)
    assert spec.search == "optuna" and spec.optuna.n_trials == 3
    assert [(a.field, a.kind) for a in spec.tune] == [
        ("lr", "log_uniform"), ("latent_dim", "choice"), ("optimizer", "choice")]
    assert spec.tune[0].values == (1e-4, 1e-2)  # YAML's 1e-4 string read as a float
    assert spec.tune[2].values == (("adam", "{}"), ("sgd", '{"momentum":0.9}'))
    assert spec.optuna.metric == "val_recon_mse" and spec.optuna.mode == "min"
    assert spec.optuna.labels == "none" and spec.optuna.asha is None


def bad(tune: str = "lr: {log_uniform: [1e-4, 1e-2]}", optuna: str = "{n_trials: 2}",
        extra: str = "", search: str = "optuna") -> str:
    return (f"study: s\nsearch: {search}\ncompare: {{loss: [mse]}}\ntune:\n  {tune}\n"
            f"optuna: {optuna}\n{extra}")


@pytest.mark.parametrize("text, message", [
    (bad(tune="lr: {gauss: [1, 2]}"),
     "tune.lr: unknown distribution 'gauss'; choose from ['choice', 'uniform'"),
    (bad(tune="seed: {choice: [0, 1]}"), "tune.seed: 'seed' cannot be tuned"),
    (bad(tune="lr: {log_uniform: [0, 0.1]}"),
     "tune.lr.log_uniform: expected [low, high] with 0 < low < high, got [0, 0.1]"),
    (bad(tune="latent_dim: {uniform: [2, 8]}"),
     "tune.latent_dim: 'uniform' does not fit a int field; choose from ['choice', "
     "'int_uniform', 'int_log_uniform']"),
    (bad(tune="optimizer: {uniform: [1, 2]}"), "does not fit a str field; choose from ['choice']"),
    (bad(tune="latent_dim: {choice: [4, 4]}"), "tune.latent_dim.choice repeats a value"),
    (bad(tune="lr_rate: {choice: [0.1]}"), "unknown key 'lr_rate' in tune; did you mean 'lr'?"),
    (bad(search="grid", optuna="{}"), "tune: needs 'search: optuna' (search is 'grid')"),
    (bad(optuna="{}"), "optuna.n_trials: 0 is not allowed"),
    (bad(optuna="{n_trials: 2, sampler: grid}"),
     "optuna.sampler: 'grid' is not allowed; choose from ['tpe', 'random', 'qmc']"),
    (bad(optuna="{n_trials: 2, metric: auroc}"),
     "optuna.metric: 'auroc' reads test labels, which optuna.labels: 'none' does not allow; "
     "set optuna.labels: test to select on them, or choose from ['val_recon_mse']"),
    (bad(optuna="{n_trials: 2, metric: val_auroc}"),
     "'val_auroc' reads validation labels, which optuna.labels: 'none' does not allow"),
    (bad(optuna="{n_trials: 2, metric: val_auroc, labels: validation, asha: "
                "{metric: test_auroc}}"),
     "optuna.asha.metric: 'test_auroc' reads test labels"),
    (bad(optuna="{n_trials: 2, val_fraction: 1.5}"), "optuna.val_fraction: 1.5 is not allowed"),
    (bad(optuna="{n_trials: 2, trials: 3}"),
     "unknown key 'trials' in optuna; did you mean 'n_trials'?"),
    (bad(extra="fixed: {val_fraction: 0.3}\n"), "val_fraction: set optuna.val_fraction"),
    (bad(extra="vary: {lr: [0.1]}\n"), "'lr' is in both vary and tune"),
    (bad(optuna="{n_trials: 2, metric: val_auroc, labels: validation}",
         extra="fixed: {protocol: contaminated, contamination: 0.1}\n"),
     "'val_auroc' needs labelled held-out anomalies"),
    ("study: s\nsearch: optuna\ncompare: {loss: [mse]}\noptuna: {n_trials: 2}\n",
     "search: optuna needs a tune: section"),
])
def test_bad_tuned_specs_name_the_field_the_value_and_the_choices(text, message):
    with pytest.raises(SpecError) as err:
        parse_spec(text)
    assert message in str(err.value)


def test_test_labels_are_selectable_only_when_the_spec_says_so():
    spec = parse_spec(bad(optuna="{n_trials: 2, metric: auroc, labels: test}"))
    assert spec.optuna.metric == "auroc" and spec.optuna.mode == "max"


def test_cell_ids_stored_before_val_fraction_existed_are_unchanged():
    # Ids computed with the cell module of commit ead54c4 (before val_fraction).
    assert Cell(study="quickstart").cell_id == "64fff19cc008"
    assert Cell(study="s", loss="lmse", lr=0.003, latent_dim=8, normal_class=3,
                seed=1).cell_id == "ff6e8c550315"
    assert Cell(study="tiny", dataset="mnist", loss="lamp", loss_params='{"base":"l1"}',
                protocol="contaminated", contamination=0.1).cell_id == "16669b5e5735"
    held = Cell(study="quickstart", val_fraction=0.2)
    assert held.cell_id != Cell(study="quickstart").cell_id
    assert Cell.from_dict(held.to_dict()).cell_id == held.cell_id


def test_the_validation_split_is_fixed_disjoint_and_never_from_the_test_split(tmp_path):
    images = load_dataset("digits", str(tmp_path), {})
    normals = images.x_train[images.y_train == 3]
    tasks = [one_class(images, 3, seed=s, val_fraction=0.25) for s in (0, 1)]
    for task in tasks:
        assert len(task.val_x) == round(0.25 * len(normals))
        assert len(task.train_x) + len(task.val_x) == len(normals)
        both = np.concatenate([task.train_x, task.val_x]).reshape(len(normals), -1)
        assert len(np.unique(both, axis=0)) == len(np.unique(normals.reshape(len(normals), -1),
                                                             axis=0))
        others = images.x_train[images.y_train != 3].reshape(-1, 64)
        flat = task.val_anomalies.reshape(len(task.val_anomalies), -1)
        assert len(flat) == len(task.val_x)
        assert all((others == row).all(1).any() for row in flat)  # from the train split
    assert np.array_equal(tasks[0].val_x, tasks[1].val_x)  # the cell's seed does not move it
    plain = one_class(images, 3, seed=0)
    assert plain.val_x is None and len(plain.train_x) == len(normals)


def test_the_contaminated_protocol_holds_out_unlabelled_pool_images(tmp_path):
    images = load_dataset("digits", str(tmp_path), {})
    full = contaminated(images, 0, seed=0, contamination=0.1)
    task = contaminated(images, 0, seed=0, contamination=0.1, val_fraction=0.2)
    assert len(task.train_x) + len(task.val_x) == len(full.train_x)
    assert len(task.val_x) == round(0.2 * len(full.train_x)) and task.val_anomalies is None
    assert len(task.train_y) == len(task.train_x)
    assert np.array_equal(task.test_x, full.test_x)  # evaluation still covers the whole pool


@pytest.mark.slow
def test_a_cell_with_a_validation_split_reports_validation_figures(tmp_path):
    cell = Cell(study="v", dataset="digits", normal_class=1, epochs=2, latent_dim=4,
                val_fraction=0.25)
    records = list(train_cell(cell, str(tmp_path), "cpu"))
    *epochs, final = records
    assert all(e["val_recon_mse"] > 0 and 0 <= e["val_auroc"] <= 1 for e in epochs)
    assert final["status"] == "complete"
    assert final["val_recon_mse"] == pytest.approx(epochs[-1]["val_recon_mse"])
    assert 0 <= final["val_auroc"] <= 1 and 0 <= final["auroc"] <= 1
    plain = list(train_cell(dataclasses.replace(cell, val_fraction=0.0), str(tmp_path), "cpu"))
    assert "val_recon_mse" not in plain[-1] and "val_recon_mse" not in plain[0]


def test_groups_are_the_compare_x_vary_cells_and_ignore_the_tuned_fields():
    spec = parse_spec(TUNED)
    bases = base_cells(spec)
    assert len(bases) == 4 and {c.val_fraction for c in bases} == {0.2}
    tuned = ("latent_dim", "lr", "optimizer")
    ids = {group_id(c, tuned) for c in bases}
    assert len(ids) == 4
    trial = tuned_cell(bases[0], spec, {"lr": 0.004, "latent_dim": 8,
                                        "optimizer": 'sgd{"momentum":0.9}'})
    assert (trial.lr, trial.latent_dim, trial.optimizer) == (0.004, 8, "sgd")
    assert trial.optimizer_params == '{"momentum":0.9}'
    assert group_id(trial, tuned) == group_id(bases[0], tuned)
    assert trial.cell_id != bases[0].cell_id
    assert params_of(trial, spec) == {"lr": 0.004, "latent_dim": 8,
                                      "optimizer": 'sgd{"momentum":0.9}'}
    assert params_of(dataclasses.replace(trial, lr=0.5), spec) is None  # outside the space
    probes = probe_cells(spec, bases)
    assert {c.lr for c in probes} >= {1e-4, 1e-2} and {c.optimizer for c in probes} == {
        "adam", "sgd"}


def groups_of(spec, stored=None):
    stored = stored or {}
    tuned = ("latent_dim", "lr", "optimizer")
    return [Group(group_id(b, tuned), b, tuple(stored.get(i, ()))) for i, b in
            enumerate(base_cells(spec))]


def final(value, auroc, status="complete"):
    return {"kind": "final", "status": status, "val_recon_mse": value, "auroc": auroc,
            "val_auroc": 0.5}


def test_group_search_gives_every_group_the_same_budget_and_then_finishes():
    spec = parse_spec(TUNED)
    search = GroupSearch(spec, groups_of(spec))
    configs = [search.suggest(f"t{i}") for i in range(14)]
    assert configs[-1] is None and configs.count(None) == 14 - 4 * 3
    launched = [c for c in configs if isinstance(c, dict)]
    per_group: dict[str, list[int]] = {}
    for config in launched:
        per_group.setdefault(config["tags"]["group_id"], []).append(config["tags"]["group_trial"])
        assert len(config["cells"]) == 1 and config["tags"]["tune_metric"] == "val_recon_mse"
    assert sorted(per_group.values()) == [[0, 1, 2]] * 4
    assert [c["tags"]["group_id"] for c in launched[:4]] == list(per_group)  # round robin
    assert len({Cell.from_dict(c["cells"][0]).cell_id for c in launched}) == 12


def test_only_the_selection_metric_of_a_complete_trial_reaches_optuna():
    spec = parse_spec(TUNED)
    search = GroupSearch(dataclasses.replace(spec, optuna=dataclasses.replace(
        spec.optuna, n_trials=4)), groups_of(spec)[:1])
    for i in range(4):
        search.suggest(f"t{i}")
    search.complete("t0", final(0.25, auroc=0.99))
    search.complete("t1", final(None, None, status="diverged"))
    search.complete("t2", None, error=True)  # the trial's process died
    search.complete("t3", {"kind": "final", "status": "failed"})  # the trainer raised
    study = search.slots[0].study.study
    states = [(t.state, t.value) for t in study.trials]
    assert states == [(optuna.trial.TrialState.COMPLETE, 0.25),
                      (optuna.trial.TrialState.PRUNED, None),
                      (optuna.trial.TrialState.FAIL, None), (optuna.trial.TrialState.FAIL, None)]
    assert selection_value(final(0.3, 0.9), "val_recon_mse") == 0.3
    assert selection_value({"kind": "epoch", "val_recon_mse": 0.1}, "val_recon_mse") is None
    assert selection_value(final(float("nan"), 0.9), "val_recon_mse") is None


def test_a_group_warm_starts_from_its_stored_trials_and_runs_only_the_rest():
    spec = parse_spec(TUNED)
    base = base_cells(spec)[0]
    done = [tuned_cell(base, spec, {"lr": lr, "latent_dim": 4, "optimizer": "adam"})
            for lr in (0.001, 0.002, 0.003)]
    stored = {0: [StoredTrial(done[0], "complete", 0.1, 0),
                  StoredTrial(done[1], "pruned", None, 1),
                  StoredTrial(done[2], "failed", None, 2)]}  # a crash: given back
    search = GroupSearch(spec, groups_of(spec, stored)[:1])
    slot = search.slots[0]
    assert slot.remaining == 1 and slot.next_index == 3
    trials = slot.study.study.trials
    assert [(t.state.name, t.value, t.params["lr"]) for t in trials] == [
        ("COMPLETE", 0.1, 0.001), ("PRUNED", None, 0.002)]
    config = search.suggest("x")
    assert config["tags"]["group_trial"] == 3 and search.suggest("y") is None


def test_a_space_smaller_than_the_budget_runs_each_cell_once():
    spec = parse_spec(TUNED.replace("lr: {log_uniform: [1e-4, 1e-2]}", "lr: {choice: [0.001]}")
                      .replace("optimizer: {choice: [adam, {name: sgd, momentum: 0.9}]}",
                               "batch_size: {choice: [32]}"))
    search = GroupSearch(spec, groups_of(spec)[:1])
    configs = [search.suggest(f"t{i}") for i in range(3)]
    assert [c is None for c in configs] == [False, False, True]  # latent_dim 4 or 8
    cells = {Cell.from_dict(c["cells"][0]).latent_dim for c in configs[:2]}
    assert cells == {4, 8} and search.launched == 2


def test_the_plan_counts_each_groups_stored_trials_and_gives_back_unreadable_ones(tmp_path):
    from study.store import ResultsStore
    from study.tuned_plan import plan_tuned

    spec = parse_spec(TUNED)
    store = ResultsStore(str(tmp_path), "t")
    store.prepare()
    base = base_cells(spec)[0]
    gid = group_id(base, ("latent_dim", "lr", "optimizer"))
    for index, lr in enumerate((0.001, 0.002, 0.003)):
        cell = tuned_cell(base, spec, {"lr": lr, "latent_dim": 4, "optimizer": "adam"})
        store.write_cell(cell, {"status": "complete", "val_recon_mse": lr, "group_id": gid,
                                "group_trial": index, "tune_metric": "val_recon_mse"}, [])
    work = plan_tuned(spec, store)
    assert [g.spent for g in work.groups] == [3, 0, 0, 0] and work.budget == 9
    assert "4 groups x 3 trials = 12 trials in the study, 3 stored, 9 to run" == work.describe()
    assert [t.value for t in work.groups[0].stored] == [0.001, 0.002, 0.003]
    broken = sorted((tmp_path / "t" / "trials").glob("*.parquet"))[0]
    broken.write_bytes(broken.read_bytes()[:40])  # a truncated file
    again = ResultsStore(str(tmp_path), "t")
    work = plan_tuned(spec, again)
    assert work.groups[0].spent == 2 and work.budget == 10
    assert list(again.unreadable) == [str(broken)]


@pytest.mark.parametrize("sampler", ["tpe", "random", "qmc"])
def test_every_sampler_suggests_cells_inside_the_space(sampler):
    spec = parse_spec(TUNED.replace("optuna: {n_trials: 3, seed: 1}",
                                    f"optuna: {{n_trials: 5, seed: 1, sampler: {sampler}}}"))
    search = GroupSearch(spec, groups_of(spec)[:1])
    for i in range(5):
        cell = Cell.from_dict(search.suggest(f"t{i}")["cells"][0])
        assert 1e-4 <= cell.lr <= 1e-2 and cell.latent_dim in (4, 8)
        assert cell.optimizer in ("adam", "sgd") and cell.val_fraction == 0.2
        search.complete(f"t{i}", final(cell.lr, 0.5))
    trials = search.slots[0].study.study.trials
    assert [t.value for t in trials] == [t.params["lr"] for t in trials]
