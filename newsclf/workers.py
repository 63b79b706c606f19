"""Worker processes: how newsclf starts them, how they take signals, and a pool that reports a
dead worker instead of waiting for it forever.

newsclf starts workers with the ``spawn`` method (a fresh interpreter: Paddle and jieba are not
fork-safe). By default a spawned interpreter first re-runs the parent's main script, so a user
script without an ``if __name__ == "__main__":`` guard would train or predict again in every
worker. newsclf's workers need nothing from that script, so it is hidden at every process start,
including the ones a pool makes later, on demand.

Workers ignore SIGINT from their first instruction on: a terminal's Ctrl-C reaches the whole
process group, and the process that started the workers decides how they stop. SIGTERM keeps its
default action, so a worker it reaches ends at once and quietly (and the process that started
it stops as terminated: :class:`~newsclf.runtime.Terminated`). Neither signal cuts a process
start in half: the starting process handles them once the start is over. A pool's worker ends
itself when the process that started it is gone (killed with SIGKILL, it could not stop its
workers): its calls have no one left to return to.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess

from newsclf.errors import NewsclfError
from newsclf.runtime import HELD_BACK_SIGNALS, Terminated, signals_held_back


def available_cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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


def _run_as_worker(target, args: tuple):
    """A worker's first step: ignore SIGINT (dropping one held back while it started), take
    SIGTERM again, then run ``target(*args)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_BACK_SIGNALS)
    return target(*args)


def _pool_worker(parent_pid: int, initializer, initargs: tuple):
    """A pool worker's set-up: watch for the end of its parent, then ``initializer(*initargs)``."""

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="newsclf-parent-watch", daemon=True).start()
    initializer(*initargs)


class _WorkerProcess(SpawnProcess):
    """Started with the main script hidden and SIGINT and SIGTERM held back (in this process
    until the start is over, in the new one until :func:`_run_as_worker`)."""

    def start(self):
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()  # starting it would unblock the signals held back
        with _main_script_hidden(), signals_held_back():
            super().start()


class _WorkerContext(SpawnContext):
    """The ``spawn`` start method, every process started as a :class:`_WorkerProcess`; the
    processes it made are in ``processes``."""

    def __init__(self):
        super().__init__()
        self.processes: list[_WorkerProcess] = []

    def Process(self, *args, **kwargs):  # noqa: N802 (multiprocessing's name)
        process = _WorkerProcess(*args, **kwargs)
        self.processes.append(process)
        return process


def start_process(target, args: tuple) -> multiprocessing.Process:
    """Start ``target(*args)`` in a spawned daemon process (killed if this process exits)."""
    process = _WorkerProcess(target=_run_as_worker, args=(target, args), daemon=True)
    process.start()
    return process


def message_queue():
    """A queue that spawned workers can report through."""
    return multiprocessing.get_context("spawn").Queue()


class WorkerPool:
    """Up to ``workers`` worker processes, started as calls need them (never more than calls
    submitted), each set up once by ``initializer(*initargs)``.

    :meth:`result` turns the death of a worker (killed by the kernel when memory runs out, say)
    into a :class:`~newsclf.errors.NewsclfError` (:class:`~newsclf.runtime.Terminated` for
    SIGTERM). End with :meth:`close` (the workers exit once their calls are done) or
    :meth:`stop` (they are killed at once); both may be repeated.
    """

    def __init__(self, workers: int, initializer, initargs: tuple = ()):
        self._context = _WorkerContext()
        self._executor = ProcessPoolExecutor(workers, mp_context=self._context,
                                             initializer=_run_as_worker,
                                             initargs=(_pool_worker,
                                                       (os.getpid(), initializer, initargs)))

    def submit(self, fn, *args) -> Future:
        try:
            return self._executor.submit(fn, *args)
        except BrokenProcessPool:
            raise self._worker_died() from None

    def result(self, future: Future):
        """The result of a submitted call, waiting for it."""
        try:
            return future.result()
        except BrokenProcessPool:
            raise self._worker_died() from None

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def stop(self) -> None:
        started = [process for process in self._context.processes if process.pid is not None]
        for process in started:
            process.kill()
        for process in started:
            process.join()
        # A worker killed while sending a result leaves the pool's manager thread reading the
        # rest of that message for ever: this process holds the pipe's other end too. With
        # every worker gone, closing that end turns the wait into an end of file the pool
        # handles as a broken pool, so shutting it down (and exiting) cannot hang. Only this
        # end: the pool's own threads close the others, and closing them here races with that.
        result_queue = getattr(self._executor, "_result_queue", None)
        if result_queue is not None:
            result_queue._writer.close()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _worker_died(self) -> BaseException:
        """The error to raise once the pool has found a worker dead (see :func:`ended_by`)."""
        self._executor.shutdown(wait=True)  # every worker has ended: every exit code is known
        # When one worker dies the pool terminates the others (SIGTERM): their ends say nothing.
        codes = [process.exitcode for process in self._context.processes]
        code = next((c for c in codes if c not in (None, -signal.SIGTERM)),
                    -signal.SIGTERM if -signal.SIGTERM in codes else None)
        if code is None or code >= 0:
            return NewsclfError(f"a worker process stopped unexpectedly (exit code {code})")
        return ended_by(-code, "a worker process")


def ended_by(signum: int, what: str, then: str = "") -> BaseException:
    """The error to raise when the worker process ``what`` was ended by signal ``signum``:
    :class:`~newsclf.runtime.Terminated` for SIGTERM (sent to the process group, it ends the
    workers and this process alike, and this process may find a worker dead before it has
    handled its own), else a :class:`~newsclf.errors.NewsclfError` (the kernel kills with
    SIGKILL when memory runs out); ``then`` ends its message."""
    if signum == signal.SIGTERM:
        return Terminated()
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = "unknown signal"
    if signum == signal.SIGKILL:
        return NewsclfError(f"{what} died (killed by signal {signum}, {name}; perhaps out of "
                            f"memory); try fewer --workers{then}")
    return NewsclfError(f"{what} died (killed by signal {signum}, {name}){then}")
