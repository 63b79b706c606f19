"""Labelling files: every row of a data file of any size and layout, streamed through a
:class:`~newsclf.predictor.Predictor`, with all input columns kept, in order."""

from __future__ import annotations

import sys
import time

import numpy as np

from newsclf.arguments import check_count
from newsclf.errors import DataError
from newsclf.predictor import Predictor, check_prediction_options, choose_backend

__all__ = ["predict_file", "prediction_columns", "added_column_names", "label_frame",
           "refuse_column_clashes", "Predictor"]


def prediction_columns(classes, probabilities: np.ndarray, top_k: int = 1,
                       with_probabilities: bool = False) -> dict[str, np.ndarray]:
    """The columns newsclf adds to a table of texts: ``pred_label``, ``pred_score``; with
    ``top_k > 1`` ``top{i}_label``/``top{i}_score``; with probabilities ``prob_<class>``."""
    classes = np.asarray(classes, dtype=object)
    k = max(1, min(top_k, len(classes)))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    rows = np.arange(len(probabilities))[:, None]
    labels, scores = classes[order], probabilities[rows, order]
    columns = {"pred_label": labels[:, 0], "pred_score": scores[:, 0]}
    if k > 1:
        for i in range(k):
            columns[f"top{i + 1}_label"] = labels[:, i]
            columns[f"top{i + 1}_score"] = scores[:, i]
    if with_probabilities:
        for j, name in enumerate(classes):
            columns[f"prob_{name}"] = probabilities[:, j]
    return columns


def added_column_names(classes, top_k: int = 1, with_probabilities: bool = False) -> list[str]:
    """The names of the columns :func:`label_frame` adds, in order (``error`` last)."""
    empty = np.zeros((0, len(classes)), dtype=np.float32)
    return [*prediction_columns(classes, empty, top_k, with_probabilities), "error"]


def label_frame(frame, text_column: str, classify, classes, top_k: int, with_probabilities: bool):
    """Add prediction columns and an ``error`` column to one chunk (in place; returned).
    ``classify`` gives :meth:`Predictor.classify`'s probabilities and problems; a row with
    nothing to classify gets empty predictions and its problem ("empty text", "no known token")
    as ``error``."""
    probabilities, problems = classify(frame[text_column].tolist())
    valid = np.array([problem is None for problem in problems], dtype=bool)
    for name, values in prediction_columns(classes, probabilities, top_k,
                                           with_probabilities).items():
        if values.dtype.kind == "f":
            values = np.where(valid, values, np.nan)  # an empty field in CSV and Excel
        else:
            values = values.astype(object)
            values[~valid] = ""
        frame[name] = values
    frame["error"] = np.array([problem or "" for problem in problems], dtype=object)
    return frame


_worker_predictor = None


def _init_worker(model_dir: str, backend: str) -> None:
    global _worker_predictor
    from newsclf.runtime import tune_allocator

    tune_allocator()  # a process of newsclf's own
    _worker_predictor = Predictor.from_dir(model_dir, backend, threads=1)


def _worker_classify(texts, batch_size, long_text):
    return _worker_predictor.classify(texts, batch_size, long_text)


def _useful_workers(requested: int | None, expected_rows: int | None, chunk_size: int) -> int:
    """The worker processes that can help: ``requested`` (``None``: one per core, at most 4, for
    50,000 rows or more, else 1), but no more than the cores or the chunks of the input. A
    requested number that is reduced is said on stderr."""
    from newsclf.workers import available_cores

    cores = available_cores()
    chunks = None if expected_rows is None else max(1, -(-expected_rows // chunk_size))
    if requested is None:
        return min(4, cores, chunks) if (expected_rows or 0) >= 50_000 else 1
    limits = [f"{cores} CPU core{'s' * (cores > 1)}"] if cores < requested else []
    if chunks is not None and chunks < requested:
        limits.append(f"{chunks} chunk{'s' * (chunks > 1)} of up to {chunk_size} rows to share")
    if not limits:
        return requested
    useful = min(requested, cores, chunks or requested)
    print(f"newsclf: predicting with {useful} worker process{'es' * (useful > 1)} instead of "
          f"{requested} ({', '.join(limits)})", file=sys.stderr)
    return useful


def predict_file(model, input_path: str, output_path: str, *, text_column=None,
                 fmt: str | None = None, header: bool | None = None, sheet: str | None = None,
                 encoding: str | None = None, skip_rows: int = 0, top_k: int = 1,
                 probabilities: bool = False, batch_size: int = 256, chunk_size: int = 5000, excel: bool = False,
                 long_text: str = "truncate", workers: int | None = None, progress: bool = True,
                 backend: str = "auto", log=None) -> dict:
    """Label every row of a data file of any layout newsclf reads (see
    :mod:`newsclf.datafiles.layout`; ``fmt``, ``header``, ``text_column`` and ``sheet``
    override what is detected; ``skip_rows`` lines or sheet rows above the table are left
    out) and write all input columns plus the prediction columns, one
    output row per input row, in order. The values of a JSON lines input are written back as
    they were to JSON lines output, and as their text to the other formats.

    Streams in chunks (flat memory at any size); writes to a temporary file renamed at the end,
    so a failed run leaves nothing under ``output_path``. ``-`` reads standard input / writes
    standard output. ``workers > 1`` spreads tokenization and inference over processes;
    ``None`` uses one process per core (at most 4) for files of 50,000 rows or more, else one;
    never more than the cores or the chunks of the file. A dead worker is a ``NewsclfError``.
    The output is CSV (``.csv``, ``-``), TSV (``.tsv``, ``.txt``: fields as they are, so a field
    holding a tab or line break is refused), Excel (``.xlsx``) or JSON lines (``.jsonl``), and
    never the input file itself, nor a read-only file. An input without rows, or whose texts
    are all blank, raises :class:`~newsclf.errors.NoTextsError` and leaves an existing output
    as it was. ``log`` receives a line saying how the input is read.
    ``model`` is a :class:`Predictor` or a model directory (loaded with ``backend``; with
    worker processes only they load the engine, all at once).
    Returns ``{"rows", "empty", "seconds", "layout"}``.
    """
    from newsclf.datafiles.output import LabelledWriter
    from newsclf.datafiles.texts import ReadOptions, column_texts
    from newsclf.labelling import InProcess, label_in_order, progress_bar
    from newsclf.modeldir import load_model_dir

    if isinstance(model, Predictor):
        predictor, files, backend = model, model.files, model.backend
    else:
        predictor, files = None, load_model_dir(model)
        backend = choose_backend(files, backend)
    check_prediction_options(top_k=top_k, long_text=long_text, batch_size=batch_size)
    workers = check_count(workers, "workers", optional=True)
    chunk_size = check_count(chunk_size, "chunk_size")
    classes = list(files.labels)
    started = time.perf_counter()
    writer = LabelledWriter(output_path, input_path, excel)
    table = pool = bar = None
    try:
        table = ReadOptions(fmt, header, text_column, sheet, encoding,
                            skip_rows).open(input_path)
        if log is not None:
            log(table.layout.describe())
        workers = _useful_workers(workers, table.expected_rows, chunk_size)
        bar = progress_bar(table.expected_rows, progress)

        def labeller(frame, column, classify):
            return label_frame(frame, column, classify, classes, top_k, probabilities)

        if workers > 1:
            from newsclf.workers import WorkerPool

            pool = WorkerPool(workers, _init_worker, (str(files.path), backend))
            executor = _InWorkers(pool, workers, labeller, batch_size, long_text)
        else:
            predictor = predictor or Predictor(files, backend)
            executor = InProcess(lambda texts: predictor.classify(column_texts(texts),
                                                                  batch_size, long_text),
                                 labeller)
        added = added_column_names(classes, top_k, probabilities)
        chunks = checked_chunks(table, chunk_size, added)
        tally = label_in_order(chunks, executor, lambda labelled, _: writer.write(labelled), bar)
        if pool is not None:
            pool.close()
            pool = None
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
        if table is not None:
            table.close()
        if pool is not None:
            pool.stop()
    return {"rows": tally.rows, "empty": tally.empty, "seconds": time.perf_counter() - started,
            "layout": table.layout}


class _InWorkers:
    """The labelling executor of ``predict_file --workers N``: texts classified in the worker
    processes of ``pool``, two chunks per worker in flight."""

    def __init__(self, pool, workers: int, labeller, batch_size: int, long_text: str):
        self.pool, self.ahead, self.labeller = pool, 2 * workers, labeller
        self.batch_size, self.long_text = batch_size, long_text

    def submit(self, frame, column, source):
        from newsclf.datafiles.texts import column_texts

        return frame, column, self.pool.submit(_worker_classify, column_texts(frame[column]),
                                               self.batch_size, self.long_text)

    def result(self, handle):
        frame, column, future = handle
        return self.labeller(frame, column, lambda _texts: self.pool.result(future))

    def cancel(self, handle):
        pass  # the pool is stopped


def refuse_column_clashes(columns, added) -> None:
    """Refuse input whose ``columns`` would be overwritten by the prediction columns ``added``."""
    clash = sorted(set(added) & set(columns))
    if clash:
        raise DataError(f"the input already has column(s) {', '.join(clash)}; rename them, "
                        "newsclf writes its predictions there")


def checked_chunks(table, chunk_size: int, added, source=None):
    """The chunks of ``table`` (:func:`~newsclf.datafiles.texts.text_chunks`) as ``(frame,
    column, source)``, refusing one with a column the prediction columns ``added`` would
    overwrite."""
    from newsclf.datafiles.texts import text_chunks

    for frame, column in text_chunks(table, chunk_size):
        refuse_column_clashes(frame.columns, added)
        yield frame, column, source
