"""Classical baselines to compare newsclf against: TF-IDF features + a linear SVM (scikit-learn).

``char``: character 1-3-grams of the normalized text; ``word``: jieba word 1-2-grams. These are
the strong, fast reference points for headline classification; a Transformer that does not beat
them on your data is not worth its cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from newsclf.errors import DataError
from newsclf.tokenize import Tokenizer, normalize

BASELINES = {
    "tfidf-char-svm": {"analyzer": "char", "ngram_range": (1, 3), "C": 30.0},
    "tfidf-word-svm": {"analyzer": "word", "ngram_range": (1, 2), "C": 3.0},
}


@dataclass
class BaselineResult:
    name: str
    accuracy: float
    macro_f1: float
    train_seconds: float
    predict_rows_per_second: float


def make_baseline(name: str):
    """An unfitted scikit-learn pipeline for one of :data:`BASELINES`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    settings = BASELINES[name]
    if settings["analyzer"] == "char":
        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=settings["ngram_range"],
                                     preprocessor=normalize, sublinear_tf=True, min_df=1)
    else:
        words = Tokenizer("word").words
        vectorizer = TfidfVectorizer(analyzer="word", tokenizer=words, token_pattern=None,
                                     lowercase=False, ngram_range=settings["ngram_range"],
                                     sublinear_tf=True)
    return make_pipeline(vectorizer, LinearSVC(C=settings["C"]))


def run_baseline(name: str, train_texts: Sequence[str], train_labels: Sequence[str],
                 dev_texts: Sequence[str], dev_labels: Sequence[str]) -> BaselineResult:
    """Fit on train, score on dev: accuracy, macro-F1, fit seconds, prediction rows/s.

    The macro-F1 averages over the classes of the training data, as newsclf's does over its
    model's classes (a class missing from dev counts 0), so the two compare on any dev set."""
    from sklearn.metrics import accuracy_score, f1_score

    model = make_baseline(name)
    started = time.perf_counter()
    try:
        model.fit(list(train_texts), list(train_labels))
    except ValueError as exc:
        if "empty vocabulary" not in str(exc):
            raise
        unit = "character" if BASELINES[name]["analyzer"] == "char" else "word"
        raise DataError(f"the training texts have no {unit} left once normalized (blank, or "
                        f"only control and zero-width characters): {name} has nothing to "
                        "learn from; give texts with words in them") from None
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    predicted = model.predict(list(dev_texts))
    predict_seconds = time.perf_counter() - started
    macro_f1 = f1_score(dev_labels, predicted, labels=model.classes_, average="macro",
                        zero_division=0)
    return BaselineResult(name, float(accuracy_score(dev_labels, predicted)), float(macro_f1),
                          train_seconds, len(dev_texts) / predict_seconds)
