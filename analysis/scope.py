"""Which studies a claim may pool, and the analysis settings each study was submitted with.

Pairs never cross studies (``study`` is in every pairing key). A claim pools the pairs of
several studies only when those studies differ in nothing but the compared axis (the same
values of every other cell field) and share their analysis settings; otherwise each study,
or each group of alike studies, is a scope of its own with claims of its own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from analysis.views import pairing_key, rows
from study.analysis_options import DEFAULTS, AnalysisOptions, parse_analysis
from study.errors import SpecError


@dataclasses.dataclass(frozen=True)
class Scope:
    """Studies whose pairs one claim pools, and the settings they share."""

    studies: tuple[str, ...]
    options: AnalysisOptions

    @property
    def name(self) -> str:
        return "+".join(self.studies)


def stored_specs(con) -> dict[str, Any]:
    """Each study's spec as stored in its study.json, parsed YAML (None: none stored).

    Raises:
        SpecError: when a stored spec is not YAML, naming the study.
    """
    found = {}
    for r in rows(con, "SELECT study, spec_yaml FROM studies ORDER BY study"):
        try:
            found[r["study"]] = yaml.safe_load(r["spec_yaml"]) if r["spec_yaml"] else None
        except yaml.YAMLError as err:
            raise SpecError(f"cannot read the spec in study.json of {r['study']!r}: {err}") from err
    return found


def study_options(con) -> dict[str, AnalysisOptions]:
    """Each study's ``analysis:`` settings, from the spec in its study.json (defaults when a
    study has no study.json or no analysis section).

    Raises:
        SpecError: when a stored analysis section is invalid, naming the study.
    """
    found = {}
    for study, raw in stored_specs(con).items():
        block = raw.get("analysis") if isinstance(raw, dict) else None
        found[study] = parse_analysis(block, f"analysis (study.json of {study!r})")
    return found


def curve_subsamples(con) -> dict[str, int]:
    """Studies whose epoch test figures are on a fixed subsample of the test images
    (``run.curve_test_images`` > 0 in the spec in study.json: trainables.curves), with N."""
    found = {}
    for study, raw in stored_specs(con).items():
        run = raw.get("run") if isinstance(raw, dict) else None
        images = run.get("curve_test_images") if isinstance(run, dict) else None
        if isinstance(images, int) and images > 0:
            found[study] = images
    return found


def frames(con, axis: str = "loss") -> dict[str, tuple[Any, ...]]:
    """Per study with trials: the sorted values of every cell field but the study and the
    compared axis."""
    fields = [f for f in pairing_key(axis) if f != "study"]
    listed = ", ".join(f"list_sort(list_distinct(list(CAST({f} AS VARCHAR)))) AS {f}"
                       for f in fields)
    found = rows(con, f"SELECT study, {listed} FROM trials GROUP BY study ORDER BY study")
    return {r["study"]: tuple(tuple(r[f]) for f in fields) for r in found}


def scopes(con, axis: str = "loss") -> list[Scope]:
    """The scopes of the studies behind a connection, alike studies pooled."""
    options = study_options(con)
    groups: dict[tuple, list[str]] = {}
    for study, frame in frames(con, axis).items():
        groups.setdefault((frame, options.get(study, DEFAULTS)), []).append(study)
    return [Scope(tuple(studies), key[1]) for key, studies in groups.items()]


def scope_of(found: list[Scope]) -> dict[str, Scope]:
    """study -> its scope."""
    return {study: scope for scope in found for study in scope.studies}
