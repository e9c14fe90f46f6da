"""One driver at a time per study: a lease in the store, renewed as the driver's heartbeat.

``results/<study>/driver.lease`` (JSON) names the driver holding the study (host, pid, the
command, when it started), when it last renewed the lease and when the lease expires, and
what the driver reports of its progress (``adstudy status`` reads it). A second
``adstudy submit`` (or ``compact``) of the study is refused while a live driver holds it;
a lease whose driver died is taken over: at once when that driver ran on this host (its
pid is gone), else once the lease expired (``TTL_S`` after its last renewal).

Taking the lease:
* a local store: an exclusive ``fcntl.flock`` on ``<study>/.driver.lock``, held for the
  driver's life (the kernel releases it when the process dies, however it dies); the
  lease file is then written for status.
* an object store (no locks, no conditional writes through pyarrow): a documented
  best-effort protocol. Read the lease; if a live driver holds it, refuse. Else write
  ours (a fresh token), wait ``SETTLE_S``, and read it back: a driver that wrote after
  us holds it, and we refuse. Two drivers whose read-write windows (well under a second)
  overlap by more than ``SETTLE_S`` could both hold it; each renewal reads the lease
  back and says so loudly if another driver took it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import posixpath
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import pyarrow.fs as pafs

from study.errors import StoreError
from study.store import ResultsStore

LEASE = "driver.lease"
LOCK = ".driver.lock"
TTL_S = 30.0  # a lease not renewed for this long belongs to a driver that is gone
RENEW_S = 5.0  # heartbeat period
SETTLE_S = 1.0  # object stores: the wait before reading our lease back


def iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat(timespec="seconds")


def read_lease(store: ResultsStore) -> dict[str, Any] | None:
    """The study's lease record (None: none, or not readable)."""
    try:
        data = store.read_bytes(LEASE)
        return json.loads(data) if data else None
    except (OSError, ValueError):
        return None


def holder_record(store: ResultsStore, wait_s: float = 2.0) -> dict[str, Any]:
    """The lease record of the driver holding the lock: it writes the record just after
    it takes the lock, so a record not there yet is waited for a moment."""
    deadline = time.monotonic() + wait_s
    while True:
        current = read_lease(store)
        if current or time.monotonic() > deadline:
            return current or {}
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def is_live(record: dict[str, Any] | None, now: float | None = None) -> bool:
    """True when the record's driver may still be at work: not expired, and (when it ran on
    this host) its process is alive."""
    if not record:
        return False
    now = time.time() if now is None else now
    if record.get("expires", 0) < now:
        return False
    if record.get("host") == socket.gethostname() and isinstance(record.get("pid"), int):
        return pid_alive(record["pid"])
    return True


def held_message(store: ResultsStore, record: dict[str, Any], doing: str) -> str:
    age = max(0.0, time.time() - record.get("renewed", 0))
    left = max(0.0, record.get("expires", 0) - time.time())
    return (f"study {store.study!r} in {store.shown} is held by another driver: "
            f"'{record.get('command', '?')}' pid {record.get('pid')} on host "
            f"{record.get('host')!r}, since {record.get('started_at', '?')}, heartbeat "
            f"{age:.0f} s ago. Not {doing} it twice at once: wait for that driver to end "
            f"(adstudy status {store.study} shows it), or, if it is gone, its lease expires "
            f"in {left:.0f} s")


class Lease:
    """A held lease; renew() is the heartbeat, release() gives it back."""

    def __init__(self, store: ResultsStore, command: str, out: TextIO | None = None):
        self.store, self.command, self.out = store, command, out
        self.token = uuid.uuid4().hex
        self.started = time.time()
        self.info: Callable[[], dict[str, Any]] = dict
        self.lost: dict[str, Any] | None = None
        self._lock_fd: int | None = None
        self.made_folder = False
        self.made: list[str] = []  # the folders acquire() created, innermost first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self) -> dict[str, Any]:
        now = time.time()
        try:
            info = dict(self.info())
        except Exception as err:  # noqa: BLE001 - a heartbeat never stops the driver
            info = {"info_error": repr(err)}
        return {"token": self.token, "command": self.command, "host": socket.gethostname(),
                "pid": os.getpid(), "started": self.started, "started_at": iso(self.started),
                "renewed": now, "renewed_at": iso(now), "expires": now + TTL_S,
                "ttl_s": TTL_S, **info}

    def write(self) -> None:
        data = json.dumps(self.record(), indent=1, sort_keys=True).encode()
        self.store.write_bytes("", LEASE, data)

    def acquire(self, doing: str) -> None:
        """Raises StoreError when another live driver holds the study."""
        fs = self.store.fs
        self.made = new_folders(fs, self.store.path)
        self.made_folder = bool(self.made)
        fs.create_dir(self.store.path, recursive=True)
        if self.store.local:
            self._flock(doing)
            self.write()
            return
        current = read_lease(self.store)
        if is_live(current) and current.get("token") != self.token:
            raise StoreError(held_message(self.store, current, doing))
        self.write()
        time.sleep(SETTLE_S)
        current = read_lease(self.store)
        if not current or current.get("token") != self.token:
            raise StoreError(held_message(self.store, current or {}, doing))

    def _flock(self, doing: str) -> None:
        import fcntl

        path = f"{self.store.path}/{LOCK}"
        while True:  # the holder removes the lock file on release: lock the file now there
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                current = holder_record(self.store)
                raise StoreError(held_message(self.store, current, doing)) from None
            try:
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    self._lock_fd = fd
                    return
            except FileNotFoundError:
                pass
            os.close(fd)  # a released (removed) lock file: try the new one

    def renew(self) -> None:
        """The heartbeat: checks the lease is still ours (object stores), rewrites it."""
        if not self.store.local:
            current = read_lease(self.store)
            if current and current.get("token") != self.token:
                if self.lost is None and self.out is not None:
                    self.out.write(f"[{self.store.study}] warning: another driver "
                                   f"(pid {current.get('pid')} on {current.get('host')!r}) "
                                   "took this study's lease; cells may run twice\n")
                self.lost = current
                return
        self.write()

    def start_heartbeat(self, info: Callable[[], dict[str, Any]] | None = None) -> None:
        if info is not None:
            self.info = info
        self._thread = threading.Thread(target=self._beat, name="adstudy-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(RENEW_S):
            try:
                self.renew()
            except OSError:  # a store that fails now fails the driver's own writes too
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=RENEW_S + 5)
        with contextlib.suppress(OSError):
            current = read_lease(self.store)
            if current is None or current.get("token") == self.token:
                self.store.fs.delete_file(f"{self.store.path}/{LEASE}")
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):  # removed while held: see _flock
                os.unlink(f"{self.store.path}/{LOCK}")
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        if self.made_folder:  # a driver that stored nothing (refused, or the cluster never
            with contextlib.suppress(OSError):  # accepted it) leaves no folder behind
                fs = self.store.fs
                found = fs.get_file_info(pafs.FileSelector(self.store.path, recursive=True))
                if all(info.type == pafs.FileType.Directory for info in found):
                    fs.delete_dir(self.store.path)
                    for root in self.made[1:2]:  # the results root it made, when empty
                        if not fs.get_file_info(pafs.FileSelector(root)):  # (never higher)
                            fs.delete_dir(root)


def new_folders(fs: pafs.FileSystem, path: str) -> list[str]:
    """``path`` and those of its parents that do not exist yet, innermost first."""
    missing = []
    while path and fs.get_file_info(path).type == pafs.FileType.NotFound:
        missing.append(path)
        parent = posixpath.dirname(path.rstrip("/"))
        if parent == path:
            break
        path = parent
    return missing


def progress_info(progress: Any) -> dict[str, Any]:
    """What the heartbeat reports of a submit's progress (study.progress.Progress)."""
    return {"cells_total": int(progress.total), "cells_done": int(progress.done),
            "counts": dict(progress.counts)}


def damage_lines(store: ResultsStore, means: str) -> list[str]:
    """The driver's lines about what the store left out when it planned: each file once,
    then the cells that run again because part of them is damaged."""
    lines = [f"warning: cannot read {store.shown + path[len(store.path):]} ({why}); {means}"
             for path, why in store.unreadable.items()]
    if store.damaged:
        shown = ", ".join(f"{c} ({why})" for c, why in sorted(store.damaged.items())[:5])
        more = f", and {len(store.damaged) - 5} more" if len(store.damaged) > 5 else ""
        lines.append(f"{len(store.damaged)} damaged, rerun: {shown}{more}")
    return lines


@contextlib.contextmanager
def hold(store: ResultsStore, command: str, doing: str = "running",
         out: TextIO | None = None) -> Iterator[Lease]:
    """Holds the study's lease for the block, heartbeat running.

    Raises:
        StoreError: when another live driver holds it (naming it and when it expires).
    """
    lease = Lease(store, command, out)
    try:
        lease.acquire(doing)
    except OSError as err:
        raise StoreError(f"results dir {store.shown!r} is not writable: {err}") from err
    try:
        lease.start_heartbeat()
        yield lease
    finally:
        lease.release()
