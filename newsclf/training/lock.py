"""The output-directory lock: one training run writes a model directory at a time."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from newsclf.errors import NewsclfError

LOCK_FILE = ".newsclf-train.lock"


class OutputLock:
    """An exclusive lock on the output directory for the duration of a training run.

    The lock file is removed by its owner while still holding the lock; a run that opened the
    file just before that removal notices (the path no longer names the file it locked) and
    locks the new file instead, so two runs never both believe they hold the directory."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / LOCK_FILE
        self.handle = None

    def __enter__(self) -> "OutputLock":
        while True:
            handle = open(self.path, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or "another process"
                handle.close()
                raise NewsclfError(f"{self.path.parent}: another 'newsclf train' ({owner}) is "
                                   "writing this directory; wait for it or choose another "
                                   "--output") from None
            try:
                current = os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            handle.close()  # locked a file its owner had just removed: try the new one
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)
        self.handle.close()
