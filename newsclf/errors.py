"""Errors newsclf raises for problems the user can fix (bad input, bad model directory)."""

from __future__ import annotations



class NewsclfError(Exception):
    """A problem with the user's input, files or settings.

    The message says what is wrong and what to do; the CLI prints it on one line and exits 2.
    """


class DataError(NewsclfError):
    """A data file that cannot be read or has a malformed row."""


class NoTextsError(DataError):
    """A file of texts to label that holds none: no rows, or only blank texts."""


class ModelDirError(NewsclfError):
    """A model directory that is missing, incomplete, damaged or from another version."""


class TrainingDiverged(NewsclfError):
    """A training run stopped because its loss (or its model's output) stopped being a finite
    number: the settings, the learning rate above all, make the weights blow up. ``reason`` is
    what happened and which settings to change, without what to do with the output directory."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message, reason)
        self.reason = reason or message

    def __str__(self) -> str:
        return self.args[0]
