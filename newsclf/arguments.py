"""Checking the arguments of the public API, one rule each: counts (batch size, top-k, threads,
workers...) and texts (a list, array or Series of str, or one str)."""

from __future__ import annotations

import operator
from collections.abc import Mapping

from newsclf.errors import NewsclfError


def check_count(value, name: str, *, optional: bool = False) -> int | None:
    """``value`` as a plain int if it is a whole number of at least 1 (an int, a numpy integer,
    anything ``operator.index`` takes, but not a bool), or None if ``optional`` and it is None;
    anything else is refused in one line naming ``name``."""
    if value is None and optional:
        return None
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < 1:
        raise NewsclfError(f"{name} must be a whole number of at least 1, not {value!r}")
    return number


def as_text_list(texts, name: str = "texts", one_text: bool = True) -> list[str]:
    """``texts`` as a list of str, or a one-line refusal naming ``name`` and the fix. One
    string is one text (with ``one_text=False``, as scikit-learn wants, a TypeError); a list,
    tuple, 1-D array, pandas Series or other iterable gives its items, which must be str; a
    missing one (None, NaN, ``pd.NA``) is an empty text, as a missing cell of a file is.
    Bytes, a mapping (dict) and a table (DataFrame) are refused with what to pass instead."""
    if isinstance(texts, str):
        if not one_text:
            raise TypeError(f"{name} must be a sequence of texts, not a single str; wrap one "
                            "text in a list")
        return [texts]
    if isinstance(texts, (bytes, bytearray, memoryview)):
        raise NewsclfError(f"{name} is {type(texts).__name__}, not text; decode it first: "
                           "data.decode('utf-8'), or pass a list of decoded texts")
    if type(texts).__name__ == "DataFrame":
        raise NewsclfError(f"{name} is a table (DataFrame); pass its text column, e.g. "
                           "frame['text']")
    if isinstance(texts, Mapping):
        # iterating a dict gives its keys: classifying them is never what was meant
        raise NewsclfError(f"{name} is a mapping ({type(texts).__name__}); pass its texts, "
                           "e.g. list(d.values()), or a list or Series of texts")
    if texts is None or not hasattr(texts, "__iter__"):
        raise NewsclfError(f"{name} must be {'a string or ' if one_text else ''}a sequence of "
                           f"strings, not {type(texts).__name__}")
    texts = list(texts)
    for i, text in enumerate(texts):
        if isinstance(text, str):
            continue
        if not _missing(text):
            raise TypeError(f"{name}[{i}] is {type(text).__name__}, not str"
                            + ("; decode it first: data.decode('utf-8')"
                               if isinstance(text, (bytes, bytearray)) else ""))
        texts[i] = ""
    return texts


def _missing(value) -> bool:
    """Whether a value stands for a missing text: None, NaN, NaT or ``pd.NA``, as pandas
    decides for a scalar."""
    if value is None:
        return True
    import pandas as pd

    try:
        return bool(pd.isna(value)) if pd.api.types.is_scalar(value) else False
    except (TypeError, ValueError):
        return False
