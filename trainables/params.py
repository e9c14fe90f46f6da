"""A registry parameter's record: its default, kind and allowed values (Param), and
the constructors trainables/param_records.py declares every registry's parameters with.
No torch here (the driver reads the records)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

KINDS = ("float", "int", "bool", "str", "ints")  # ints: a list of whole numbers >= 1


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter: its default, kind and allowed values (None: not checked here)."""

    default: Any
    kind: str
    low: float | None = None
    high: float | None = None
    open_low: bool = False  # low itself is not allowed
    open_high: bool = False
    choices: tuple = ()
    odd: bool = False
    nullable: bool = False  # None (YAML null) allowed
    kept_with: str = ""  # written out, at its default too, whenever this parameter is set

    def allowed(self) -> str:
        """The allowed values in words, e.g. 'a number in (0, 1)'."""
        if self.choices:
            return f"choose from {list(self.choices)}"
        noun = {"float": "a number", "int": "a whole number", "bool": "true or false",
                "str": "a string", "ints": "a list of whole numbers >= 1"}[self.kind]
        noun = f"an odd {noun.removeprefix('a ')}" if self.odd else noun
        if self.low is not None and self.high is not None:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            return f"it must be {noun} in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None:
            return f"it must be {noun} {'>' if self.open_low else '>='} {_num(self.low)}"
        return f"it must be {noun}" + (" or null" if self.nullable else "")

    def coerce(self, value: Any) -> Any:
        """The value as the entry takes it: a float written as YAML text ('1e-3', which
        YAML reads as a string) becomes a number; anything else is kept as written (so
        an id written before this check existed stays the same)."""
        if self.kind == "float" and isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return value
            return number if math.isfinite(number) else value
        return value

    def problem(self, value: Any) -> str:
        """Why ``value`` is not allowed ('' = it is)."""
        if value is None:
            return "" if self.nullable else self.allowed()
        if not _of_kind(self.kind, value):
            return self.allowed()
        if self.choices:
            return "" if value in self.choices else self.allowed()
        if self.kind in ("float", "int") and not _in_range(self, value):
            return self.allowed()
        if self.odd and value % 2 == 0:
            return self.allowed()
        return ""

    def is_default(self, value: Any) -> bool:
        """Whether ``value`` is the default (1 and 1.0 are; True and 1 are not)."""
        if isinstance(value, bool) or isinstance(self.default, bool):
            return type(value) is type(self.default) and value == self.default
        if isinstance(value, list | tuple) or isinstance(self.default, list | tuple):
            both = isinstance(value, list | tuple) and isinstance(self.default, list | tuple)
            return both and list(value) == list(self.default)
        return value == self.default


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _of_kind(kind: str, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "float":
        return isinstance(value, int | float) and math.isfinite(value)
    if kind == "int":
        return isinstance(value, int) or isinstance(value, float) and value.is_integer()
    if kind == "str":
        return isinstance(value, str)
    return isinstance(value, list | tuple) and all(  # ints
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)


def _in_range(param: Param, value: float) -> bool:
    if param.low is not None and (value < param.low or param.open_low and value == param.low):
        return False
    return param.high is None or value < param.high or not param.open_high and value == param.high


def number(default: float, low: float | None = None, high: float | None = None,
           open_low: bool = False, open_high: bool = False, **more: Any) -> Param:
    return Param(default, "float", low, high, open_low, open_high, **more)


def whole(default: int | None, low: int | None = None, high: int | None = None,
          **more: Any) -> Param:
    return Param(default, "int", low, high, **more)


def choice(default: Any, *choices: Any) -> Param:
    kind = "int" if isinstance(default, int) and not isinstance(default, bool) else "str"
    return Param(default, kind, choices=choices)


def flag(default: bool) -> Param:
    return Param(default, "bool")


def text(default: str) -> Param:
    return Param(default, "str")


def ints(default: tuple | None, nullable: bool = False, kept_with: str = "") -> Param:
    return Param(default, "ints", nullable=nullable, kept_with=kept_with)
