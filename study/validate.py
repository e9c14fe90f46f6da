"""Validating a study's cells before anything runs, without torch when it can be.

study.checks tries every field against the registries and probes each model, loss and
optimizer on its data's shape: that needs torch, whose import alone takes 2-3 s on 2 CPU
cores. Its answer depends only on the cells' fields, the npz files' shapes and the code,
so a passing set of cells is remembered (an empty file named by a hash of all three,
under ``$ADSTUDY_CACHE`` or ``$XDG_CACHE_HOME/adstudy`` or ``~/.cache/adstudy``, in
``checked/``): the next ``describe`` or ``submit`` of the same cells skips torch. A
problem is never remembered, and any change to trainables/, the checks or the library
versions gives another hash.
The data files are looked for every time (study.datafiles; no torch either).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from study.cell import Cell
from study.datafiles import missing_files
from study.spec_values import raise_all
from trainables.datasets import DATASETS

ROOT = Path(__file__).resolve().parents[1]
# The code the checks' answer depends on, and the libraries that run it.
CODE = (ROOT / "trainables", ROOT / "study" / "checks.py", ROOT / "study" / "probe.py")
LIBRARIES = ("torch", "numpy", "kornia", "scipy", "scikit-learn")


def check(cells: Sequence[Cell], data_root: str | None, shape_root: str | None = None) -> None:
    """Raises one SpecError naming every problem of the cells (study.checks.check_cells),
    the data files under ``data_root`` included (None: not looked for)."""
    raise_all(all_problems(cells, data_root, shape_root))


def all_problems(cells: Sequence[Cell], data_root: str | None,
                 shape_root: str | None = None) -> list[str]:
    """What check raises, as a list ([] when the cells pass)."""
    found = problems(cells, shape_root if shape_root is not None else data_root)
    if data_root is not None:
        found += missing_files(cells, data_root)
    return found


def known_good(cells: Sequence[Cell], shape_root: str | None) -> bool:
    """True when the same cells passed before with the same code (no torch to ask)."""
    return marker(cells, shape_root).exists()


def marker(cells: Sequence[Cell], shape_root: str | None) -> Path:
    return cache_dir() / "checked" / cells_key(cells, shape_root)


def problems(cells: Sequence[Cell], shape_root: str | None) -> list[str]:
    """Every field and probe problem of the cells (study.checks.cell_problems); [] at
    once when the same cells passed before with the same code."""
    passed = marker(cells, shape_root)
    if passed.exists():
        return []
    from study.checks import cell_problems  # torch: only when the answer is not known

    found = cell_problems(list(cells), shape_root)
    if not found:
        try:
            passed.parent.mkdir(parents=True, exist_ok=True)
            passed.touch()
        except OSError:  # a read-only home: check again next time
            pass
    return found


def cache_dir() -> Path:
    explicit = os.environ.get("ADSTUDY_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "adstudy"


def cells_key(cells: Sequence[Cell], shape_root: str | None) -> str:
    """A hash of what the checks' answer depends on: the distinct cells (study name
    aside), the image shape of each dataset as seen from ``shape_root``, the code."""
    distinct = sorted({json.dumps({**c.to_dict(), "study": ""}, sort_keys=True) for c in cells})
    root = Path(shape_root or ".").expanduser()
    datasets = {(c.dataset, c.dataset_params): c for c in cells}  # one shape read each
    shapes = sorted(_shape(c, root) for c in datasets.values())
    text = json.dumps([code_version(), distinct, shapes])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _shape(cell: Cell, root: Path) -> str:
    info = DATASETS.get(cell.dataset)
    if info is None:
        return f"{cell.dataset}: unknown"
    layout = info.layout(root, cell.params("dataset"))
    return f"{cell.dataset} {cell.dataset_params}: {None if layout is None else layout.shape}"


@functools.cache
def code_version() -> str:
    """A hash of the checked code's sources and the versions of the libraries it runs."""
    digest = hashlib.sha256()
    for path in CODE:
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.name.encode() + b"\0" + file.read_bytes())
    for name in LIBRARIES:
        try:
            digest.update(f"{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(name.encode())
    return digest.hexdigest()
