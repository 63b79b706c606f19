"""Labelling on Dask: a Dask DataFrame partition by partition, or data files chunk by chunk on a
cluster, with the model loaded once per worker process and the same columns and values as
:func:`newsclf.predict.predict_file`.

Dask is the optional ``dask`` extra and is imported only when one of these functions runs.
Every worker must reach the model directory (and, for :func:`predict`, whatever the DataFrame
reads) at the same path as the client.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from newsclf.arguments import check_count
from newsclf.datafiles.output import (OUTPUT_FORMATS, partial_mark,
                                      remove_leftovers_of_killed_runs)
from newsclf.errors import DataError, NewsclfError, NoTextsError
from newsclf.files import first_few
from newsclf.predict import (added_column_names, checked_chunks, label_frame,
                             refuse_column_clashes)
from newsclf.predictor import check_prediction_options

__all__ = ["predict", "predict_files", "cluster_client", "worker_stats"]

INSTALL_HINT = 'pip install "newsclf[dask]"'
PART_ROWS = 5000  # rows of one output part of predict_files (a chunk of an input file)

_process_predictors: dict = {}  # (model dir, backend) -> (stamp, Predictor, lock), here
_process_lock = threading.Lock()
_stats = {"models_loaded": 0, "partitions_labelled": 0}


def worker_stats() -> dict:
    """What this process has done: ``models_loaded`` (models read from disk) and
    ``partitions_labelled``; run it on the workers with ``client.run(worker_stats)``."""
    return dict(_stats)


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise NewsclfError(f"labelling with Dask needs the dask extra: {INSTALL_HINT}") from None


def _model_stamp(model_dir: Path) -> tuple:
    """What changes when a model directory is written again (its files' sizes and times), so a
    worker kept between jobs reloads a model retrained or exported again at the same path."""
    from newsclf.layouts import EXPORT_DIR

    entries = []
    for folder in (model_dir, model_dir / EXPORT_DIR):
        if folder.is_dir():
            for entry in os.scandir(folder):
                if entry.is_file():
                    status = entry.stat()
                    entries.append((entry.name, status.st_mtime_ns, status.st_size))
    return tuple(sorted(entries))


def _process_predictor(model_dir: str, backend: str, stamp: tuple):
    """The process's Predictor for ``model_dir`` as of ``stamp`` (loaded on first use, then
    kept) and the lock that lets one thread at a time use it (Paddle Inference is not
    thread-safe)."""
    key = (model_dir, backend)
    with _process_lock:
        if key not in _process_predictors or _process_predictors[key][0] != stamp:
            from newsclf.predictor import Predictor

            predictor = Predictor.from_dir(model_dir, backend, threads=_engine_threads())
            _process_predictors[key] = (stamp, predictor, threading.Lock())
            _stats["models_loaded"] += 1
        _stats["partitions_labelled"] += 1
        return _process_predictors[key][1:]


def _engine_threads() -> int | None:
    """In a Dask worker, as many engine threads as the worker has (it classifies one partition
    at a time); elsewhere the engine's default."""
    try:
        from distributed import get_worker

        return max(1, get_worker().state.nthreads)
    except (ImportError, ValueError):
        return None


def _as_text(value, column: str) -> str:
    if isinstance(value, str):
        return value
    import pandas as pd

    if pd.api.types.is_scalar(value) and pd.isna(value):
        return ""  # a missing value is an empty text
    raise DataError(f"column {column!r} holds {type(value).__name__} {value!r}, not text; give "
                    "the column of texts, read as strings")


def label_partition(frame, text_column: str, model: tuple, top_k: int, probabilities: bool,
                    long_text: str, batch_size: int):
    """``frame`` (pandas) with the prediction columns added, labelled by this process's model
    ``(model dir, backend, stamp)``; missing texts count as empty. The input frame is left
    unchanged."""
    predictor, lock = _process_predictor(*model)

    def classify(texts):
        texts = [_as_text(text, text_column) for text in texts]
        with lock:
            return predictor.classify(texts, batch_size, long_text)

    return label_frame(frame.copy(deep=False), text_column, classify, predictor.classes_, top_k,
                       probabilities)


def predict(ddf, model_dir, text_column: str = "text", top_k: int = 1,
            probabilities: bool = False, long_text: str = "truncate", batch_size: int = 256,
            backend: str = "auto"):
    """Label a Dask DataFrame: every column kept, in order, then the columns
    :func:`~newsclf.predict.predict_file` writes (``pred_label``, ``pred_score``, with
    ``top_k > 1`` ``top{i}_label``/``top{i}_score``, with ``probabilities`` ``prob_<class>``,
    and ``error``: "empty text" or "no known token" for a row with nothing to classify, whose
    predictions are then empty). Lazy, like any Dask DataFrame: compute it, or write it with
    ``to_csv``/``to_parquet``. Each worker process loads the model once, on its first partition,
    and keeps it. Missing values in the text column count as empty texts. Labels are those of
    ``predict_file``; a score can differ in its last decimal where the partitions cut the rows
    otherwise than ``predict_file``'s chunks (texts are batched with their neighbours)."""
    from newsclf.modeldir import load_model_dir

    dd = _require("dask.dataframe")
    if not isinstance(ddf, dd.DataFrame):
        raise NewsclfError(f"ddf must be a Dask DataFrame, not {type(ddf).__name__}")
    check_prediction_options(top_k=top_k, long_text=long_text, batch_size=batch_size,
                             backend=backend)
    files = load_model_dir(model_dir)
    if text_column not in ddf.columns:
        raise DataError(f"no column {text_column!r} in the DataFrame (it has "
                        f"{', '.join(map(repr, ddf.columns))}); pass text_column=")
    if ddf[text_column].dtype.kind in "biufcmM":
        raise DataError(f"column {text_column!r} holds {ddf[text_column].dtype} values, not "
                        "texts; pass the column of texts as text_column=")
    classes = list(files.labels)
    refuse_column_clashes(ddf.columns, added_column_names(classes, top_k, probabilities))
    meta = label_frame(ddf._meta.copy(), text_column,
                       lambda texts: (np.zeros((0, len(classes)), dtype=np.float32), []),
                       classes, top_k, probabilities)
    model = (str(files.path.resolve()), backend, _model_stamp(files.path))
    return ddf.map_partitions(label_partition, text_column, model, top_k, probabilities,
                              long_text, batch_size, meta=meta)


@contextlib.contextmanager
def cluster_client(scheduler: str, workers: int | None = None):
    """A ``distributed.Client`` for ``scheduler``: a scheduler's address (``tcp://host:8786``),
    or ``local`` for a cluster of ``workers`` processes (default: one per core, at most 4) of one
    thread each on this machine, stopped at the end."""
    distributed = _require("distributed")
    _require("dask.dataframe")
    if scheduler == "local":
        import logging

        from newsclf.workers import available_cores

        workers = check_count(workers, "workers", optional=True)
        cluster = distributed.LocalCluster(n_workers=workers or min(4, available_cores()),
                                           threads_per_worker=1, processes=True,
                                           dashboard_address=":0", silence_logs=logging.ERROR)
        with cluster, distributed.Client(cluster) as client:
            yield client
        return
    if workers is not None:
        raise NewsclfError("workers goes with a local cluster; a running cluster has the "
                           "workers it was started with")
    try:
        client = distributed.Client(scheduler)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = str(exc).split("\n")[0] or type(exc).__name__
        raise NewsclfError(f"cannot reach the Dask scheduler at {scheduler} ({reason}); start "
                           "one with 'dask scheduler', or use 'local'") from None
    with client:
        yield client


def _input_files(inputs) -> list[str]:
    """The files named by ``inputs`` (a path, a glob pattern, or a list of them), in order."""
    patterns = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    paths = []
    for pattern in map(str, patterns):
        if glob.has_magic(pattern):
            matched = sorted(path for path in glob.glob(pattern) if os.path.isfile(path))
            if not matched:
                raise DataError(f"{pattern}: no file matches")
            paths.extend(matched)
        elif not os.path.isfile(pattern):
            raise DataError(f"{pattern}: no such file")
        else:
            paths.append(pattern)
    return paths


def _prepare_output_dir(output_dir: Path) -> bool:
    """Check (or create) the output directory; True if it was created."""
    if output_dir.exists():
        if not output_dir.is_dir():
            raise NewsclfError(f"{output_dir}: not a directory; --output names a directory "
                               "that receives one part per input chunk")
        remove_leftovers_of_killed_runs(output_dir, ".")
        held = sorted(child.name for child in output_dir.iterdir())
        if held:
            raise NewsclfError(f"{output_dir}: not empty (holds {first_few(held)}); give a new "
                               "or empty directory")
        return False
    if output_dir.suffix.lower() in OUTPUT_FORMATS:
        raise NewsclfError(f"{output_dir}: a file name; the output is a directory that receives "
                           "part-00000.csv, part-00001.csv, ...")
    if not output_dir.parent.is_dir():
        raise NewsclfError(f"{output_dir.parent}: output folder does not exist")
    output_dir.mkdir()
    return True


def predict_files(model, inputs, output_dir, client, *, text_column=None,
                  fmt: str | None = None, header: bool | None = None, sheet: str | None = None,
                  encoding: str | None = None, skip_rows: int = 0, top_k: int = 1,
                  probabilities: bool = False, batch_size: int = 256, part_rows: int = PART_ROWS,
                  excel: bool = False, long_text: str = "truncate", backend: str = "auto",
                  progress: bool = True, log=None) -> dict:
    """Label data files on a Dask cluster (``client``): ``inputs`` is a path, a glob pattern
    (``big-*.csv``) or a list of them, read in order with newsclf's readers (every layout rule
    of :func:`~newsclf.predict.predict_file`; the layout options apply to every file). Each file
    is cut into chunks of ``part_rows`` rows; each chunk is labelled by a worker and written as
    one CSV part, ``part-00000.csv``, ``part-00001.csv``, ..., numbered across the files in
    order, with every column of its file, rows in input order, and the prediction columns.

    Files are read here, a few chunks ahead of the workers, so memory stays flat. The parts are
    written under a temporary folder inside ``output_dir`` (which must be new or empty) and
    moved into it at the end: a failed run leaves no part. ``log`` receives a line per file
    saying how it is read, and one for a file without a text (empty, or its texts all blank),
    which ends no run: the other files are labelled. Returns ``{"rows", "empty", "parts",
    "files", "seconds"}``.
    """
    from newsclf.datafiles.output import LabelledWriter
    from newsclf.datafiles.texts import ReadOptions
    from newsclf.labelling import label_in_order, progress_bar
    from newsclf.modeldir import load_model_dir

    distributed = _require("distributed")
    check_prediction_options(top_k=top_k, long_text=long_text, batch_size=batch_size,
                             backend=backend)
    part_rows = check_count(part_rows, "part_rows")
    files = load_model_dir(model)
    model = (str(files.path.resolve()), backend, _model_stamp(files.path))
    added = added_column_names(list(files.labels), top_k, probabilities)
    read = ReadOptions(fmt, header, text_column, sheet, encoding, skip_rows)
    paths = _input_files(inputs)
    output_dir = Path(output_dir)
    created = _prepare_output_dir(output_dir)
    staging = output_dir / f".{partial_mark()}"
    staging.mkdir()
    started = time.perf_counter()
    executor = _OnCluster(client, distributed, model, top_k, probabilities, long_text, batch_size)
    parts = []
    bar = progress_bar(0, progress)

    def chunks():
        for path in paths:
            try:
                with read.open(path) as table:
                    if log is not None:
                        log(table.layout.describe())
                    bar.total += table.expected_rows or 0
                    bar.refresh()
                    yield from checked_chunks(table, part_rows, added, path)
            except NoTextsError as exc:  # one of many files: said, not fatal (a new folder)
                if log is not None:
                    log(f"{exc}; going on with the other files")

    def write_part(labelled, source):
        name = _part_name(len(parts))
        writer = LabelledWriter(str(staging / name), source, excel)
        try:
            writer.write(labelled)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        parts.append(name)

    try:
        tally = label_in_order(chunks(), executor, write_part, bar)
        for name in parts:
            (staging / name).replace(output_dir / name)
        staging.rmdir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                output_dir.rmdir()
        raise
    finally:
        bar.close()
    return {"rows": tally.rows, "empty": tally.empty, "parts": len(parts), "files": len(paths),
            "seconds": time.perf_counter() - started}


def _part_name(number: int) -> str:
    return f"part-{number:05d}.csv"


class _OnCluster:
    """The labelling executor of :func:`predict_files`: each chunk labelled by a worker of the
    Dask ``client`` (:func:`label_partition`), two per worker thread in flight."""

    def __init__(self, client, distributed, model: tuple, top_k: int, probabilities: bool,
                 long_text: str, batch_size: int):
        self.client, self.distributed = client, distributed
        self.arguments = (model, top_k, probabilities, long_text, batch_size)
        self.ahead = max(2, 2 * sum(client.nthreads().values()))
        self.submitted = 0

    def submit(self, frame, column, source):
        from newsclf.datafiles.texts import column_texts

        # what label_partition classifies; a CSV part holds a JSON lines value (a number,
        # null) as this same text
        frame[column] = column_texts(frame[column])
        part = _part_name(self.submitted)
        self.submitted += 1
        return part, source, self.client.submit(label_partition, frame, column, *self.arguments,
                                                pure=False)

    def result(self, handle):
        part, source, future = handle
        try:
            return future.result()
        except self.distributed.KilledWorker:
            raise NewsclfError(f"a Dask worker died while labelling {part} (from {source}); "
                               "it may have run out of memory") from None

    def cancel(self, handle):
        handle[2].cancel()
