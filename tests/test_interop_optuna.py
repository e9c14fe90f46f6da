"""Tuned studies keep their Optuna studies in the results store (study/optuna_store.py):
after a real tuned submit, plain optuna loads each group's study by its readable name,
and a resubmission goes on in the same Optuna studies."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import optuna
import pyarrow.fs as pafs
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

import adstudy
from analysis.views import connect, rows
from study.cell import Cell
from study.optuna_store import OptunaJournal
from study.spec import parse_spec
from study.store import ResultsStore
from study.submit import submit

SPEC = """
study: tj
search: optuna
compare:
  loss: [mse, lmse]
tune:
  lr: {{log_uniform: [1e-3, 2e-2]}}
  latent_dim: {{choice: [4, 8]}}
optuna: {{n_trials: {n}, seed: 3, val_fraction: 0.25}}
fixed: {{dataset: digits, epochs: 1, max_test: 120, max_train: 200}}
resources: {{cpu: 1, max_concurrent: 2}}
"""
NAMES = {"tj/loss=mse", "tj/loss=lmse"}


def plain_storage(results) -> JournalStorage:
    """The journal as any Optuna user opens it: no adstudy code."""
    return JournalStorage(JournalFileBackend(str(results / "tj" / "optuna" / "journal.log")))


@pytest.mark.slow
def test_plain_optuna_loads_each_group_and_a_resubmit_goes_on_in_it(ray_local, tmp_path):
    results = tmp_path / "results"
    spec = adstudy.parse_spec(SPEC.format(n=1))  # the Python API, as a notebook would
    progress = adstudy.submit(spec, results=str(results), out=io.StringIO())
    assert progress.done == 2 and not progress.counts["failed"]

    stored = rows(connect(str(results)), "SELECT cell_id, loss, val_recon_mse, status "
                  "FROM trials")
    storage = plain_storage(results)
    first = {}  # name -> its first trial, as the first run left it
    assert set(optuna.get_all_study_names(storage)) == NAMES
    for name in NAMES:
        study = optuna.load_study(study_name=name, storage=storage)
        assert study.direction == optuna.study.StudyDirection.MINIMIZE
        assert study.user_attrs["metric"] == "val_recon_mse"
        told = [t for t in study.trials if t.state == TrialState.COMPLETE]
        assert len(told) == 1
        loss = name.split("=")[1]
        mine = {r["cell_id"]: r for r in stored if r["loss"] == loss}
        assert {t.user_attrs["cell_id"] for t in told} == set(mine)
        for trial in told:  # the value Optuna holds is the stored selection metric
            assert trial.value == pytest.approx(mine[trial.user_attrs["cell_id"]]
                                                ["val_recon_mse"])
            assert set(trial.params) == {"lr", "latent_dim"}
        assert study.best_value == pytest.approx(min(r["val_recon_mse"]
                                                     for r in mine.values()))
        first[name] = told[0]

    progress = submit(parse_spec(SPEC.format(n=2)), results=str(results), out=io.StringIO())
    assert progress.done == 2  # one more trial per group
    storage = plain_storage(results)
    assert set(optuna.get_all_study_names(storage)) == NAMES  # the same studies, no new ones
    stored = rows(connect(str(results)), "SELECT cell_id FROM trials")
    for name in NAMES:
        told = [t for t in optuna.load_study(study_name=name, storage=storage).trials
                if t.state == TrialState.COMPLETE]
        cells = [t.user_attrs["cell_id"] for t in told]
        assert len(cells) == len(set(cells)) == 2  # warm-started: nothing added twice
        assert set(cells) <= {r["cell_id"] for r in stored}
        again = told[0]  # the same trial, not a copy rebuilt from the store's row
        assert (again.number, again.user_attrs["cell_id"], again.datetime_complete) == (
            first[name].number, first[name].user_attrs["cell_id"],
            first[name].datetime_complete)

    with pytest.raises(FileNotFoundError, match="not a tuned study"):
        adstudy.optuna_storage(str(results), "nothing_here")
    assert not (results / "nothing_here").exists()  # asking created nothing
    through_api = adstudy.optuna_study(str(results), "tj", "loss=mse")
    assert len(through_api.trials) == len(optuna.load_study(
        study_name="tj/loss=mse", storage=storage).trials)
    if importlib.util.find_spec("tensorboard"):  # the tuned trials as TensorBoard runs
        done = adstudy.export("tj", str(results), tensorboard=str(tmp_path / "tb"))
        assert done == {"tensorboard": (4, 0)}
        labels = {p.parent.parent.name for p in (tmp_path / "tb").rglob("events.out.tfevents.*")}
        assert labels == {f"loss={loss},trial={k}" for loss in ("mse", "lmse") for k in (0, 1)}


@pytest.fixture(params=["memory", "s3"])
def object_store(request, tmp_path):
    """A store whose filesystem cannot append: pyarrow's in-memory one, and S3 (moto's
    server on 127.0.0.1, started here)."""
    if request.param == "memory":
        fs = pafs._MockFileSystem()
        yield lambda: ResultsStore("results", "tj", fs)
        return
    from moto_s3 import s3_server

    with s3_server(tmp_path / "moto.log") as server:
        root = server.uri("optuna-journal")
        yield lambda: ResultsStore(root, "tj")


def test_an_object_store_keeps_the_journal_through_a_local_copy(object_store, tmp_path):
    """The journal is written back whole after each trial and read again by the next run."""
    store = object_store()
    journal = OptunaJournal(store)
    assert journal.copy is not None and not store.local
    study = optuna.create_study(study_name="tj/loss=mse", storage=journal.storage)
    study.add_trial(optuna.trial.create_trial(
        value=0.5, params={"lr": 0.01},
        distributions={"lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)}))
    journal.sync()
    written = store.read_bytes("optuna/journal.log")
    assert written and b"tj/loss=mse" in written
    copy = Path(journal.copy)
    journal.close()
    assert not copy.exists()  # no local copy left behind

    again = OptunaJournal(object_store())
    loaded = optuna.load_study(study_name="tj/loss=mse", storage=again.storage)
    assert [t.value for t in loaded.trials] == [0.5]
    path = tmp_path / "copy.log"  # the stored bytes are a journal plain optuna reads
    path.write_bytes(written)
    plain = JournalStorage(JournalFileBackend(str(path)))
    assert optuna.get_all_study_names(plain) == ["tj/loss=mse"]
    again.close()


def search_of(spec_text: str, results: str):
    from study.tuned_plan import plan_tuned

    store = ResultsStore(results, "tj")
    store.prepare()
    return plan_tuned(parse_spec(spec_text), store).search()


def test_a_journal_that_no_longer_fits_the_spec_is_rebuilt(tmp_path):
    """Trials asked and never told (a killed driver) are marked failed when the study is
    loaded again; a changed tune range starts the group's Optuna study afresh."""
    results = str(tmp_path / "results")
    search = search_of(SPEC.format(n=2), results)
    told, orphan = search.suggest("t1"), search.suggest("t2")  # one trial in each group
    search.complete("t1", {"kind": "final", "status": "complete", "val_recon_mse": 0.25})
    names = [f"tj/loss={Cell.from_dict(c['cells'][0]).loss}" for c in (told, orphan)]
    assert sorted(names) == sorted(NAMES)

    def trials(name):
        storage = plain_storage(tmp_path / "results")
        return optuna.load_study(study_name=name, storage=storage).trials

    assert [t.state for t in trials(names[0])] == [TrialState.COMPLETE]
    assert [t.state for t in trials(names[1])] == [TrialState.RUNNING]
    assert trials(names[0])[0].value == 0.25
    assert trials(names[0])[0].user_attrs["cell_id"] == Cell.from_dict(told["cells"][0]).cell_id

    search_of(SPEC.format(n=2), results)  # the same spec: loaded, the orphan failed
    assert [t.state for t in trials(names[0])] == [TrialState.COMPLETE]
    assert [t.state for t in trials(names[1])] == [TrialState.FAIL]

    search_of(SPEC.format(n=2).replace("[1e-3, 2e-2]", "[1e-4, 1e-3]"), results)
    assert trials(names[0]) == trials(names[1]) == []  # the old space is gone; the store
    # holds no rows to warm-start from (a real run would have stored its trials)
