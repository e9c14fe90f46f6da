"""Ray Tune's scratch folder for one driver (``adstudy-tune-<pid>-*`` in the temp dir).

The store, not Tune's experiment state, is the record of a study, so the driver removes
its scratch folder when it ends; a driver that was killed cannot. Every new driver sweeps
the folders of drivers that are gone, as the store sweeps its temp files: a folder whose
pid no longer runs (or that names none) and that nothing touched for ``STALE_S``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

PREFIX = "adstudy-tune-"
STALE_S = 3600.0  # a live driver's Tune writes its experiment state far more often
_PID = re.compile(rf"{PREFIX}(\d+)-")


def make_scratch() -> str:
    """A new scratch folder for this driver, after sweeping those of killed drivers."""
    sweep_scratch()
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")


def last_touched(folder: Path) -> float:
    """The newest mtime of the folder and its entries two levels down (Tune's
    experiment state lives in <scratch>/<study>/)."""
    newest = folder.stat().st_mtime
    for child in folder.iterdir():
        newest = max(newest, child.lstat().st_mtime)
        if child.is_dir() and not child.is_symlink():
            newest = max([newest, *(c.lstat().st_mtime for c in child.iterdir())])
    return newest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_scratch(root: str | None = None, older_than_s: float = STALE_S) -> list[str]:
    """Removes the scratch folders of drivers that are gone; returns their paths."""
    swept = []
    cutoff = time.time() - older_than_s
    for folder in Path(root or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        match = _PID.match(folder.name)
        try:
            if not folder.is_dir() or folder.is_symlink():
                continue
            if match and int(match.group(1)) != os.getpid() and _alive(int(match.group(1))):
                continue
            if match and int(match.group(1)) == os.getpid():
                continue
            if last_touched(folder) >= cutoff:
                continue
        except OSError:  # another user's, or removed meanwhile
            continue
        shutil.rmtree(folder, ignore_errors=True)
        swept.append(str(folder))
    return swept
