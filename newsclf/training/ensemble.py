"""Ensemble members trained side by side, one worker process (and CPU core) each.

Paddle's CPU kernels train on one thread, so on a machine with N free cores N members take about
as long as one. Members report progress through a queue; each leaves its finished result in its
own checkpoint, which is read back here. The result does not depend on how many run at once.
"""

from __future__ import annotations

import os
import pickle
import queue as queue_module
import signal
import sys
import tempfile
from pathlib import Path

from newsclf.errors import NewsclfError
from newsclf.runtime import Terminated, raise_terminated, tune_allocator
from newsclf.training.checkpoint import load_checkpoint
from newsclf.training.distributed import Parallel
from newsclf.training.loop import MemberResult, RunSetup, member_seed, train_member
from newsclf.workers import ended_by, message_queue, start_process


def train_members_in_processes(setup: RunSetup, report, workers: int) -> list[MemberResult]:
    """Train the ensemble members in up to ``workers`` processes at once (one CPU core each:
    Paddle's CPU kernels use one thread); their reports reach ``report`` here. Each member
    leaves its finished result in its checkpoint, which is read back from there."""
    messages = message_queue()
    waiting, running, errors = list(range(setup.config.ensemble_size)), {}, {}
    # The setup (every encoded text) reaches the members through a file, not as a process
    # argument: multiprocessing writes arguments into a pipe whose read end it keeps open itself,
    # so a member dying while it starts would leave this process blocked on that write forever.
    # It is a temporary file of the output directory, not of the system's temporary folder: if
    # this process is killed outright (the OOM killer), it stays beside the checkpoints, and the
    # run that completes the directory removes it (newsclf.training.lock).
    handle, name = tempfile.mkstemp(prefix=".members-setup-", suffix=".tmp",
                                    dir=setup.output_dir)  # readable by this user only
    setup_path = Path(name)

    def pump(timeout: float) -> None:
        try:
            while True:
                kind, payload = messages.get(timeout=timeout)
                timeout = 0
                if kind == "error":
                    errors[payload[0]] = payload[1]
                else:
                    report(kind, payload)
        except queue_module.Empty:
            pass

    try:
        with os.fdopen(handle, "wb") as file:
            pickle.dump(setup, file, protocol=pickle.HIGHEST_PROTOCOL)
        while waiting or running:
            while waiting and len(running) < workers:
                member = waiting.pop(0)
                running[member] = start_process(_member_process,
                                                (member, str(setup_path), messages, os.getpid()))
            pump(0.2)
            for member, process in list(running.items()):
                if process.exitcode is None:
                    continue
                del running[member]
                if process.exitcode != 0:
                    pump(1.0)
                    if member in errors:
                        raise errors[member]
                    if process.exitcode < 0:
                        raise ended_by(-process.exitcode, f"training ensemble member {member + 1}",
                                       "; every member's last finished epoch is kept in its "
                                       "checkpoint: continue with --resume")
                    raise RuntimeError(f"training ensemble member {member + 1} failed (exit "
                                       f"code {process.exitcode}); its error is printed above")
        pump(0.5)
    except BaseException as exc:
        for process in running.values():
            process.terminate()  # a member stops between two writes (see _member_process)
        for process in running.values():
            process.join(timeout=10)
            if process.exitcode is None:
                process.kill()
                process.join()
        if isinstance(exc, KeyboardInterrupt):
            report("log", "interrupted: every member's last finished epoch is kept in "
                          "its checkpoint; continue with --resume")
        raise
    finally:
        setup_path.unlink(missing_ok=True)
    results = []
    for member in range(setup.config.ensemble_size):
        state, tensors = load_checkpoint(setup.checkpoint_dir(member), setup.output_dir)
        results.append(MemberResult.from_checkpoint(member_seed(setup.config.seed, member),
                                                     state, tensors))
    return results


def _member_process(member: int, setup_path: str, messages, parent_pid: int) -> None:
    """A worker process's body: train one member, reporting through ``messages``."""
    tune_allocator()  # a process of newsclf's own; it ignores SIGINT (see newsclf.workers)
    # SIGTERM (to the process group, or from the parent stopping) ends the member between two
    # statements, not inside a checkpoint write whose temporary file would stay; it still
    # ends by that signal, which the parent reads as "terminated"
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        try:
            _train_member_here(member, setup_path, messages, parent_pid)
        finally:
            # its work is over (finished, failed or stopped): a SIGTERM from now on, while the
            # interpreter exits, too (the parent stopping the run another member failed), ends
            # it as it is rather than as an exception with no one left to catch it
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _train_member_here(member: int, setup_path: str, messages, parent_pid: int) -> None:
    setup = pickle.loads(Path(setup_path).read_bytes())  # written by this run's parent

    def report(kind, payload):
        if os.getppid() != parent_pid:  # the parent is gone (killed): stop, the checkpoint stays
            os._exit(1)
        messages.put((kind, payload))

    try:
        train_member(member, setup, report, Parallel())
    except NewsclfError as exc:
        messages.put(("error", (member, exc)))  # its class too (e.g. TrainingDiverged)
        messages.close()
        messages.join_thread()
        sys.exit(2)
    messages.close()
    messages.join_thread()
