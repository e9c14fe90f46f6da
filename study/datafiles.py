"""Which of a study's data files are missing on this machine, and how to get them.

Torch-free: each dataset's record (trainables.datasets.DatasetInfo.files) looks for its
files without reading an image. Problems that differ only in one part (MVTec's 15
category folders, say) are said once, with the parts that differ listed in braces.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

from study.cell import Cell
from trainables.datasets import DATASETS

# Middles longer than this are not folded into one message: they are not one token.
MAX_MIDDLE = 40


def files_problem(cell: Cell, data_root: str) -> str:
    """Why the cell's dataset would not find its files ('' = it would, or needs none, or
    was told to download them)."""
    check = DATASETS[cell.dataset].files
    try:
        return check(Path(data_root).expanduser(), cell.params("dataset")) if check else ""
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # not an npz, ...
        return (f"dataset {cell.label('dataset')}: its file cannot be read as the dataset "
                f"needs ({type(err).__name__}: {str(err)[:200]})")


def missing_files(cells: Iterable[Cell], data_root: str) -> list[str]:
    """Every dataset's missing files under ``data_root``, each problem once, and problems
    of one dataset that differ in one token (a folder name) folded into one line."""
    by_dataset: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()
    for cell in cells:
        if cell.dataset not in DATASETS or (cell.dataset, cell.dataset_params) in seen:
            continue  # an unknown name is a field problem (study.checks), not a file one
        seen.add((cell.dataset, cell.dataset_params))
        problem = files_problem(cell, data_root)
        found = by_dataset.setdefault(cell.dataset, [])
        if problem and problem not in found:
            found.append(problem)
    return [line for found in by_dataset.values() for line in collapse(found)]


def collapse(messages: list[str]) -> list[str]:
    """``messages`` with those that share all but one middle part folded into one:
    'a/{x, y, z}/b ...'. Messages that differ more are kept as they are."""
    if len(messages) < 2:
        return list(messages)
    prefix = os.path.commonprefix(messages)
    suffix = os.path.commonprefix([m[::-1] for m in messages])[::-1]
    prefix = prefix[: _cut(prefix) + 1]
    shortest = min(len(m) for m in messages)
    suffix = suffix[len(suffix) - _start(suffix, shortest - len(prefix)):]
    middles = [m[len(prefix): len(m) - len(suffix)] for m in messages]
    if not prefix or any(not x or len(x) > MAX_MIDDLE for x in middles):
        return list(messages)
    return [f"{prefix}{{{', '.join(middles)}}}{suffix}"]


def _cut(prefix: str) -> int:
    """Index of the last separator in ``prefix`` (-1: none): a middle starts after it."""
    return max(prefix.rfind(c) for c in "/ '\"")


def _start(suffix: str, room: int) -> int:
    """Length of ``suffix`` from its first separator on, within ``room`` characters."""
    suffix = suffix[-room:] if room > 0 else ""
    found = [i for i in (suffix.find(c) for c in "/ '\"") if i >= 0]
    return len(suffix) - min(found) if found else 0
