"""Data-parallel training under ``paddle.distributed.launch``: starting the launcher, which
process this is, each process's share of a batch, and moving values between the processes.
Outside the launcher :class:`Parallel` is a single process and its methods are no-ops."""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# set for the processes :func:`launch` starts, whose closing lines it prints itself
LAUNCHED_BY_NEWSCLF = "NEWSCLF_LAUNCHED"
LAUNCHER_LOG = "launcher.log"


def under_launcher() -> bool:
    """Whether this process was started by ``paddle.distributed.launch``."""
    return "PADDLE_TRAINERS_NUM" in os.environ


def rank_share(batch: np.ndarray, world: int, rank: int) -> np.ndarray:
    """Process ``rank``'s texts of a global ``batch``: every ``world``-th from position
    ``rank``. A batch of fewer texts than processes (the epoch's last) is padded by repeating
    its texts: gradients are averaged across the processes at every step, so each must take
    every step, with at least one text."""
    if len(batch) < world:
        batch = np.resize(batch, world)
    return batch[rank::world]


class Parallel:
    """The data-parallel environment when launched by ``paddle.distributed.launch`` (world
    size > 1), else a single process. Only rank 0 writes files."""

    def __init__(self):
        self.world = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
        self.rank = int(os.environ.get("PADDLE_TRAINER_ID", "0"))
        if self.world > 1:
            import paddle.distributed as dist

            # it lists the Paddle flags newsclf sets (see newsclf.runtime) on stderr
            with contextlib.redirect_stderr(io.StringIO()):
                dist.init_parallel_env()
            self.rank, self.world = dist.get_rank(), dist.get_world_size()

    @property
    def writer(self) -> bool:
        return self.rank == 0

    def share(self, batch: np.ndarray) -> np.ndarray:
        """This process's texts of a global batch (see :func:`rank_share`)."""
        return batch if self.world == 1 else rank_share(batch, self.world, self.rank)

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if self.world == 1:
            return value
        import paddle.distributed as dist

        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def gather_rows(self, local: np.ndarray, total: int) -> np.ndarray:
        """Concatenate every rank's rows of a strided shard (row i on rank i % world) back
        into input order."""
        if self.world == 1:
            return local
        import paddle
        import paddle.distributed as dist

        per_rank = -(-total // self.world)
        padded = np.zeros((per_rank,) + local.shape[1:], dtype=local.dtype)
        padded[:len(local)] = local
        parts = []
        dist.all_gather(parts, paddle.to_tensor(padded))
        result = np.empty((total,) + local.shape[1:], dtype=local.dtype)
        for rank, part in enumerate(parts):
            rows = len(range(rank, total, self.world))
            result[rank::self.world] = part.numpy()[:rows]
        return result


def launch(arguments: list[str], nproc_per_node: int, ips: list[str], log) -> int:
    """Run ``newsclf ARGUMENTS`` in ``nproc_per_node`` processes on this machine (one of
    ``ips`` if given) through ``paddle.distributed.launch``, showing this machine's first
    process's output as it comes; returns the exit code (0: every process succeeded).

    The processes' logs go to a temporary folder, removed after a success and named by the
    line ``log`` gets about a failure. Interrupting this process (Ctrl-C, SIGTERM) stops every
    process; the interruption is raised again once they have stopped."""
    log_dir = Path(tempfile.mkdtemp(prefix="newsclf-launch-"))
    command = [sys.executable, "-m", "paddle.distributed.launch",
               "--nproc_per_node", str(nproc_per_node),
               *(["--ips", ",".join(ips)] if ips else []), "--log_dir", str(log_dir),
               "--", sys.executable, "-u", "-m", "newsclf", *arguments]
    with open(log_dir / LAUNCHER_LOG, "wb") as launcher_log:
        # its own session: the launcher hears of an interruption from this process only, once
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=launcher_log,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, LAUNCHED_BY_NEWSCLF: "1"})
    interrupted = None
    with _Follower(log_dir / "workerlog.0") as first_process:
        while process.poll() is None:
            try:
                first_process.show_new()
                time.sleep(0.3)
            except KeyboardInterrupt as exc:
                interrupted = interrupted or exc
                process.send_signal(signal.SIGTERM)  # the launcher stops the training processes
        first_process.show_new()
    if interrupted is not None:
        log(f"newsclf train: the processes' logs are in {log_dir}")
        raise interrupted
    if process.returncode == 0:
        shutil.rmtree(log_dir, ignore_errors=True)
        return 0
    failed = re.search(r"Container rank (\d+) status failed .* code (-?\d+) log (\S+)",
                       (log_dir / LAUNCHER_LOG).read_text(errors="replace"))
    if failed is None:
        log(f"newsclf train: paddle.distributed.launch failed (exit code {process.returncode}); "
            f"its log: {log_dir / LAUNCHER_LOG}")
        return process.returncode
    rank, code, worker_log = int(failed[1]), int(failed[2]), failed[3]
    log(f"newsclf train: process {rank} failed (exit code {code}); its log: {worker_log}")
    return code if code > 0 else 128 - code if code < 0 else process.returncode


class _Follower:
    """Copies what is appended to a log file to stderr."""

    def __init__(self, path: Path):
        self.path, self.file = path, None
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def __enter__(self) -> "_Follower":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.file is not None:
            self.file.close()

    def show_new(self) -> None:
        if self.file is None:
            if not self.path.exists():
                return
            self.file = open(self.path, "rb")
        text = self.decoder.decode(self.file.read())
        if text:
            sys.stderr.write(text)
            sys.stderr.flush()
