"""The labelling pipeline of :func:`newsclf.predict.predict_file` and
:func:`newsclf.dask.predict_files`: chunks of tables streamed through an executor (this
process, worker processes, a Dask cluster), a bounded number in flight, and handed to a writer
strictly in input order, their rows and rows without a label counted on a progress bar.

An executor has ``ahead`` (how many chunks may wait for their result beyond the one being
written), ``submit(frame, column, source)`` giving a handle (``source``: the file the chunk is
from), ``result(handle)`` giving the chunk with
its prediction columns (:func:`~newsclf.predict.label_frame`), and ``cancel(handle)`` for what
is still in flight when the run fails.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass


@dataclass
class Tally:
    """The rows labelled so far, and those among them without a label (their ``error``)."""

    rows: int = 0
    empty: int = 0


def progress_bar(total: int | None, shown: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="row", disable=None if shown else True, file=sys.stderr,
                dynamic_ncols=True, desc="predict")


def label_in_order(chunks, executor, write, bar) -> Tally:
    """Label each ``(frame, column, source)`` of ``chunks`` with ``executor`` and call
    ``write(labelled, source)`` in input order; ``bar`` (a tqdm bar) advances by the rows
    written. On any error the chunks still in flight are cancelled."""
    tally, pending = Tally(), deque()

    def write_oldest():
        handle, source = pending.popleft()
        labelled = executor.result(handle)
        write(labelled, source)
        tally.rows += len(labelled)
        tally.empty += int((labelled["error"] != "").sum())
        bar.update(len(labelled))

    try:
        for frame, column, source in chunks:
            pending.append((executor.submit(frame, column, source), source))
            while len(pending) > executor.ahead:
                write_oldest()
        while pending:
            write_oldest()
    except BaseException:
        for handle, _ in pending:
            executor.cancel(handle)
        raise
    return tally


class InProcess:
    """Each chunk labelled when its result is asked for, by ``classify(texts)``
    (:meth:`~newsclf.predictor.Predictor.classify`'s probabilities and problems)."""

    ahead = 0

    def __init__(self, classify, labeller):
        self.classify, self.labeller = classify, labeller

    def submit(self, frame, column, source):
        return frame, column

    def result(self, handle):
        frame, column = handle
        return self.labeller(frame, column, self.classify)

    def cancel(self, handle):
        pass
