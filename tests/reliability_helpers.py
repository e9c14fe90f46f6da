"""Helpers of the reliability tests: a store's bytes, a disk that fills up, process groups.

FullDisk is a real local filesystem (pyarrow's) whose N-th data file write runs out of
space half-way (OSError ENOSPC, as a full disk raises) and every write after it fails at
once, until ``free()`` is called: the store code under test runs unchanged on top of it.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

DATA_DIRS = ("/trials/", "/epochs/", "/scores/")


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` -> its bytes (None for a folder)."""
    if not root.exists():
        return {}
    found: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        found[str(path.relative_to(root))] = path.read_bytes() if path.is_file() else None
    return found


class _Writer:
    """A file object that writes until the disk is out of space, then raises ENOSPC."""

    def __init__(self, path: str, disk: FullDiskHandler, limit: int | None):
        self.file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.path, self.disk, self.limit, self.closed = path, disk, limit, False

    def write(self, data) -> int:
        data = bytes(data)
        if self.disk.full or (self.limit is not None and len(data) > self.limit):
            room = 0 if self.disk.full else self.limit
            self.file.write(data[:room])  # a full disk takes what fits, then fails
            self.disk.full = True
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)
        if self.limit is not None:
            self.limit -= len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()
        self.closed = True

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.file.tell()


class FullDiskHandler(pafs.FileSystemHandler):
    """pyarrow's LocalFileSystem, but the ``fail_at``-th data file stream (1-based) gets
    ``room`` bytes, and the disk stays full after it."""

    def __init__(self, fail_at: int, room: int = 64):
        self.local = pafs.LocalFileSystem()
        self.fail_at, self.room = fail_at, room
        self.data_streams, self.full = 0, False

    def free(self) -> None:
        self.full, self.fail_at = False, 10**9

    def open_output_stream(self, path, metadata):
        limit = None
        if any(d in path for d in DATA_DIRS):
            self.data_streams += 1
            if self.data_streams == self.fail_at:
                limit = self.room
        return pa.PythonFile(_Writer(path, self, limit), mode="w")

    # Everything else is the local filesystem's.
    def get_type_name(self):
        return "full-disk"

    def normalize_path(self, path):
        return self.local.normalize_path(path)

    def get_file_info(self, paths):
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self.local.get_file_info(selector)

    def create_dir(self, path, recursive):
        self.local.create_dir(path, recursive=recursive)

    def delete_dir(self, path):
        self.local.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self.local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        raise OSError("not on this test filesystem")

    def delete_file(self, path):
        self.local.delete_file(path)

    def move(self, src, dest):
        self.local.move(src, dest)

    def copy_file(self, src, dest):
        self.local.copy_file(src, dest)

    def open_input_stream(self, path):
        return self.local.open_input_stream(path)

    def open_input_file(self, path):
        return self.local.open_input_file(path)

    def open_append_stream(self, path, metadata):
        raise OSError("not on this test filesystem")


def full_disk(fail_at: int) -> tuple[pafs.PyFileSystem, FullDiskHandler]:
    handler = FullDiskHandler(fail_at)
    return pafs.PyFileSystem(handler), handler


def kill_group(pid: int) -> None:
    """SIGKILLs the process group a test started (start_new_session=True), if alive."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
