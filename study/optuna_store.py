"""Where a tuned study's Optuna studies live: one Optuna journal per study in its results
folder, ``<results>/<study>/optuna/journal.log``, holding one Optuna study per group,
named ``<study>/<group label>`` (``quickstart_tuned/loss=mse normal_class=0``).

Optuna reads it as it is, so its own tools work on a study while it runs and after:

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend("results/s/optuna/journal.log"))
    optuna.load_study(study_name="s/loss=mse normal_class=0", storage=storage)
    optuna-dashboard results/s/optuna/journal.log

The store's rows stay the record of what ran (study.tuned_plan counts a group's budget
from them); the journal is the search's own memory beside them: a submission loads each
group's Optuna study from it (trials asked and never told, of a driver that was killed,
are marked failed), adds the stored trials it lacks, and goes on asking in it. A journal
whose study no longer fits the spec (another selection metric, or a tuned axis whose
range or choices changed) is rebuilt from the stored rows alone.

Object stores (s3://, gs://) cannot append to a file, so there the journal is kept in a
local temporary file during the run, read from the store when the run starts and written
back to it (whole, atomically) after every trial the search is told of.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import warnings

import optuna

from study.store import ResultsStore

FOLDER = "optuna"
NAME = "journal.log"


def journal_path(store: ResultsStore) -> str:
    """The journal's path in the store's filesystem."""
    return f"{store.path}/{FOLDER}/{NAME}"


def file_storage(path: str) -> optuna.storages.JournalStorage:
    """Optuna's journal storage over a local file (created when missing)."""
    with warnings.catch_warnings():  # the journal backend is marked experimental in some
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # releases
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(path))


class OptunaJournal:
    """The study's journal: opened in place on a local store, or through a local copy
    that ``sync`` writes back on an object store (see the module doc)."""

    def __init__(self, store: ResultsStore):
        self.store = store
        self.copy: str | None = None
        if store.local:
            os.makedirs(f"{store.path}/{FOLDER}", exist_ok=True)
            self.path = journal_path(store)
        else:
            handle, self.copy = tempfile.mkstemp(prefix="adstudy-optuna-", suffix=".log")
            os.close(handle)
            with open(self.copy, "wb") as out:
                out.write(store.read_bytes(f"{FOLDER}/{NAME}") or b"")
            self.path = self.copy
            atexit.register(self.close)  # the last write-back, and no copy left behind
        self.storage = file_storage(self.path)

    def sync(self) -> None:
        """On an object store: the local copy, written back whole (atomically)."""
        if self.copy is None:
            return
        with open(self.copy, "rb") as stream:
            self.store.write_bytes(FOLDER, NAME, stream.read())

    def close(self) -> None:
        """Writes back a last time and removes the local copy."""
        if self.copy is not None:
            self.sync()
            os.unlink(self.copy)
            self.copy = None


def study_name(study: str, label: str) -> str:
    """A group's Optuna study name: ``<study>/<group label>``."""
    return f"{study}/{label or 'all'}"


def fits(study: optuna.Study, space: dict, metric: str) -> bool:
    """Whether a stored Optuna study can go on under the current spec: the same selection
    metric, and every trial's parameters drawn from today's distributions."""
    if study.user_attrs.get("metric") != metric:
        return False
    for trial in study.get_trials(deepcopy=False):
        for name, dist in trial.distributions.items():
            if space.get(name) != dist:
                return False
    return True
