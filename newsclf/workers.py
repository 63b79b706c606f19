"""Worker processes: starting them without re-running the caller's script.

newsclf starts workers with the ``spawn`` method (a fresh interpreter: Paddle and jieba are not
fork-safe). By default a spawned interpreter first re-runs the parent's main script, so a user
script without an ``if __name__ == "__main__":`` guard would train or predict again in every
worker. newsclf's workers need nothing from that script, so it is hidden while they start.
"""

from __future__ import annotations

import multiprocessing
import sys
from contextlib import contextmanager


@contextmanager
def _main_script_hidden():
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def start_process(target, args: tuple) -> multiprocessing.Process:
    """Start ``target(*args)`` in a spawned daemon process (killed if this process exits)."""
    process = multiprocessing.get_context("spawn").Process(target=target, args=args, daemon=True)
    with _main_script_hidden():
        process.start()
    return process


def start_pool(workers: int, initializer, initargs: tuple):
    """A ``multiprocessing.Pool`` of spawned processes, each set up by ``initializer``."""
    with _main_script_hidden():
        return multiprocessing.get_context("spawn").Pool(workers, initializer=initializer,
                                                         initargs=initargs)


def message_queue():
    """A queue that spawned workers can report through."""
    return multiprocessing.get_context("spawn").Queue()
