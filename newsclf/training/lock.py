"""The output directory of a training run: whether a run may write it, where the run writes, how
a finished model replaces an old one, and the lock that lets one run at a time write it.

What a run does depends on what the directory holds:

- nothing (absent or empty): the run writes into it;
- a model, an interrupted run (``checkpoint/``) or the files of a run stopped before its first
  epoch was saved: a new run is refused unless ``overwrite`` (the old content is replaced) or
  ``resume`` (the interrupted run there continues, in place);
- anything else: refused, whatever the options; newsclf never writes into, nor deletes, a
  folder of files that are not its own.

``overwrite`` trains into a staging directory beside the target (same parent folder,
``.NAME.newsclf-staging``) and swaps it in once the new model is complete (exported too), so the
old model keeps loading, unchanged, until then, and nothing stale (an inference export, a dev
report) survives. An interrupted ``overwrite`` leaves the old model in place and its staging
directory, which ``overwrite`` with ``resume`` continues and ``overwrite`` alone discards.

The lock is a file beside the directory (``.NAME.newsclf-train.lock``), not in it, so it stays
put while the directory is swapped, and it covers the staging directory too.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from pathlib import Path

from newsclf.errors import NewsclfError
from newsclf.files import (first_few, folder_content, in_layout, is_unfinished_write,
                           not_newsclfs)
from newsclf.layouts import (BEFORE_THE_FIRST_CHECKPOINT, CHECKPOINT_DIR, MODEL_LAYOUT,
                             MODEL_LAYOUT_DEPTH, TRAIN_LOG, is_model_dir)

STAGING_SUFFIX, REPLACED_SUFFIX, LOCK_SUFFIX = (".newsclf-staging", ".newsclf-replaced",
                                                ".newsclf-train.lock")
# Earlier releases kept the lock file inside the output directory; a killed run left it there.
INNER_LOCK_FILE = ".newsclf-train.lock"


# The name of the ensemble members' setup (newsclf.training.ensemble, tempfile.mkstemp)
_MEMBERS_SETUP = re.compile(r"\.members-setup-\w+\.tmp")


class OutputLock:
    """An exclusive lock on an output directory for the duration of a training run, held on the
    file ``path`` (beside the directory).

    The lock file is removed by its owner while still holding the lock; a run that opened the
    file just before that removal notices (the path no longer names the file it locked) and
    locks the new file instead, so two runs never both believe they hold the directory."""

    def __init__(self, path: Path, directory: Path):
        self.path, self.directory = Path(path), directory
        self.handle = None

    def __enter__(self) -> "OutputLock":
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                handle = open(self.path, "a+")
            except OSError as exc:
                raise NewsclfError(f"{self.directory}: cannot create the output directory's "
                                   f"lock file {self.path} ({exc.strerror}); the folder "
                                   "holding --output must be writable") from None
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _owner(handle)
                handle.close()
                raise self.refusal(owner) from None
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

    def holder(self) -> str | None:
        """Who holds the lock now (``"pid N"``), or None. Probes with a shared lock released
        at once, and only if the lock file exists (its owner keeps it while holding it)."""
        try:
            handle = open(self.path)
        except OSError:
            return None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _owner(handle)
        return None

    def refusal(self, owner: str) -> NewsclfError:
        return NewsclfError(f"{self.directory}: another 'newsclf train' ({owner}) is writing "
                            "this directory; wait for it or choose another --output")


def _owner(handle) -> str:
    """The owner a lock file names."""
    handle.seek(0)
    return handle.read().strip() or "another process"


class OutputDirectory:
    """The directory a training run is asked to write (``path``, as given), with the names
    beside it that the run uses: the lock, the staging directory of an ``overwrite`` run and
    the name the old model is moved to while the new one is swapped in (see the module
    docstring). Call :meth:`check` any time, the rest holding :meth:`lock`: :meth:`prepare`
    before training, :meth:`finish` once the model is complete."""

    def __init__(self, path: str | Path, overwrite: bool, resume: bool):
        self.path, self.overwrite, self.resume = Path(path), overwrite, resume
        # the names beside the real directory, so that every path naming it shares them
        self.real = Path(os.path.realpath(self.path))
        if not self.real.name:
            raise NewsclfError(f"{self.path}: cannot train into the root folder; choose "
                               "another --output")
        self.staging, self.replaced, self.lock_path = (
            self.real.with_name(f".{self.real.name}{suffix}")
            for suffix in (STAGING_SUFFIX, REPLACED_SUFFIX, LOCK_SUFFIX))

    def lock(self) -> OutputLock:
        return OutputLock(self.lock_path, self.path)

    def check(self) -> None:
        """Raise :class:`NewsclfError` (saying what to do) if the run may not write the
        directory; changes nothing. A directory another run is writing is refused as such,
        as the lock would (its content is that run's, not an interrupted run's)."""
        try:
            self._work_dir()
        except NewsclfError:
            lock = self.lock()
            owner = lock.holder()
            if owner is not None:
                raise lock.refusal(owner) from None
            raise

    def prepare(self) -> Path:
        """The directory the run writes, ready: the target itself or a staging directory
        beside it (fresh unless resuming). Completes a swap a crash interrupted first."""
        try:
            self._finish_interrupted_swap()
            work_dir = self._work_dir()
            if self.overwrite and not self.resume and self.staging.exists():
                shutil.rmtree(self.staging)  # an earlier --overwrite run, interrupted
            work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NewsclfError(f"{self.path}: cannot prepare the output directory "
                               f"({exc.strerror}: {exc.filename})") from None
        return work_dir

    def resume_flags(self, work_dir: Path) -> str:
        """The options that continue a run writing ``work_dir`` if it is interrupted."""
        return "--overwrite --resume" if work_dir == self.staging else "--resume"

    def finish(self, work_dir: Path) -> None:
        """End a complete run: remove the temporary files of earlier runs killed while writing
        this directory, swap a staged model in, then remove the checkpoint (kept until now so
        that a run interrupted while exporting or swapping can still be resumed)."""
        for path in work_dir.iterdir():
            if _temporary(path.name) and path.is_file():
                path.unlink(missing_ok=True)
        if work_dir == self.staging:
            # rename(2) cannot replace a non-empty directory, so the old model is renamed
            # aside first and the new one renamed in after it: the name never holds a mix of
            # the two (for an instant it names nothing), and a crash between the renames is
            # completed by the next run. Only then is the old model deleted.
            if self.real.exists():
                os.rename(self.real, self.replaced)
            os.rename(self.staging, self.real)
            shutil.rmtree(self.replaced, ignore_errors=True)
        shutil.rmtree(self.real / CHECKPOINT_DIR, ignore_errors=True)

    def _refuse_unswappable(self) -> None:
        """Refuse an ``overwrite`` whose swap (see :meth:`finish`) cannot rename the directory,
        or would take the current folder away from under the user's shell."""
        if _is_mount_point(self.real):
            raise NewsclfError(f"{self.path}: is a mount point, which --overwrite cannot "
                               "replace (it renames the directory); train into a new folder "
                               "instead")
        cwd = Path(os.getcwd()).resolve()
        if cwd == self.real or self.real in cwd.parents:
            raise NewsclfError(f"{self.path}: --overwrite replaces this directory, and the "
                               "current folder is inside it; run from another folder")

    def _finish_interrupted_swap(self) -> None:
        """Complete the swap of a run killed in :meth:`finish`, if any."""
        if not self.replaced.exists():
            return
        if not self.real.exists():  # stopped between the renames: the new model goes in
            os.rename(self.staging if self.staging.is_dir() else self.replaced, self.real)
        shutil.rmtree(self.replaced, ignore_errors=True)

    def _work_dir(self) -> Path:
        """Where the run writes, or a refusal saying what to do instead."""
        target = self.path
        if target.exists() and not target.is_dir():
            raise NewsclfError(f"{target}: exists and is not a directory; choose another --output")
        try:
            names = [p.name for p in target.iterdir()] if target.is_dir() else []
        except OSError as exc:
            raise NewsclfError(f"{target}: cannot read the output directory "
                               f"({exc.strerror})") from None
        names = _content(names)
        model = is_model_dir(target)
        if model and self.overwrite:
            _refuse_foreign_files(target, names, "--overwrite")
        checkpoint = (target / CHECKPOINT_DIR).is_dir()
        staged = self.staging.is_dir()
        # a folder that is no model is newsclf's only as an interrupted run
        foreign = _foreign(target, names) if names and not model else []
        if names and not model and not _holds_a_run(target, names, foreign):
            raise NewsclfError(
                f"{target}: {'no checkpoint to resume from: it ' if self.resume else ''}holds "
                f"files that are not a newsclf model ({first_few(foreign or names)}); training "
                "never writes into or replaces such a folder: choose another --output")
        if self.resume:
            if self.overwrite and staged:
                self._refuse_unswappable()
                return self.staging
            if staged and not checkpoint:
                raise NewsclfError(f"{target}: its interrupted run is an --overwrite run; "
                                   "continue it with --overwrite --resume")
            if model and not checkpoint:
                raise NewsclfError(f"{target}: no checkpoint to resume from: its model is "
                                   "finished; pass --overwrite without --resume to replace it")
            return target
        if not names:
            return target
        if self.overwrite:
            self._refuse_unswappable()
            return self.staging
        raise NewsclfError(f"{target}: {_what_to_do(model, checkpoint, staged)}")


def unfinished_run(directory: Path) -> str | None:
    """What training says of ``directory``, a folder without a model, when it holds a run that
    did not finish: interrupted (``holds an interrupted run; continue it with --resume, ...``)
    or stopped before its first epoch was saved; None when it does not."""
    try:
        names = _content(os.listdir(directory))
    except OSError:
        return None
    if not names or not _holds_a_run(directory, names, _foreign(directory, names)):
        return None
    staged = OutputDirectory(directory, overwrite=False, resume=False).staging.is_dir()
    return _what_to_do(False, CHECKPOINT_DIR in names, staged)


def _holds_a_run(directory: Path, names: list[str], foreign: list[str]) -> bool:
    """Whether a folder without a model, of content ``names`` (``foreign`` among them not
    newsclf's), is a training run's: interrupted, or stopped before its first checkpoint."""
    return not foreign and (CHECKPOINT_DIR in names or _stopped_before_saving(directory, names))


def _what_to_do(model: bool, checkpoint: bool, staged: bool) -> str:
    """Why a run without ``overwrite`` or ``resume`` may not write a directory of newsclf's
    that is not empty, and the options."""
    if checkpoint:
        options = ("holds an interrupted run; continue it with --resume, or pass --overwrite "
                   "to discard it and start afresh")
    elif model:
        options = ("already holds a model; pass --overwrite to replace it (it keeps loading "
                   "until the new one is complete), or choose another --output")
    else:
        options = ("holds the files of a run stopped before its first epoch was saved; pass "
                   "--overwrite to discard them, or choose another --output")
    if staged:
        options += "; its interrupted --overwrite run continues with --overwrite --resume"
    return options


def _is_mount_point(path: Path) -> bool:
    """Whether ``path`` is a mount point, a bind mount of a folder of the same file system
    included (which :func:`os.path.ismount` cannot tell: Linux lists them in mountinfo)."""
    if os.path.ismount(path):
        return True
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
            points = {line.split()[4] for line in mounts if len(line.split()) > 4}
    except OSError:
        return False
    # mountinfo writes a space, tab, newline and backslash of a path as octal escapes
    escaped = str(path).translate({ord(ch): f"\\{ord(ch):03o}" for ch in " \t\n\\"})
    return escaped in points


def _stopped_before_saving(directory: Path, names: list[str]) -> bool:
    """Whether ``directory`` (no model, no checkpoint) holds what a run stopped before its
    first checkpoint leaves: its training log (one epoch's record per line) and the model files
    it was writing, if any."""
    if TRAIN_LOG not in names or not set(names) <= BEFORE_THE_FIRST_CHECKPOINT:
        return False
    try:
        with open(directory / TRAIN_LOG, encoding="utf-8") as log:
            record = json.loads(log.readline())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "epoch" in record


def refuse_to_delete_foreign_files(directory: Path, replacing: str) -> None:
    """Refuse, naming them, to replace the model in ``directory`` (by ``replacing``) while it
    holds files newsclf did not write there: they would be deleted with the old model. Its
    own files go with it, ``newsclf evaluate``'s reports on the old model too."""
    _refuse_foreign_files(directory, _content(os.listdir(directory)), replacing)


def _refuse_foreign_files(directory: Path, names: list[str], replacing: str) -> None:
    """:func:`refuse_to_delete_foreign_files` for the :func:`_content` ``names`` of
    ``directory``."""
    foreign = _foreign(directory, names)
    if foreign:
        raise NewsclfError(f"{directory}: holds files newsclf did not write "
                           f"({first_few(foreign)}), "
                           f"and {replacing} replaces the whole directory: move them out first, "
                           "or choose another output directory")


def _foreign(directory: Path, names: list[str]) -> list[str]:
    """The entries among ``names`` (of ``directory``) that newsclf did not write there (see
    ``MODEL_LAYOUT``)."""
    return not_newsclfs(directory, names, MODEL_LAYOUT, _left_by_a_run)


def model_dir_owning(path: Path) -> Path | None:
    """The model directory (a model, or an interrupted run) of which ``path`` names one of the
    files newsclf writes there (``train_log.jsonl``, ``eval_dev/misclassified.csv``...), if
    any."""
    path = Path(os.path.realpath(path))
    for depth, folder in enumerate(path.parents[:MODEL_LAYOUT_DEPTH], 1):
        if (is_model_dir(folder) or (folder / CHECKPOINT_DIR).is_dir()) and \
                in_layout(path.parts[-depth:], MODEL_LAYOUT):
            return folder
    return None



def _content(names) -> list[str]:
    """The entries among ``names`` that count as a directory's content (sorted): not the lock
    file earlier releases kept inside, a killed run's temporary files or a file browser's."""
    return folder_content(names, _left_by_a_run)


def _temporary(name: str) -> bool:
    """Whether a directory entry is a temporary file of a training run, left there only by a
    run killed while it existed."""
    return is_unfinished_write(name) or _MEMBERS_SETUP.fullmatch(name) is not None


def _left_by_a_run(name: str) -> bool:
    """Whether a directory entry is what a killed training run (or an earlier release's lock)
    leaves inside a directory it wrote."""
    return name == INNER_LOCK_FILE or _temporary(name)
