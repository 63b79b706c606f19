"""What a training run shows and records while it runs: one progress bar, one log line per
epoch for the whole ensemble, the student's own lines, and ``train_log.jsonl``.

Members may train one after another or side by side in worker processes, finishing their epochs
in any order, so an epoch's line waits until every member has reported that epoch (or has
stopped early before it); what is shown does not depend on how the members were run. A member
that stopped early shows ``-`` from then on, and a line says after which epoch it stopped.
After a resume the lines start at the first epoch a member trains again, the other members'
columns filled from their checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

STOPPED = "-"  # the column of a member that stopped early


def distill_round(member: int, n_members: int) -> int:
    """The distillation round (from 1) of the student trained as encoder ``member``: the
    students of the rounds are encoders ``n_members``, ``n_members + 1`` and on."""
    return member - n_members + 1


def encoder_name(member: int, n_members: int, student: bool) -> str:
    """How log lines name the encoder ``member`` trains ("" for the only one)."""
    if student:
        round_number = distill_round(member, n_members)
        return "student " if round_number == 1 else f"round {round_number} student "
    return "" if n_members == 1 else f"member {member + 1} "


@dataclass
class EpochReport:
    """One finished epoch of one encoder (a member, or the student).

    ``record`` is the epoch's line of ``train_log.jsonl``; ``earlier``: trained by the run that
    was resumed (shown, not recorded again); ``stopped_early``: the encoder stops after it,
    before the last epoch."""

    member: int
    student: bool
    record: dict
    earlier: bool = False
    stopped_early: bool = False


class EpochTable:
    """The epoch lines of encoders trained side by side (``names``: how each is called in log
    lines), ``prefix`` before each line."""

    def __init__(self, names: list[str], epochs: int, patience: int, prefix: str, show):
        self.names, self.epochs, self.patience, self.prefix, self.show = (
            names, epochs, patience, prefix, show)
        self.results: dict[int, dict[int, dict]] = {}  # epoch -> column -> record
        self.stopped_after: dict[int, int] = {}  # column -> its last epoch
        self.trained_now: set[int] = set()  # epochs some encoder trained in this run
        self.next_epoch = 1

    def add(self, column: int, report: EpochReport) -> None:
        epoch = report.record["epoch"]
        self.results.setdefault(epoch, {})[column] = report.record
        if report.stopped_early:
            self.stopped_after[column] = epoch
        if not report.earlier:
            self.trained_now.add(epoch)
        while self.next_epoch <= self.epochs and self._complete(self.next_epoch):
            epoch = self.next_epoch
            self.next_epoch += 1
            records = self.results.pop(epoch, {})
            if epoch not in self.trained_now:  # shown by the run that was resumed
                continue
            self.show(self._line(epoch, records))
            waited = f"{self.patience} epoch" + "s" * (self.patience != 1)
            for column, last in sorted(self.stopped_after.items()):
                if last == epoch:
                    self.show(f"{self.names[column]}stopped early after epoch {epoch} (no dev "
                              f"macro-F1 gain for {waited})")

    def _complete(self, epoch: int) -> bool:
        """Whether every encoder has reported ``epoch`` or stopped before it."""
        reported = self.results.get(epoch, {})
        return all(column in reported or self.stopped_after.get(column, epoch) < epoch
                   for column in range(len(self.names)))

    def _line(self, epoch: int, records: dict[int, dict]) -> str:
        parts = [f"{self.prefix}epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}",
                 "loss " + self._columns(records, "train_loss", ".3f")]
        if any("dev_accuracy" in record for record in records.values()):
            parts += ["dev acc " + self._columns(records, "dev_accuracy", ".4f"),
                      "macro-F1 " + self._columns(records, "dev_macro_f1", ".4f")]
        seconds = [record["epoch_seconds"] for record in records.values()
                   if "epoch_seconds" in record]
        if seconds:
            parts.append(f"({max(seconds):.0f}s)")
        return "  ".join(parts)

    def _columns(self, records: dict[int, dict], key: str, spec: str) -> str:
        values = {column: format(record[key], spec) for column, record in records.items()}
        width = max(map(len, values.values()))
        return " | ".join(values.get(column, STOPPED).rjust(width)
                          for column in range(len(self.names)))


class Reporter:
    """Where the encoders' reports go (the ``report`` callback of
    :func:`~newsclf.training.loop.train_member`): log lines, epoch lines, ``train_log.jsonl``
    records and one transient progress bar for the whole run (texts seen over all members, the
    student and their epochs)."""

    def __init__(self, log, progress: bool, config, total_texts: int, train_log: Path | None,
                 student_config=None):
        from tqdm.auto import tqdm

        self.log, self.train_log = log, train_log
        self.bar = tqdm(total=total_texts, desc="training", unit="text", leave=False,
                        dynamic_ncols=True, disable=None if progress else True)
        n_members = config.ensemble_size
        self.members = EpochTable([encoder_name(m, n_members, False) for m in range(n_members)],
                                  config.epochs, config.patience, "", self._show)
        student_config = student_config or config
        self.students = [EpochTable([name], student_config.epochs, student_config.patience,
                                    name, self._show)
                         for name in (encoder_name(n_members + r, n_members, True)
                                      for r in range(student_config.distill_rounds or 1))]

    def __call__(self, kind: str, payload) -> None:
        if kind == "texts":
            self.bar.update(payload)
        elif kind == "skip":  # an encoder stopped early: its remaining epochs will not run
            self.bar.total -= payload
            self.bar.refresh()
        elif kind == "epoch":
            if not payload.earlier and self.train_log is not None:
                with open(self.train_log, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(payload.record, ensure_ascii=False) + "\n")
            if payload.student:
                self.students[payload.member - len(self.members.names)].add(0, payload)
            else:
                self.members.add(payload.member, payload)
        elif kind == "log":
            self._show(payload)

    def _show(self, line: str) -> None:
        self.bar.clear()
        self.log(line)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
