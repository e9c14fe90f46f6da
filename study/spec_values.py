"""One value of a study file, checked: unknown keys named with a near miss, axis values
of the right type, named values ({name: ..., params}) made canonical: parameters checked
against their registry records (kind and allowed range) and those at their default left
out (trainables/param_records.py), so ``lamp`` and ``{name: lamp, base: l2}`` are one
cell. Shared by the spec's sections (study.spec, study.search_options) so none imports
another."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from typing import Any

from study.cell import CELL_DEFAULTS, CELL_TYPES, NAMED_FIELDS, canonical_json
from study.errors import SpecError
from trainables.param_records import normal_form, param_problem

# Parameters travel with their name ({name: lamp, base: l1}), never as separate axes.
AXIS_FIELDS = tuple(n for n in CELL_DEFAULTS if n != "study" and not n.endswith("_params"))


def did_you_mean(key: str, choices: tuple[str, ...] | list[str]) -> str:
    """'; did you mean X?' for a near miss (spelling or a prefix, as lr_rate -> lr), else
    the list of choices."""
    key = str(key)
    close = difflib.get_close_matches(key, list(choices), n=1)
    prefixes = sorted((c for c in choices if key.startswith(c + "_")), key=len, reverse=True)
    best = close or prefixes
    return f"; did you mean {best[0]!r}?" if best else f"; choose from {sorted(choices)}"


def unknown_keys(raw: Mapping, allowed: tuple[str, ...], where: str) -> list[str]:
    """A message for every key of ``raw`` not in ``allowed``, each with its near miss."""
    return [f"unknown key {key!r} in {where}{did_you_mean(key, allowed)}"
            for key in raw if key not in allowed]


def reject_unknown(raw: Mapping, allowed: tuple[str, ...], where: str) -> None:
    """Raises SpecError naming every key of ``raw`` not in ``allowed``."""
    found = unknown_keys(raw, allowed, where)
    if found:
        raise SpecError("; ".join(found) if len(found) > 1 else found[0])


class Problems:
    """Every problem found in one study file, so that one run reports them all (an
    identical message once)."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, *messages: str) -> None:
        self.found += [m for m in messages if m not in self.found]

    def check(self, fn: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        """``fn(*args)``; a SpecError it raises is noted, and ``default`` returned."""
        try:
            return fn(*args)
        except SpecError as err:
            self.add(str(err))
            return default

    def raise_any(self, origin: str = "") -> None:
        """Raises one SpecError holding every problem found (none: returns)."""
        raise_all(self.found, origin)


def raise_all(messages: list[str], origin: str = "") -> None:
    """One SpecError for all ``messages``: the message itself when there is one, else
    'N problems in ORIGIN:' and a line each."""
    if len(messages) == 1:
        raise SpecError(messages[0])
    if messages:
        where = f" in {origin}" if origin else ""
        raise SpecError(f"{len(messages)} problems{where}:\n"
                        + "\n".join(f"  - {m}" for m in messages))


def normalise_value(where: str, field: str, value: Any) -> Any:
    """Checks one axis value's type; named fields become (name, canonical params JSON)."""
    if field in NAMED_FIELDS:
        return _named_value(where, field, value)
    wanted = CELL_TYPES[field]
    number = None
    if wanted is float and isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if wanted is float and isinstance(value, str):
        try:
            number = float(value)  # YAML reads 1e-3 (no dot) as a string
        except ValueError:
            pass
    if number is not None:
        if not math.isfinite(number):
            raise SpecError(f"{where}: expected a finite number, got {value!r}")
        return number
    if wanted is int and isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:  # a Parquet int64 column holds it
            raise SpecError(f"{where}: {value!r} is out of range; use at most 2**63 - 1")
        return value
    if wanted is str and isinstance(value, str):
        return value
    raise SpecError(f"{where}: expected {wanted.__name__}, got {value!r}")


def _named_value(where: str, field: str, value: Any) -> tuple[str, str]:
    if isinstance(value, str):
        return (value, "{}")
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        params = {k: v for k, v in value.items() if k != "name"}
        try:
            canonical_json(params)
        except (TypeError, ValueError) as err:  # a YAML date or tag JSON cannot hold
            raise SpecError(
                f"{where}: parameters must be numbers, strings, lists or mappings "
                f"(quote dates), got {params!r}: {err}"
            ) from err
        problem = param_problem(field, value["name"], params)
        if problem:
            raise SpecError(f"{where}: {problem}")
        return (value["name"], canonical_json(normal_form(field, value["name"], params)))
    raise SpecError(f"{where}: expected a name or a mapping with 'name', got {value!r}")
