"""Training from Python in one call, with the arguments of ``newsclf train``: :func:`train`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence


def train(train, dev=None, output: str | Path = "model", *, classes=None, unlabeled=None,
          config: str | Path | None = None, fmt: str | None = None, text_column=None,
          label_column=None, header: bool | None = None, encoding: str | None = None,
          sheet: str | None = None, resume: bool = False, overwrite: bool = False,
          export: bool = True, workers: int | None = None, device: str = "cpu",
          verbose: bool = True, **settings):
    """Train a model as ``newsclf train`` does, write its directory to ``output`` and return
    its :class:`~newsclf.predictor.Predictor`::

        model = newsclf.train("news.csv", dev="dev.csv", output="model", epochs=10)
        model.predict(["沪指收涨1.2%"])

    ``train`` and ``dev`` are labelled files of any layout ``newsclf train`` reads (``fmt``,
    ``text_column``, ``label_column``, ``header``, ``encoding`` and ``sheet`` override what is
    detected, as its flags do) or :class:`~newsclf.datafiles.LabelledData`; ``classes`` a
    class-names file or a list of names (line/position N is label id N); ``unlabeled`` a file
    of texts (its layout detected) or a list of them, for the student (see ``newsclf train
    --unlabeled``).
    ``settings`` are :class:`~newsclf.config.TrainConfig`'s (``epochs=10``, ``teacher="e5"``),
    over those of the JSON file ``config``. ``resume``, ``overwrite``, ``export``, ``workers``
    and ``device`` are the command's ``--resume``, ``--overwrite``, ``--no-export`` (inverted),
    ``--workers`` and ``--device``. ``verbose`` prints what the command prints on stderr, with
    a progress bar.
    Errors the user can fix raise :class:`~newsclf.errors.NewsclfError`."""
    from newsclf.config import TrainConfig
    from newsclf.datafiles import read_class_names
    from newsclf.datafiles.labelled import class_names_of
    from newsclf.errors import NewsclfError
    from newsclf.predictor import Predictor
    from newsclf.training import train as train_run
    from newsclf.training.distill import check_unlabeled_allowed, unlabeled_text_list

    log = _to_stderr if verbose else _quiet
    values = TrainConfig.from_file(config).to_dict() if config is not None else {}
    train_config = TrainConfig.from_dict({**values, **settings}, source="newsclf.train")
    if not isinstance(output, (str, Path)):
        raise NewsclfError(f"output must be the path of the model directory to write, not "
                           f"{type(output).__name__}")
    if isinstance(classes, (str, Path)):
        classes = read_class_names(classes, encoding)
    elif classes is not None:
        classes = class_names_of(classes)
    layout = dict(fmt=fmt, text_column=text_column, label_column=label_column, header=header,
                  encoding=encoding, sheet=sheet)
    train_data = _labelled(train, "train", classes, layout, log)
    dev_data = None if dev is None else _labelled(dev, "dev", classes, layout, log)
    unlabeled_texts = None
    if unlabeled is not None:
        check_unlabeled_allowed(train_config)
        unlabeled_texts = unlabeled_text_list(_texts(unlabeled, encoding, log),
                                              _name(unlabeled, "unlabeled"))
    result = train_run(train_config, train_data, dev_data, output, classes, progress=verbose,
                       log=log, resume=resume, export=export, workers=workers,
                       overwrite=overwrite, unlabeled_texts=unlabeled_texts, device=device)
    return Predictor.from_dir(result.output_dir)


def _labelled(data, name: str, classes: Sequence[str] | None, layout: dict, log):
    """``data`` as :class:`~newsclf.datafiles.LabelledData`: read if it is a path."""
    from newsclf.datafiles import LabelledData, read_labelled
    from newsclf.errors import NewsclfError

    if isinstance(data, LabelledData):
        from newsclf.arguments import as_text_list

        texts = as_text_list(data.texts, f"{name} texts", one_text=False)
        wrong = next((label for label in data.labels if not isinstance(label, str)), None)
        if wrong is not None:
            raise NewsclfError(f"{name}: its labels must be class names (str), found "
                               f"{type(wrong).__name__} {wrong!r}")
        return LabelledData(texts, list(data.labels), data.source, data.layout)
    if not isinstance(data, (str, Path)):
        raise NewsclfError(f"{name} must be the path of a labelled file or LabelledData, not "
                           f"{type(data).__name__}; for texts and labels in memory use "
                           "newsclf.TextClassifier().fit(texts, labels)")
    read = read_labelled(data, classes, **layout)
    log(read.summary())
    return read


def _texts(data, encoding: str | None, log) -> list:
    """The unlabelled texts: ``data`` itself, or read from the file it names (its layout
    detected; read a file that needs flags with :func:`~newsclf.datafiles.read_texts`)."""
    from newsclf.datafiles import read_texts

    if isinstance(data, (str, Path)):
        return read_texts(str(data), encoding=encoding, log=log)
    return data


def _name(data, default: str) -> str:
    return str(data) if isinstance(data, (str, Path)) else default


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _quiet(message: str) -> None:
    pass
