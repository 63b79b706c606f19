"""Writing files safely: atomic replacement, JSON, content hashes, and telling the files newsclf
wrote into a folder from the user's.

Every file newsclf writes (model directories, checkpoints, reports) goes through
:func:`write_atomic`: the bytes go to a temporary file beside the target, are flushed to disk,
and the temporary file is renamed over the target, so a reader sees the old content or the new,
never a mix, and a process killed at any moment leaves at most a stray ``.NAME.*.tmp`` file.

For tests of that promise, the environment variable ``NEWSCLF_CRASH_AT_WRITE=N`` ends the
process (exit status 86, like a ``kill -9``: no clean-up runs) at the N-th atomic write of the
process, after the temporary file is complete and before it is renamed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
from pathlib import Path

from newsclf.errors import NewsclfError

CRASH_ENV = "NEWSCLF_CRASH_AT_WRITE"
CRASH_EXIT_STATUS = 86
_writes_done = 0


def _crash_if_requested() -> None:
    global _writes_done
    _writes_done += 1
    wanted = os.environ.get(CRASH_ENV)
    if wanted and wanted.isdigit() and _writes_done == int(wanted):
        os._exit(CRASH_EXIT_STATUS)


# What file browsers leave in a folder they showed (macOS Finder, Windows Explorer)
FOLDER_METADATA = (".DS_Store", "Thumbs.db", "desktop.ini")
# the name write_atomic gives a file while it writes it: .NAME.PID-8 hex digits.tmp
_UNFINISHED_WRITE = re.compile(r"\..+\.\d+-[0-9a-f]{8}\.tmp")


def is_unfinished_write(name: str) -> bool:
    """Whether a directory entry is a file :func:`write_atomic` was writing, left there only by
    a process killed while it wrote."""
    return _UNFINISHED_WRITE.fullmatch(name) is not None


def first_few(names) -> str:
    """The first three of a folder's ``names``, for an error message (``a, b, c, ...``)."""
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def names_pattern(*names: str) -> re.Pattern:
    """A pattern matching exactly the given file names."""
    return re.compile("|".join(map(re.escape, names)))


def folder_content(names, leftover=lambda name: False) -> list[str]:
    """The entries among ``names`` that count as a folder's content (sorted): not a file
    :func:`write_atomic` left unfinished, a file browser's metadata, or what ``leftover`` says
    a killed run of the caller's left."""
    return sorted(name for name in names if not is_unfinished_write(name)
                  and name not in FOLDER_METADATA and not leftover(name))


def not_newsclfs(directory: Path, names: list[str], layout,
                 leftover=lambda name: False) -> list[str]:
    """The entries among ``names`` (of ``directory``) that newsclf did not write there, by
    ``layout``: (a pattern of its file names, ((a pattern of its folder names, the layout of
    such a folder), ...)). What a folder of newsclf's holds besides its own files is named by its
    path (``inference/notes.txt``); inside it, :func:`folder_content` with ``leftover`` decides
    what counts. A symbolic link is never newsclf's."""
    files, folders = layout
    foreign = []
    for name in names:
        path = directory / name
        if path.is_symlink() or not path.is_dir():
            if path.is_symlink() or not files.fullmatch(name):
                foreign.append(name)
            continue
        inner = next((held for pattern, held in folders if pattern.fullmatch(name)), None)
        try:
            listing = folder_content(os.listdir(path), leftover) if inner is not None else None
        except OSError:
            listing = None
        foreign += ([name] if listing is None else
                    [f"{name}/{entry}" for entry in not_newsclfs(path, listing, inner, leftover)])
    return foreign


def in_layout(parts: tuple[str, ...], layout) -> bool:
    """Whether the relative path ``parts`` (of a folder of ``layout``, as for
    :func:`not_newsclfs`) names a file newsclf writes there."""
    files, folders = layout
    if len(parts) == 1:
        return files.fullmatch(parts[0]) is not None
    inner = next((held for pattern, held in folders if pattern.fullmatch(parts[0])), None)
    return inner is not None and in_layout(parts[1:], inner)


def disk_full(exc: OSError, path: str | Path | None) -> NewsclfError | None:
    """The one-line error for ``exc`` when it says the disk (or the user's quota) is full while
    writing ``path`` (None: not known), naming the file and the space left there; None for any
    other error."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    fix = "free some space, or write elsewhere, and run the command again"
    if path is None:
        return NewsclfError(f"no space left on the device; {fix}")
    path = Path(path)
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MB free there now"
    except OSError:
        free = "its free space unknown"
    return NewsclfError(f"{path}: no space left on the device ({free}); nothing was written "
                        f"to it: {fix}")


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write a file so that readers see either the old content or the new, never a mix."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    # 0o666 here lets the kernel apply the process umask, as for any ordinary new file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _crash_if_requested()
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and (full := disk_full(exc, path)) is not None:
            raise full from None
        raise


def refuse_read_only(path: Path) -> None:
    """Refuse, in one line, to replace a file of the user's that nobody may write: renaming a
    new file over it would replace it all the same (for root, whatever its permissions)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) and not mode & 0o222:
        raise NewsclfError(f"{path}: the file is read-only; make it writable (chmod u+w) or "
                           "write to another file")


def write_json(path: str | Path, value) -> None:
    """Write ``value`` as indented UTF-8 JSON (Chinese kept readable), atomically."""
    write_atomic(path, json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_texts(*columns) -> str:
    """One hash of columns of texts, their order included: each text is hashed with its
    length, and each column with its number of texts, so no two different columns hash alike."""
    digest = hashlib.sha256()
    for column in columns:
        count = 0
        for text in column:
            data = str(text).encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little") + data)
            count += 1
        digest.update(count.to_bytes(8, "little"))
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
