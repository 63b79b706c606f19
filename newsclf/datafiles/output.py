"""Writing labelled rows: CSV, TSV, Excel (.xlsx) or JSON lines by the output's extension, or
CSV on standard output; into a temporary file beside the target that takes its name only when
everything is written, so a failed run leaves nothing under the output's name.

The values of a JSON lines input (numbers, true/false, null, lists, objects) are written back
as they were to JSON lines, and as their text (:func:`~newsclf.datafiles.records.json_text`) to
the other formats."""

from __future__ import annotations

import csv
import glob
import json
import os
import re
import shutil
import socket
import stat
import sys
import time
from pathlib import Path

import numpy as np

from newsclf.datafiles.records import json_text
from newsclf.errors import DataError, NewsclfError
from newsclf.files import disk_full, refuse_read_only

OUTPUT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".xlsx": "xlsx",
                  ".jsonl": "jsonl", ".ndjson": "jsonl"}  # standard output ("-"): CSV


def output_format(output_path: str) -> str:
    """The output's format, from its extension; other extensions are refused."""
    if output_path == "-":
        return "csv"
    suffix = Path(output_path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise NewsclfError(f"{output_path}: cannot write {suffix or 'a file without extension'}; "
                           "the output is .csv, .tsv or .txt (tab-separated), .xlsx, .jsonl, or "
                           "- for standard output")
    return OUTPUT_FORMATS[suffix]


class LabelledWriter:
    """Writes chunks of labelled rows (DataFrames indexed by input line) to ``output_path``;
    :meth:`commit` gives the file its name, :meth:`abort` removes what was written.
    ``excel``: CSV or TSV in UTF-8 with a BOM, which Excel opens as UTF-8 (on standard output
    too, for a shell that redirects it to a file)."""

    def __init__(self, output_path: str, input_path: str, excel: bool = False):
        if output_path != "-" and Path(output_path).is_dir():
            raise NewsclfError(f"{output_path}: is a directory; give an output file name")
        self.format = output_format(output_path)
        if excel and self.format == "jsonl":
            raise NewsclfError(f"{output_path}: --excel starts the file with a byte-order mark, "
                               "which JSON readers reject; leave --excel out for .jsonl output")
        self.source = "<stdin>" if input_path == "-" else input_path
        self.to_stdout = output_path == "-"
        self.excel = excel
        self.header_written = False
        self._sheet = None
        self.target = None
        if self.to_stdout:
            self.handle = sys.stdout
            return
        target = Path(output_path)
        if target.is_symlink():  # the file it points to is written, the link kept
            target = Path(os.path.realpath(target))
        if not target.parent.is_dir():
            raise NewsclfError(f"{target.parent}: output folder does not exist")
        _refuse_writing_over_input(input_path, target)
        _refuse_writing_into_a_model(target)
        refuse_read_only(target)
        self.target = target
        self.tmp = target.with_name(f".{target.name}.{partial_mark()}")
        remove_leftovers_of_killed_runs(target.parent, f".{target.name}.")
        try:  # now, not after labelling the whole input (an .xlsx file is written at the end)
            self.handle = open(self.tmp, "w", encoding="utf-8-sig" if excel else "utf-8",
                               newline="")
        except OSError as exc:
            raise NewsclfError(f"{target.parent}: cannot write the output there "
                               f"({exc.strerror}); choose a folder you can write to") from None
        if self.format == "xlsx":
            from newsclf.datafiles.excel import SheetWriter

            self.handle.close()
            self.handle = None
            self._sheet = SheetWriter(self.tmp, self.source)

    def write(self, frame) -> None:
        try:
            self._write(frame)
        except OSError as exc:
            raise disk_full(exc, self.target) or exc

    def _write(self, frame) -> None:
        header = not self.header_written
        if self.format == "xlsx":
            self._sheet.write(_text_fields(frame), header)
        elif self.format == "jsonl":
            repeated = sorted({name for name in frame.columns if list(frame.columns).count(name) > 1})
            if repeated:
                raise DataError(f"{self.source}: column name(s) {', '.join(map(repr, repeated))} "
                                "appear more than once, which JSON lines cannot hold; name every "
                                "column, or write .csv output")
            self.handle.write(_json_lines(frame))
        else:
            frame = _text_fields(frame)
            if header and self.excel and self.to_stdout:
                self.handle.write("\ufeff")  # a file gets it from its encoding, utf-8-sig
            options = {}
            if self.format == "tsv":
                _refuse_unwritable_tsv(frame, self.source, header)
                options["quoting"] = csv.QUOTE_NONE
            frame.to_csv(self.handle, sep="\t" if self.format == "tsv" else ",", index=False,
                         header=header, lineterminator="\n", float_format="%.6f", **options)
        self.header_written = True

    def commit(self) -> None:
        if self.to_stdout:
            return
        try:
            if self._sheet is not None:
                self._sheet.close()
            else:
                self.handle.close()
        except OSError as exc:
            raise disk_full(exc, self.target) or exc
        if self.target.is_file():  # a file replaced keeps its permissions
            os.chmod(self.tmp, stat.S_IMODE(self.target.stat().st_mode))
        self.tmp.replace(self.target)

    def abort(self) -> None:
        if self.to_stdout:
            return
        try:
            if self._sheet is not None:
                self._sheet.discard()
            if self.handle is not None:
                self.handle.close()  # what it still holds may not fit on the disk either
        except OSError:
            pass
        finally:
            self.tmp.unlink(missing_ok=True)


LEFTOVER_AGE = 60  # seconds without a change before a killed run's partial output is removed


def partial_mark() -> str:
    """The end of a partial output's name: this machine's name and this process's id, so that a
    later run tells what a run killed here left from the output of a run going on elsewhere
    (a folder shared between machines)."""
    return f"partial-{socket.gethostname()}-{os.getpid()}"


def remove_leftovers_of_killed_runs(folder: Path, prefix: str) -> None:
    """Remove the partial outputs in ``folder`` named ``prefix`` + :func:`partial_mark` that
    runs of this machine left when they were killed before their end (their process is gone
    and nothing in them has changed for :data:`LEFTOVER_AGE` seconds), saying so on stderr.
    Only where a process can be probed without harm (POSIX)."""
    if os.name != "posix":
        return
    mark = glob.escape(f"{prefix}partial-{socket.gethostname()}-")
    for leftover in folder.glob(mark + "*"):
        pid = leftover.name.rsplit("-", 1)[1]
        try:
            if (not pid.isdigit() or _process_exists(int(pid))
                    or time.time() - _last_change(leftover) < LEFTOVER_AGE):
                continue
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        except OSError:
            continue
        print(f"newsclf: removed {leftover}, left by an earlier run (process {pid}) that was "
              "killed before its end", file=sys.stderr)


def _last_change(path: Path) -> float:
    """When ``path``, or a file in it, last changed."""
    times = [path.stat().st_mtime]
    if path.is_dir():
        times += [inner.stat().st_mtime for inner in path.rglob("*")]
    return max(times)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _json_lines(frame) -> str:
    """The rows as JSON lines: every value as it was read (a JSON lines input's values exactly,
    text as strings) and the scores as pandas writes them (10 decimals; an empty one null)."""
    keys = [json.dumps(name, ensure_ascii=False) + ":" for name in frame.columns]
    values = [_json_values(frame.iloc[:, position]) for position in range(frame.shape[1])]
    return "".join("{" + ",".join(key + value for key, value in zip(keys, row)) + "}\n"
                   for row in zip(*values))


def _json_values(column) -> list[str]:
    if column.dtype.kind in "biuf":  # JSON numbers, true/false and null hold no comma
        written = column.to_json(orient="values")[1:-1]
        return written.split(",") if written else []
    return [json.dumps(value, ensure_ascii=False, separators=(",", ":")) for value in column]


def _text_fields(frame):
    """``frame`` with the values of a JSON lines input in text form (:func:`json_text`) for
    the text formats and Excel; a frame of text and scores is returned as it is."""
    from pandas.api.types import infer_dtype, is_object_dtype

    other = [position for position, dtype in enumerate(frame.dtypes)
             if is_object_dtype(dtype)
             and infer_dtype(frame.iloc[:, position], skipna=False) != "string"]
    if not other:
        return frame
    frame = frame.copy(deep=False)
    for position in other:
        frame.isetitem(position, np.array([json_text(value) for value in frame.iloc[:, position]],
                                          dtype=object))
    return frame


def _refuse_writing_over_input(input_path: str, target: Path) -> None:
    """Refuse an output that is the input file (same path, another path to it, or a link)."""
    if input_path != "-" and target.exists() and Path(input_path).exists() \
            and os.path.samefile(input_path, target):
        raise NewsclfError(f"{target}: this is the input file ({input_path}); write the labelled "
                           "rows to another file")


def _refuse_writing_into_a_model(target: Path) -> None:
    """Refuse an output that is one of the files of a model directory."""
    from newsclf.training.lock import model_dir_owning

    model_dir = model_dir_owning(target)
    if model_dir is not None:
        raise NewsclfError(f"{target}: a file of the model directory {model_dir}; write the "
                           "labelled rows to another file")


_TSV_BREAKERS = "[\t\r\n]"  # what would end a TSV field or row early


def _refuse_unwritable_tsv(frame, source: str, header: bool) -> None:
    """A TSV field is written as it is (as newsclf reads TSV back): a tab or line break in one
    cannot be written, and is refused naming the input line."""
    fix = "write .csv output instead, or remove them from the input"
    if header:
        for name in frame.columns:
            if re.search(_TSV_BREAKERS, str(name)):
                raise DataError(f"{source}: column name {name!r} holds a tab or line break, "
                                f"which a TSV file cannot hold; {fix}")
    for position, name in enumerate(frame.columns):
        column = frame.iloc[:, position]
        if column.dtype.kind == "f":
            continue
        broken = column.astype(str).str.contains(_TSV_BREAKERS).to_numpy()
        if broken.any():
            raise DataError(f"{source}:{frame.index[broken.argmax()]}: column {name!r} holds a tab "
                            f"or line break, which a TSV file cannot hold; {fix}")
