"""A call run in a daemon thread while the caller does other work (study.submit: the
cell checks while the main thread starts Ray, which must start in the main thread: Ray's
processes are killed when the thread that started them ends)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


def in_background(name: str, fn: Callable[..., Any], *args: Any) -> Future:
    """Starts ``fn(*args)`` in a daemon thread (a Ctrl-C in the main thread never waits
    for it); the Future's result() waits for it and returns its value or raises its
    exception."""
    future: Future = Future()

    def target() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as err:  # noqa: BLE001 - raised again by result()
            future.set_exception(err)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future
