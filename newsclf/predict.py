"""Labelling files: every row of a CSV, TSV or text file of any size, streamed through a
:class:`~newsclf.predictor.Predictor`, with all input columns kept, in order."""

from __future__ import annotations

import csv
import os
import re
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

from newsclf.errors import DataError, NewsclfError
from newsclf.predictor import LONG_TEXT_MODES, Predictor, choose_backend

__all__ = ["predict_file", "prediction_columns", "Predictor"]


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


def _label_frame(frame, text_column: str, classify, classes, top_k: int, with_probabilities: bool):
    """Add prediction columns and an ``error`` column to one chunk. ``classify`` gives
    :meth:`Predictor.classify`'s probabilities and problems; a row with nothing to classify
    gets empty predictions and its problem ("empty text", "no known token") as ``error``."""
    probabilities, problems = classify(frame[text_column].tolist())
    valid = np.array([problem is None for problem in problems], dtype=bool)
    for name, values in prediction_columns(classes, probabilities, top_k,
                                           with_probabilities).items():
        if values.dtype.kind == "f":  # written as the float columns of a whole table would be
            values = np.array([f"{value:.6f}" for value in values.tolist()], dtype=object)
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


def predict_file(model, input_path: str, output_path: str, *, text_column: str = "text",
                 fmt: str | None = None, encoding: str | None = None, top_k: int = 1,
                 probabilities: bool = False, batch_size: int = 256, chunk_size: int = 5000,
                 excel: bool = False, long_text: str = "truncate", workers: int | None = None,
                 progress: bool = True, backend: str = "auto") -> dict:
    """Label every row of a CSV, TSV or text file and write all input columns plus the
    prediction columns, one output row per input row, in order.

    Streams in chunks (flat memory at any size); writes to a temporary file renamed at the end,
    so a failed run leaves nothing under ``output_path``. ``-`` reads standard input / writes
    standard output. ``workers > 1`` spreads tokenization and inference over processes;
    ``None`` uses one process per core (at most 4) for files of 50,000 rows or more, else one;
    never more than the cores or the chunks of the file. A dead worker is a ``NewsclfError``.
    The output is CSV (``.csv``, ``-``) or TSV (``.tsv``, ``.txt``: fields as they are, so a field
    holding a tab or line break is refused), and never the input file itself.
    ``model`` is a :class:`Predictor` or a model directory (loaded with ``backend``; with
    worker processes only they load the engine, all at once).
    Returns ``{"rows", "empty", "seconds"}``.
    """
    from tqdm.auto import tqdm

    from newsclf.data import iter_input_chunks
    from newsclf.modeldir import load_model_dir

    if isinstance(model, Predictor):
        predictor, files, backend = model, model.files, model.backend
    else:
        predictor, files = None, load_model_dir(model)
        backend = choose_backend(files, backend)
    if top_k < 1:
        raise NewsclfError(f"top_k must be at least 1, got {top_k}")
    if workers is not None and workers < 1:
        raise NewsclfError(f"workers must be at least 1, got {workers}")
    if long_text not in LONG_TEXT_MODES:
        raise NewsclfError(f"long_text must be one of {', '.join(LONG_TEXT_MODES)}, not {long_text!r}")
    classes = list(files.labels)
    started = time.perf_counter()
    output_sep = _output_separator(output_path)
    output_encoding = "utf-8-sig" if excel else "utf-8"
    to_stdout = output_path == "-"
    if not to_stdout:
        target = Path(output_path)
        if target.is_dir():
            raise NewsclfError(f"{target}: is a directory; give an output file name")
        if not target.parent.is_dir():
            raise NewsclfError(f"{target.parent}: output folder does not exist")
        _refuse_writing_over_input(input_path, target)
        tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
        handle = open(tmp, "w", encoding=output_encoding, newline="")
    else:
        handle = sys.stdout
    expected_rows = _count_rows(input_path, fmt)
    workers = _useful_workers(workers, expected_rows, chunk_size)
    bar = tqdm(total=expected_rows, unit="row", disable=None if progress else True,
               file=sys.stderr, dynamic_ncols=True, desc="predict")
    pool = None
    rows = empty = 0
    try:
        if workers > 1:
            from newsclf.workers import WorkerPool

            pool = WorkerPool(workers, _init_worker, (str(files.path), backend))
        elif predictor is None:
            predictor = Predictor(files, backend)
        added = set(prediction_columns(classes, np.zeros((0, len(classes))), top_k, probabilities))
        chunks = _refuse_column_clashes(
            iter_input_chunks(input_path, fmt=fmt, text_column=text_column, encoding=encoding,
                              chunk_size=chunk_size), added | {"error"})

        def classify_here(texts):
            return predictor.classify(texts, batch_size, long_text)

        def write(frame, column, classify):
            nonlocal rows, empty
            labelled = _label_frame(frame, column, classify, classes, top_k, probabilities)
            _write_rows(labelled, handle, output_sep, header=rows == 0, source=input_path)
            rows += len(labelled)
            empty += int((labelled["error"] != "").sum())
            bar.update(len(labelled))

        pending = deque()  # chunks in flight, written strictly in input order
        for frame, column in chunks:
            if pool is None:
                pending.append((frame, column, classify_here))
            else:
                future = pool.submit(_worker_classify, frame[column].tolist(), batch_size,
                                     long_text)
                pending.append((frame, column, lambda _texts, future=future: pool.result(future)))
            while len(pending) > (2 * workers if pool else 0):
                write(*pending.popleft())
        while pending:
            write(*pending.popleft())
        if pool is not None:
            pool.close()
            pool = None
        if not to_stdout:
            handle.close()
            tmp.replace(target)
    except BaseException:
        if not to_stdout:
            handle.close()
            tmp.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.stop()
    return {"rows": rows, "empty": empty, "seconds": time.perf_counter() - started}


def _refuse_column_clashes(chunks, added: set):
    """Refuse input whose columns would be overwritten by the prediction columns."""
    for frame, column in chunks:
        clash = sorted(added & set(frame.columns))
        if clash:
            raise DataError(f"the input already has column(s) {', '.join(clash)}; rename them, "
                            "newsclf writes its predictions there")
        yield frame, column


def _count_rows(path: str, fmt: str | None) -> int | None:
    """Approximate row count for the progress bar (newlines; header not counted)."""
    if path == "-" or not Path(path).is_file():
        return None
    from newsclf.data import detect_predict_format

    count = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
    return max(0, count - (0 if (fmt or detect_predict_format(path)) == "txt" else 1))


OUTPUT_SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}  # standard output ("-"): CSV


def _output_separator(output_path: str) -> str:
    """The field separator of the output file, from its extension; other extensions are refused
    (nothing else is written)."""
    if output_path == "-":
        return ","
    suffix = Path(output_path).suffix.lower()
    if suffix not in OUTPUT_SEPARATORS:
        raise NewsclfError(f"{output_path}: cannot write {suffix or 'a file without extension'}; "
                           "the output is .csv, .tsv or .txt (tab-separated), or - for standard "
                           "output")
    return OUTPUT_SEPARATORS[suffix]


def _refuse_writing_over_input(input_path: str, target: Path) -> None:
    """Refuse an output that is the input file (same path, another path to it, or a link)."""
    if input_path != "-" and target.exists() and Path(input_path).exists() \
            and os.path.samefile(input_path, target):
        raise NewsclfError(f"{target}: this is the input file ({input_path}); write the labelled "
                           "rows to another file")


def _write_rows(frame, handle, sep: str, *, header: bool, source: str) -> None:
    """Write labelled rows as CSV (fields quoted where needed) or TSV (fields as they are, as
    newsclf reads TSV back: a field holding a tab or line break cannot be written and is
    refused, naming the input line)."""
    options = {}
    if sep == "\t":
        _refuse_unwritable_tsv(frame, "<stdin>" if source == "-" else source, header)
        options["quoting"] = csv.QUOTE_NONE
    frame.to_csv(handle, sep=sep, index=False, header=header, lineterminator="\n",
                 float_format="%.6f", **options)


_TSV_BREAKERS = "[\t\r\n]"  # what would end a TSV field or row early


def _refuse_unwritable_tsv(frame, source: str, header: bool) -> None:
    fix = "write .csv output instead, or remove them from the input"
    if header:
        for name in frame.columns:
            if re.search(_TSV_BREAKERS, str(name)):
                raise DataError(f"{source}: column name {name!r} holds a tab or line break, "
                                f"which a TSV file cannot hold; {fix}")
    for position, name in enumerate(frame.columns):
        broken = frame.iloc[:, position].astype(str).str.contains(_TSV_BREAKERS).to_numpy()
        if broken.any():
            raise DataError(f"{source}:{frame.index[broken.argmax()]}: column {name!r} holds a tab "
                            f"or line break, which a TSV file cannot hold; {fix}")
