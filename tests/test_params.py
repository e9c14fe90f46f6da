"""The parameter records (trainables/param_records.py): one per parameter of every registry
entry, true to the entry's signature; a parameter written at its default is one cell with
the parameter left out (and no committed preset id moves: tests/test_frozen.py); every
loss parameter's range checked when a study file is read, naming the field, the value
and the range; a store holding cells from before the normal form is refused."""

from __future__ import annotations

import inspect
import json

import pytest

from study.cell import Cell
from study.checks import REGISTRIES, SUPPLIED
from study.errors import SpecError
from study.grid import expand
from study.legacy_params import refuse_unnormalised, unnormalised
from study.spec import parse_spec
from study.store import ResultsStore
from trainables.losses import TRAINER_KEYWORDS
from trainables.optimizers import SCHEDULE_PARAMS
from trainables.param_records import PARAMS, normal_form, param_problem


def signature_defaults(field: str, name: str) -> dict:
    entry = REGISTRIES[field][name]
    fn = entry.loader if field == "dataset" else entry
    params = list(inspect.signature(fn).parameters.values())[SUPPLIED[field]:]
    return {p.name: p.default for p in params if p.name not in TRAINER_KEYWORDS}


@pytest.mark.parametrize("field", sorted(PARAMS))
def test_every_entry_has_a_record_of_each_parameter_with_its_default(field):
    assert set(PARAMS[field]) == set(REGISTRIES[field])
    for name, records in PARAMS[field].items():
        defaults = signature_defaults(field, name)
        if field == "optimizer":  # the schedule's, read by build_optimizer
            defaults |= {"step_every": 0, "gamma": 0.5}
            assert set(SCHEDULE_PARAMS) <= set(records)
        assert set(records) == set(defaults), (field, name)
        for param, record in records.items():
            default = defaults[param]
            default = list(default) if isinstance(default, tuple) else default
            assert record.is_default(default), (field, name, param, default)
            assert record.problem(record.default) == "", (field, name, param)


def cell_of(text: str) -> Cell:
    (cell,) = expand(parse_spec(f"study: s\nfixed:\n  {text}\n"))
    return cell


@pytest.mark.parametrize("written, plain", [
    ("loss: {name: lamp, base: l2}", "loss: lamp"),
    ("loss: {name: lamp, base: l2, detach: true, eps: 0.001, max_over: batch}", "loss: lamp"),
    ("loss: {name: lmse, eps: '1e-3', max_over: none}", "loss: lmse"),
    ("loss: {name: vae, beta: 1, kl: mean}", "loss: vae"),
    ("loss: {name: iaead, nu: 1, lam: 5.0e-5, warmup: 20}", "loss: iaead"),
    ("model: {name: cae, channels: [16, 32, 64]}", "model: cae"),
    ("model: {name: lamp_ae, widths: null, kernel_size: 3, patches: 1}", "model: lamp_ae"),
    ("model: {name: mlp_ae, hidden: [2]}", "model: mlp_ae"),
    ("optimizer: {name: adam, beta1: 0.9, eps: 1.0e-8}", "optimizer: adam"),
    ("optimizer: {name: sgd, step_every: 0, gamma: 0.5}", "optimizer: sgd"),
    ("dataset: {name: mnist, binarize: 0, splits: both}", "dataset: mnist"),
    ("dataset: {name: lines, n_train: 1000}", "dataset: lines"),
    # kept_with: written out beside the parameter that makes it matter
    ("optimizer: {name: sgd, step_every: 50}",
     "optimizer: {name: sgd, step_every: 50, gamma: 0.5}"),
    ("model: {name: mlp_ae, init: glorot}", "model: {name: mlp_ae, hidden: [2], init: glorot}"),
])
def test_a_parameter_written_at_its_default_is_the_same_cell(written, plain):
    a, b = cell_of(written), cell_of(plain)
    assert a.cell_id == b.cell_id and a == b
    assert a.label("loss") == b.label("loss") and a.label("model") == b.label("model")


def test_a_value_other_than_the_default_stays_and_the_old_ids_do_not_move():
    # the ids these cells had before normal forms existed (hashes of the same text then)
    assert cell_of("loss: lamp").cell_id == Cell(study="s", loss="lamp").cell_id
    lamp_l1 = Cell(study="s", loss="lamp", loss_params='{"base":"l1"}')
    assert cell_of("loss: {name: lamp, base: l1}").cell_id == lamp_l1.cell_id
    iaead_sgd = Cell(study="s", optimizer="sgd", optimizer_params='{"gamma":0.5,"step_every":50}')
    assert cell_of("optimizer: {name: sgd, step_every: 50, gamma: 0.5}") == iaead_sgd
    assert cell_of("loss: {name: lmse, eps: 0.01}").loss_params == '{"eps":0.01}'


def test_two_values_of_one_axis_that_are_one_cell_are_refused_as_a_repeat():
    with pytest.raises(SpecError, match="compare.loss repeats a value"):
        parse_spec("study: s\ncompare:\n  loss: [lamp, {name: lamp, base: l2}]\n")


@pytest.mark.parametrize("loss, words", [
    ("{name: lmse, eps: 5}",
     "fixed.loss: lmse eps 5 is not allowed; it must be a number in (0, 1)"),
    ("{name: lmse, eps: 0}", "lmse eps 0 is not allowed; it must be a number in (0, 1)"),
    ("{name: lamp, eps: 1}", "lamp eps 1 is not allowed; it must be a number in (0, 1)"),
    ("{name: vae, beta: -1}", "fixed.loss: vae beta -1 is not allowed; it must be a number >= 0"),
    ("{name: vae, kl: sum}", "vae kl 'sum' is not allowed; choose from ['mean', 'keras']"),
    ("{name: iaead, nu: 0}", "iaead nu 0 is not allowed; it must be a number in (0, 1]"),
    ("{name: iaead, nu: 1.5}", "iaead nu 1.5 is not allowed; it must be a number in (0, 1]"),
    ("{name: iaead, lam: -0.1}", "iaead lam -0.1 is not allowed; it must be a number >= 0"),
    ("{name: iaead, warmup: 2.5}",
     "iaead warmup 2.5 is not allowed; it must be a whole number >= 0"),
    ("{name: ssim, window: 4}",
     "ssim window 4 is not allowed; it must be an odd whole number >= 1"),
    ("{name: ssim, padding: full}",
     "ssim padding 'full' is not allowed; choose from ['same', 'valid']"),
    ("{name: lamp, base: l3}", "lamp base 'l3' is not allowed; choose from ['l2', 'l1', 'ssim']"),
    ("{name: lamp, detach: 'no'}", "lamp detach 'no' is not allowed; it must be true or false"),
    ("{name: lmse, eps_mode: double}", "lmse eps_mode 'double' is not allowed; choose from"),
])
def test_out_of_range_loss_parameters_are_refused_when_the_file_is_read(loss, words):
    with pytest.raises(SpecError) as err:
        parse_spec(f"study: s\nfixed:\n  loss: {loss}\n")
    assert words in str(err.value)


def test_new_model_and_dataset_parameters_are_range_checked_too():
    for text, words in [
        ("model: {name: lamp_ae, patches: 0}", "lamp_ae patches 0 is not allowed; it must be "
                                               "a whole number >= 1"),
        ("model: {name: mlp_vae, sampling: sigma}", "mlp_vae sampling 'sigma' is not allowed"),
        ("dataset: {name: npz, path: a.npz, binarize: 1}", "npz binarize 1 is not allowed; it "
                                                          "must be a number in [0, 1)"),
        ("dataset: {name: svhn, splits: test}", "svhn splits 'test' is not allowed; choose "
                                                "from ['both', 'train']"),
    ]:
        with pytest.raises(SpecError, match="fixed.") as err:
            parse_spec(f"study: s\nfixed:\n  {text}\n")
        assert words in str(err.value)


def test_a_tuned_choice_is_normalised_and_checked_like_an_axis_value():
    tuned = "search: optuna\ntune:\n  loss: {choice: [lmse, {name: lmse, eps: 0.001}]}\n"
    with pytest.raises(SpecError, match="tune.loss.choice repeats a value"):
        parse_spec(f"study: s\n{tuned}")
    with pytest.raises(SpecError, match="lmse eps 2 is not allowed"):
        parse_spec("study: s\nsearch: optuna\ntune:\n  loss: {choice: [{name: lmse, eps: 2}]}\n")


def test_param_problem_and_normal_form_leave_unknown_names_to_the_registry_check():
    assert normal_form("loss", "nope", {"x": 1}) == {"x": 1}
    assert normal_form("loss", "lmse", {"x": 1, "eps": 0.001}) == {"x": 1}
    assert param_problem("loss", "nope", {"eps": 5}) == ""


def stored_study(tmp_path, cells: list[Cell]) -> ResultsStore:
    store = ResultsStore(str(tmp_path), "s")
    store.prepare()
    for cell in cells:
        store.write_cell(cell, {"status": "complete", "auroc": 0.5, "scores": [0.1, 0.9],
                                "labels": [0, 1]}, [])
    return store


def test_a_store_with_cells_stored_before_the_normal_form_is_refused(tmp_path):
    old = Cell(study="s", loss="lamp", loss_params=json.dumps({"base": "l2"}))
    fine = Cell(study="s", loss="lamp", loss_params=json.dumps({"base": "l1"}))
    assert old.cell_id != cell_of("loss: {name: lamp, base: l2}").cell_id  # its id moved
    assert unnormalised([fine.to_dict()]) == []
    assert unnormalised([old.to_dict()]) == ['loss lamp{"base": "l2"} (now lamp)']
    refuse_unnormalised(stored_study(tmp_path / "a", [fine]))  # nothing to say
    refuse_unnormalised(ResultsStore(str(tmp_path / "empty"), "s"))
    with pytest.raises(SpecError) as err:
        refuse_unnormalised(stored_study(tmp_path / "b", [fine, old]))
    for words in ('loss lamp{"base": "l2"} (now lamp)', "would run a second time",
                  "another study name"):
        assert words in str(err.value)
