"""Reading a study file's text and YAML strictly: a key written twice in one mapping is an
error (PyYAML's own loaders keep the last one silently, so a second ``vary:`` would drop
every axis of the first), and a file that is not UTF-8 text is named as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from study.errors import SpecError


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping holding the same key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error names it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found the key {key!r} twice (first on line {first.line + 1}); "
                    "a key may appear once in a mapping: merge the two", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, origin: str) -> Any:
    """The YAML document in ``text``.

    Raises:
        SpecError: for invalid YAML or a key repeated in a mapping, naming ``origin`` and
            the line.
    """
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as err:
        raise SpecError(f"{origin} is not valid YAML: {err}") from err


def read_text(path: Path) -> str:
    """A study file's text.

    Raises:
        SpecError: when it cannot be read or is not UTF-8 text (a binary file, latin-1).
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SpecError(f"cannot read study file {str(path)!r}: {err.strerror}") from err
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(
            f"study file {str(path)!r} is not UTF-8 text (byte {data[err.start]:#04x} at "
            f"offset {err.start}); save it as UTF-8 YAML"
        ) from err
