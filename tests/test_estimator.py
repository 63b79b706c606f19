"""TextClassifier: the scikit-learn estimator over newsclf's training and Predictor."""

import gc
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from conftest import SAMPLE
from newsclf.errors import NewsclfError
from newsclf.estimator import TextClassifier

TINY = dict(epochs=1, ensemble_size=1, d_model=32, n_heads=2, d_ff=64, min_freq=1)


@pytest.fixture(scope="module")
def sample():
    from newsclf.data import read_labelled

    return read_labelled(SAMPLE / "train.tsv"), read_labelled(SAMPLE / "dev.tsv")


@pytest.fixture(scope="module")
def fitted(sample):
    train, dev = sample
    return TextClassifier(**TINY).fit(train.texts, train.labels,
                                      eval_set=(dev.texts, dev.labels))


def strip_texts(texts):
    return [text.strip() for text in texts]


def test_cross_val_score_runs(sample):
    texts, labels = sample[0].texts, sample[0].labels
    scores = cross_val_score(TextClassifier(epochs=1, ensemble_size=1), texts, labels, cv=2)
    assert len(scores) == 2
    assert all(0.0 <= score <= 1.0 for score in scores)


def test_settings_are_scikit_learn_params():
    from newsclf.config import TrainConfig

    defaults = TrainConfig().to_dict()
    params = TextClassifier().get_params()
    assert {name: params[name] for name in defaults} == defaults
    assert params["workers"] is None and params["verbose"] is False

    classifier = TextClassifier(epochs=3, lr=5e-4)
    assert repr(classifier) == "TextClassifier(epochs=3, lr=0.0005)"
    assert classifier.set_params(pooling="max", epochs=2) is classifier
    assert classifier.get_params()["pooling"] == "max"
    assert TextClassifier(**classifier.get_params()).get_params() == classifier.get_params()

    with pytest.raises(TypeError, match="unknown setting.*n_epochs.*valid settings: .*epochs"):
        TextClassifier(n_epochs=3)
    with pytest.raises(ValueError, match="n_epochs"):
        classifier.set_params(n_epochs=3)


def test_clone_is_unfitted_with_equal_params(fitted):
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        copy.predict(["股市大涨"])


def test_invalid_setting_raises_newsclf_error_at_fit(sample):
    train = sample[0]
    with pytest.raises(NewsclfError, match=r"d_model \(30\) must be a multiple of n_heads \(4\)"):
        TextClassifier(d_model=30, n_heads=4).fit(train.texts, train.labels)
    with pytest.raises(NewsclfError, match="epochs must be int"):
        TextClassifier(epochs="2").fit(train.texts, train.labels)


def test_predictions_agree_with_probabilities_and_score(fitted, sample):
    dev = sample[1]
    probabilities = fitted.predict_proba(dev.texts)
    predicted = fitted.predict(dev.texts)
    assert list(fitted.classes_) == sorted(set(sample[0].labels))
    assert probabilities.shape == (len(dev), len(fitted.classes_))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert list(predicted) == list(fitted.classes_[probabilities.argmax(axis=1)])
    assert accuracy_score(dev.labels, predicted) == fitted.score(dev.texts, dev.labels)
    np.testing.assert_allclose(np.exp(fitted.predict_log_proba(dev.texts)), probabilities,
                               rtol=1e-4, atol=1e-6)
    assert set(fitted.metrics_) >= {"dev_accuracy", "dev_macro_f1", "best_epoch"}
    assert fitted.predict([]).shape == (0,)


def test_integer_labels_and_save_load_round_trip(sample, tmp_path):
    train, dev = sample
    names = sorted(set(train.labels))
    number = {name: 10 * (i + 1) for i, name in enumerate(names)}  # 10, 20, ..., 100
    y_train = np.array([number[label] for label in train.labels])
    y_dev = [number[label] for label in dev.labels]
    classifier = TextClassifier(**TINY).fit(train.texts, y_train)
    assert list(classifier.classes_) == sorted(number.values())
    predicted = classifier.predict(dev.texts)
    assert set(predicted.tolist()) <= set(number.values())
    assert accuracy_score(y_dev, predicted) == classifier.score(dev.texts, y_dev)

    loaded = TextClassifier.load(classifier.save(tmp_path / "model"))
    assert loaded.classes_.tolist() == classifier.classes_.tolist()
    assert loaded.predict(dev.texts).tolist() == predicted.tolist()
    np.testing.assert_array_equal(loaded.predict_proba(dev.texts),
                                  classifier.predict_proba(dev.texts))


def test_saved_directory_is_the_predictor_code_path(fitted, sample, tmp_path):
    from newsclf.predict import Predictor

    dev = sample[1]
    saved = fitted.save(tmp_path / "model")
    np.testing.assert_array_equal(Predictor.from_dir(saved).predict_proba(dev.texts),
                                  fitted.predict_proba(dev.texts))

    loaded = TextClassifier.load(saved)
    assert {name: loaded.get_params()[name] for name in TINY} == TINY
    assert loaded.get_params()["seed"] == fitted.seed
    assert loaded.predict(dev.texts).tolist() == fitted.predict(dev.texts).tolist()
    assert loaded.metrics_ == fitted.metrics_

    with pytest.raises(NewsclfError, match="not empty.*overwrite=True"):
        fitted.save(saved)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(NewsclfError, match="no newsclf model"):
        fitted.save(tmp_path / "notes", overwrite=True)

    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    assert fitted.save(tmp_path / "link") == tmp_path / "link"  # the folder it points to gets
    # the model, the link stays
    assert (tmp_path / "link").is_symlink() and (real / "config.json").is_file()
    fitted.save(tmp_path / "link", overwrite=True)
    assert (tmp_path / "link").is_symlink()
    assert TextClassifier.load(tmp_path / "link").predict(["股市大涨"]).shape == (1,)
    assert fitted.save(saved, overwrite=True) == saved
    (saved / "notes.txt").write_text("mine")  # the user's, beside the model: never deleted
    with pytest.raises(NewsclfError, match=r"holds files newsclf did not write \(notes.txt\)"):
        fitted.save(saved, overwrite=True)
    assert (saved / "notes.txt").read_text() == "mine"


def test_pickled_estimator_predicts_identically_and_owns_its_files(fitted, sample):
    dev = sample[1]
    copy = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(copy.predict_proba(dev.texts), fitted.predict_proba(dev.texts))
    model_dir = copy.predictor_.files.path
    assert model_dir != fitted.predictor_.files.path and model_dir.is_dir()
    del copy
    gc.collect()
    assert not model_dir.exists()


def test_refit_replaces_the_model_directory(sample):
    train = sample[0]
    classifier = TextClassifier(**TINY)
    first_dir = classifier.fit(train.texts[:200], train.labels[:200]).predictor_.files.path
    classifier.fit(train.texts, train.labels)
    assert not first_dir.exists()
    assert classifier.predictor_.files.path.is_dir()


def test_same_seed_gives_same_probabilities(fitted, sample):
    train, dev = sample
    again = TextClassifier(**TINY).fit(train.texts, train.labels,
                                       eval_set=(dev.texts, dev.labels))
    np.testing.assert_array_equal(again.predict_proba(dev.texts), fitted.predict_proba(dev.texts))


def test_pipeline_with_preprocessing(sample):
    train, dev = sample
    pipeline = Pipeline([("strip", FunctionTransformer(strip_texts)),
                         ("classify", TextClassifier(**TINY))])
    pipeline.fit([f"  {text}\n" for text in train.texts], train.labels)
    predicted = pipeline.predict(dev.texts)
    assert len(predicted) == len(dev)
    assert set(predicted) <= set(train.labels)


def test_unfitted_estimator_refuses_to_predict(tmp_path):
    classifier = TextClassifier()
    for method in (classifier.predict, classifier.predict_proba, classifier.predict_log_proba):
        with pytest.raises(NotFittedError):
            method(["股市大涨"])
    with pytest.raises(NotFittedError):
        classifier.score(["股市大涨"], ["财经"])
    with pytest.raises(NotFittedError):
        classifier.save(tmp_path / "model")


def test_tables_and_single_strings_are_refused(fitted, sample):
    import pandas as pd

    train = sample[0]
    frame = pd.DataFrame({"text": train.texts, "label": train.labels})
    with pytest.raises(TypeError, match=r"pass its text column, e.g. X\['text'\]"):
        TextClassifier(**TINY).fit(frame, frame["label"])
    with pytest.raises(TypeError, match="text column"):
        fitted.predict(frame[["text"]])
    with pytest.raises(TypeError, match="not a single str"):
        fitted.predict("股市大涨")
    with pytest.raises(TypeError, match=r"X\[1\] is int"):
        fitted.predict(["股市大涨", 3])
    series = frame["text"]
    assert fitted.predict(series).tolist() == fitted.predict(np.array(train.texts)).tolist()


def test_missing_labels_are_refused_not_learned_as_a_class(sample):
    import pandas as pd

    texts = sample[0].texts[:20]
    labels = sample[0].labels[:20]
    for missing in (float("nan"), None):
        y = labels[:-2] + [missing, missing]
        with pytest.raises(ValueError, match=r"y: 2 missing labels \(None or NaN\) at "
                                             r"positions 18, 19; drop those rows"):
            TextClassifier(**TINY).fit(texts, y)
    with pytest.raises(ValueError, match="eval_set labels: 1 missing label"):
        TextClassifier(**TINY).fit(texts, labels, eval_set=(
            texts[:2], pd.Series([labels[0], None], index=[7, 9])))


def test_texts_without_a_frequent_enough_token_are_refused_before_training(sample):
    with pytest.raises(NewsclfError,
                       match=r"the vocabulary is empty: lower --min-freq \(min_freq\)"):
        TextClassifier(**{**TINY, "min_freq": 100_000}).fit(sample[0].texts, sample[0].labels)


def test_a_loaded_estimator_leaves_chosen_settings_to_be_chosen_again(sample_model):
    # the fixture gave epochs and left patience to the data size
    params = TextClassifier.load(sample_model).get_params()
    assert params["epochs"] == 6 and params["patience"] is None


def test_a_diverging_fit_says_to_fit_again_not_where_a_checkpoint_was_kept(sample):
    from newsclf.errors import TrainingDiverged

    train, _ = sample
    model = TextClassifier(**{**TINY, "lr": 1e30})
    with pytest.raises(TrainingDiverged) as diverged:
        model.fit(train.texts[:60], train.labels[:60])
    # the temporary directory is gone with the failed fit: no --overwrite, no path
    assert str(diverged.value).startswith("training diverged: the ")
    assert str(diverged.value).endswith("; lower --lr (now 1e+30), then fit again")
    assert "--overwrite" not in str(diverged.value)
