"""Errors newsclf raises for problems the user can fix (bad input, bad model directory)."""


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
