"""Ctrl-C that ends a run cleanly, in every phase.

Python raises KeyboardInterrupt wherever the interpreter happens to be when SIGINT arrives:
inside a framework's context manager (TF's `with tf.device(...)`, whose exit then fails with
"Exiting device scope without proper scope nesting" instead), half way through writing a
record. Under `deferred()` the first Ctrl-C only asks to stop; the run calls `check()` where
stopping is safe (between batches, after building or compiling, between epochs, between
benchmark rows), which raises KeyboardInterrupt there, outside every framework's scope. A
second Ctrl-C stops at once, as Python would.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator

_ASKED = threading.Event()


def _ask(signum, frame) -> None:
    if _ASKED.is_set():  # the second Ctrl-C: at once
        raise KeyboardInterrupt
    _ASKED.set()
    print("\nCtrl-C: stopping at the end of the current step (Ctrl-C again to stop at once)",
          file=sys.stderr, flush=True)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """While inside, the first SIGINT sets a flag that `check()` turns into KeyboardInterrupt.
    Nothing changes outside the main thread (signal handlers belong to it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _ask)
    _ASKED.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _ASKED.clear()


def requested() -> bool:
    """Whether a Ctrl-C asked the run to stop (and no check() has raised for it yet)."""
    return _ASKED.is_set()


def check() -> None:
    """KeyboardInterrupt here if a Ctrl-C asked to stop: call it where stopping is safe."""
    if _ASKED.is_set():
        _ASKED.clear()
        raise KeyboardInterrupt
