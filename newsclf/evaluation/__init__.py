"""Scoring a classifier on labelled texts: the numbers, the report tables and the plot.

>>> result = evaluate(predictor, texts, labels)
>>> print(result.summary())
>>> result.save("eval_dev")  # metrics.json, confusion_matrix.csv/.png, misclassified.csv, ...

- :mod:`newsclf.evaluation.metrics`: the numbers (numpy and scikit-learn): accuracy, F1 scores,
  confusion counts, class ids of label names. Training reads its per-epoch scores here.
- :mod:`newsclf.evaluation.report`: :class:`EvaluationResult`, the pandas tables, text summary
  and saved files (names in ``METRICS_JSON``, ``CONFUSION_PNG``, ...).
- :mod:`newsclf.evaluation.plot`: the confusion-matrix heatmap (matplotlib).
- :mod:`newsclf.evaluation.fonts`: the fonts Chinese is drawn with: the CJK font newsclf ships,
  and a system CJK font for characters it lacks. ``cjk_font()`` gives matplotlib font properties
  for ``fontproperties=`` in plots of one's own; ``find_cjk_font()`` the font file's path.

Every score covers *all* of the model's classes, so a class the data lacks still has a row and
column in the confusion matrix (support 0) and counts as F1 0 in the macro-F1. Paddle is never
imported here; scikit-learn, pandas and matplotlib load on first use.
"""

from __future__ import annotations

from typing import Sequence

from newsclf.errors import NewsclfError
from newsclf.evaluation.fonts import MissingFontWarning, cjk_font, find_cjk_font
from newsclf.evaluation.metrics import accuracy_and_macro_f1, label_ids
from newsclf.evaluation.report import (CONFUSION_CSV, CONFUSION_NORMALIZED_CSV, CONFUSION_PNG,
                                       MATRIX_CORNER, METRICS_JSON, MISCLASSIFIED_CSV,
                                       NO_LABEL, REPORT_TXT, EvaluationResult)

__all__ = ["evaluate", "EvaluationResult", "accuracy_and_macro_f1", "label_ids", "cjk_font",
           "find_cjk_font", "MissingFontWarning", "METRICS_JSON", "REPORT_TXT", "CONFUSION_CSV",
           "CONFUSION_NORMALIZED_CSV", "MISCLASSIFIED_CSV", "CONFUSION_PNG", "MATRIX_CORNER",
           "NO_LABEL"]


def evaluate(predictor, texts: Sequence[str], labels: Sequence[str],
             batch_size: int = 256) -> EvaluationResult:
    """Classify ``texts`` with ``predictor`` (one pass of ``classify``) and score the
    predictions against the true class names ``labels``. A text the model has nothing to
    classify by (empty, or no token it knows; ``predict`` gives it no label) counts as an
    error, predicted ``"(no label)"``. ``texts`` are read as :meth:`Predictor.predict
    <newsclf.predictor.Predictor.predict>` reads them; ``batch_size`` as well."""
    from newsclf.arguments import as_text_list

    texts = as_text_list(texts)
    labels = [labels] if isinstance(labels, str) else list(labels)
    if not texts and not labels:
        raise NewsclfError("nothing to evaluate: no labelled texts given")
    if len(texts) != len(labels):
        raise NewsclfError(f"{len(texts)} texts but {len(labels)} labels; give one label per text")
    classes = [str(c) for c in predictor.classes_]
    label_ids(classes, labels)  # fail on unknown labels before spending time on predictions
    probabilities, problems = predictor.classify(texts, batch_size=batch_size)
    return EvaluationResult.from_predictions(classes, texts, labels, probabilities,
                                             no_label=[problem is not None for problem in problems])
