"""Hostile input through the Python API and the predict/explain commands: texts with nothing to
classify, huge texts, bad arguments. Each case ends correctly or with one clear error line."""

import json
import re
import subprocess
import sys
import types

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsclf import NewsclfError
from newsclf.tokenize import Tokenizer

from conftest import assert_user_error, ROOT, SAMPLE, run_cli

HEADLINES = [line.split("\t")[0] for line in
             (SAMPLE / "dev.tsv").read_text(encoding="utf-8").splitlines()[:40]]


# --- texts with nothing to classify: one decision for every entry point -----------------------

NOTHING = {"": "empty text", "\u200b \t\u3000": "empty text", "🙂🙂": "no known token",
           "ᚠᚢᚦ ꙮ": "no known token"}


def test_api_gives_no_label_for_texts_with_nothing_to_classify(predictor):
    texts = list(NOTHING) + ["央行宣布下调存款准备金率"]
    results = predictor.predict(texts)
    for result, reason in zip(results, NOTHING.values()):
        assert result == {"label": None, "score": None, "error": reason}
    assert results[-1]["label"] in predictor.classes_ and "error" not in results[-1]
    ranked = predictor.predict(texts, top_k=3)
    assert ranked[0] == [{"label": None, "score": None, "error": "empty text"}]
    assert len(ranked[-1]) == 3
    probabilities = predictor.predict_proba(texts)
    n_classes = len(predictor.classes_)
    np.testing.assert_allclose(probabilities[:len(NOTHING)], 1.0 / n_classes, rtol=1e-6)
    assert probabilities[-1].max() > 1.0 / n_classes


def test_a_missing_text_is_an_empty_text_as_in_files(predictor):
    texts = pd.Series(["央行宣布下调存款准备金率", None, np.nan, pd.NA], dtype=object)
    results = predictor.predict(texts)
    assert results[0]["label"] in predictor.classes_
    assert results[1:] == [{"label": None, "score": None, "error": "empty text"}] * 3


def test_training_refuses_an_empty_text_in_every_entry_point(tmp_path):
    from newsclf import TextClassifier

    texts, labels = ["央行宣布下调存款准备金率", "  ", "主队加时赛绝杀"], ["财经", "财经", "体育"]
    with pytest.raises(NewsclfError, match=r"X\[1\]: empty text"):
        TextClassifier(epochs=1, ensemble_size=1).fit(texts, labels)
    with pytest.raises(NewsclfError, match=r"X\[1\]: empty text"):
        TextClassifier(epochs=1, ensemble_size=1).fit([texts[0], None, texts[2]], labels)
    broken = tmp_path / "train.tsv"
    broken.write_text("央行宣布下调存款准备金率\t财经\n \t财经\n主队加时赛绝杀\t体育\n",
                      encoding="utf-8")
    assert_user_error(run_cli("train", "--train", broken, "--output", tmp_path / "m"),
                      "train.tsv:2: empty text")


def test_cli_text_explain_and_files_agree_on_nothing_to_classify(sample_model, tmp_path):
    shown = run_cli("predict", "--model", sample_model, "--text", "", "--text", "🙂🙂",
                    "--text", "央行降息", "--top-k", "2")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.split("\n")
    assert lines[0] == "(no label: empty text)\t"
    assert lines[1] == "(no label: no known token)\t🙂🙂"
    assert re.match(r"\S+ 0\.\d{3}  \S+ 0\.\d{3}\t央行降息$", lines[2])
    for text, reason in [("", "empty text"), ("🙂🙂", "no known token")]:
        assert_user_error(run_cli("explain", "--model", sample_model, "--text", text),
                          "nothing to explain", reason)


def test_explain_api_refuses_texts_with_nothing_to_classify(predictor):
    with pytest.raises(NewsclfError, match="nothing to explain in the text: no known token"):
        predictor.explain("🙂")
    with pytest.raises(NewsclfError, match=r"texts\[1\]: empty text"):
        from newsclf.explain import explain_batch
        explain_batch(predictor, ["央行降息", ""])


# --- huge texts: only what the model keeps is tokenized ------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(list("足球比赛央行宣布下调存款准备金率球队夺冠abc5.%-")
                                + ["，", "。", " ", "！", "\u3000", "\u200b", "S.H.E", "5.5kg",
                                   "、", "\n"]), max_size=600),
       st.sampled_from(["mixed", "char", "word"]), st.integers(1, 70))
def test_truncated_tokenization_equals_the_start_of_the_whole(pieces, mode, max_positions):
    tokenizer = Tokenizer(mode)
    text = "".join(pieces)
    whole = tokenizer.features(text)
    assert tokenizer.features(text, max_positions) == whole[:max_positions]
    assert tokenizer.tokenize(text, max_positions) == tokenizer.tokenize(text)[:max_positions]
    windows = list(tokenizer.iter_feature_windows(text, max_positions))
    assert [f for window in windows for f in window] == whole
    assert all(len(window) == max_positions for window in windows[:-1])


def peak_mib_of_predict(model, input_path, output_path, *options):
    code = ("import resource, sys, runpy\n"
            "sys.argv = ['newsclf'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('newsclf', run_name='__main__')\n"
            "finally:\n"
            "    print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,"
            " file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code, "predict", "--model", str(model),
                             "--input", str(input_path), "--output", str(output_path),
                             "--no-progress", *options],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    return int(re.search(r"PEAK (\d+)", result.stderr).group(1))


def test_a_huge_cell_costs_what_a_headline_costs(sample_model, predictor, tmp_path):
    huge = "，".join(HEADLINES) * 12_000  # about 10 million characters in one cell
    source = tmp_path / "huge.csv"
    pd.DataFrame({"id": ["a", "b"], "text": [huge, HEADLINES[0]]}).to_csv(source, index=False)
    peak = peak_mib_of_predict(sample_model, source, tmp_path / "out.csv")
    assert peak < 1500, f"peak memory {peak} MiB for a 10-million-character cell"
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    expected = predictor.predict([huge[:2000], HEADLINES[0]])
    assert out["pred_label"].tolist() == [row["label"] for row in expected]
    assert out["id"].tolist() == ["a", "b"] and out["text"].tolist()[1] == HEADLINES[0]


def test_chunked_long_texts_combine_every_window_with_known_tokens(predictor):
    article = "，".join(HEADLINES[:12]) + "。" + "🙂" * 200 + "。" + "，".join(HEADLINES[12:20])
    size = predictor.spec.max_len
    features = predictor.tokenizer.features(article)
    windows = [predictor.vocab.encode(features[i:i + size], size, predictor.tokenizer.n_features)
               for i in range(0, len(features), size)]
    windows = [ids for ids in windows if (ids != 1).any()]  # windows of only [UNK] say nothing
    assert len(windows) >= 4
    from newsclf.model.inference import predict_scores, softmax

    scores = predict_scores(predictor._forward, windows)
    # the lead window weighs as much as all the others together
    expected = softmax((scores[0] / 2 + scores[1:].mean(axis=0) / 2)[None])
    np.testing.assert_allclose(predictor.predict_proba([article], long_text="chunk"), expected,
                               atol=1e-5)


# --- bad arguments --------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [0, -5])
def test_bad_batch_sizes(sample_model, tmp_path, predictor, batch_size):
    with pytest.raises(NewsclfError, match="batch_size must be a whole number of at least 1"):
        predictor.predict(["央行降息"], batch_size=batch_size)
    source = tmp_path / "in.txt"
    source.write_text("央行降息\n", encoding="utf-8")
    for args in (["predict", "--text", "央行降息"],
                 ["predict", "--input", source, "--output", tmp_path / "out.csv"],
                 ["evaluate", "--data", SAMPLE / "dev.tsv", "--output", tmp_path / "eval"]):
        result = run_cli(args[0], "--model", sample_model, *args[1:], "--batch-size",
                         str(batch_size))
        assert_user_error(result, "argument --batch-size: must be a whole number of at least 1")
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "eval").exists()


@pytest.mark.parametrize("top_k", [0, -1, 1.5, True])
def test_bad_top_k_in_the_api(predictor, top_k):
    with pytest.raises(NewsclfError, match="top_k must be a whole number of at least 1"):
        predictor.predict(["央行降息"], top_k=top_k)


def test_a_dataframe_is_refused_with_the_fix(predictor):
    frame = pd.DataFrame({"text": ["央行降息", "球队夺冠"]})
    with pytest.raises(NewsclfError, match=r"pass its text column, e.g. frame\['text'\]"):
        predictor.predict(frame)
    assert len(predictor.predict(frame["text"])) == 2


@pytest.mark.parametrize("texts", [None, 42])
def test_non_text_input_is_refused(predictor, texts):
    with pytest.raises(NewsclfError, match="texts must be a string or a sequence of strings"):
        predictor.predict(texts)


def test_text_with_output_is_refused(sample_model, tmp_path):
    assert_user_error(run_cli("predict", "--model", sample_model, "--text", "央行降息",
                              "--output", tmp_path / "x.csv"), "--output goes with --input")
    assert not (tmp_path / "x.csv").exists()


def test_explain_shows_every_text_and_html_honours_top(sample_model, tmp_path):
    both = run_cli("explain", "--model", sample_model, "--text", "央行宣布下调存款准备金率",
                   "--text", "主队加时赛绝杀晋级决赛", "--no-color")
    assert both.returncode == 0, both.stderr
    assert both.stdout.count("prediction: ") == 2
    page = tmp_path / "why.html"
    result = run_cli("explain", "--model", sample_model, "--text", "央行宣布下调存款准备金率",
                     "--html", page, "--top", "3", "--no-color")
    assert result.returncode == 0, result.stderr
    ranked = re.search(r"<ol>(.*?)</ol>", page.read_text(encoding="utf-8"), re.S).group(1)
    assert ranked.count("<li>") == 3
    assert_user_error(run_cli("explain", "--model", sample_model, "--text", "甲", "--text", "乙",
                              "--html", tmp_path / "two.html"), "--html writes one text")
    assert not (tmp_path / "two.html").exists()
    one_empty = run_cli("explain", "--model", sample_model, "--text", "央行宣布下调存款准备金率",
                        "--text", "", "--no-color")
    assert_user_error(one_empty, "--text number 2 (''): nothing to explain", "empty text")
    assert one_empty.stdout.count("prediction: ") == 1  # the first text's explanation


def test_estimator_warns_for_texts_with_nothing_to_classify(sample_model):
    from newsclf.estimator import TextClassifier

    clf = TextClassifier.load(sample_model)
    with pytest.warns(UserWarning, match="1 of 2 texts have nothing to classify"):
        probabilities = clf.predict_proba(["🙂", "央行降息"])
    np.testing.assert_allclose(probabilities[0], 1.0 / len(clf.classes_), rtol=1e-6)
    assert json.dumps(clf.metrics_)


# --- counts, texts and threads: one rule for every entry point ---------------------------------

HEADLINE = "沪指放量上涨"
BAD_COUNTS = [0, -2, 1.5, 2.0, "8", True, np.True_, np.int64(0), np.float64(8.0), None]


def count_refusal(name, value):
    return re.escape(f"{name} must be a whole number of at least 1, not {value!r}")


@pytest.fixture(scope="module")
def estimator(sample_model):
    from newsclf import TextClassifier

    return TextClassifier.load(sample_model)


def assert_same_predictions(got, expected):
    """What a prediction promises whatever the batch size (padding and summation order differ):
    the same labels, and scores equal to 1e-6."""
    assert [result["label"] for result in got] == [result["label"] for result in expected]
    np.testing.assert_allclose(np.array([result["score"] for result in got], dtype=float),
                               np.array([result["score"] for result in expected], dtype=float),
                               rtol=0, atol=1e-6)


def test_numpy_integers_are_counts(predictor):
    ranked = predictor.predict([HEADLINE], top_k=2)
    assert len(ranked[0]) == 2
    for top_k in (np.int64(2), np.int32(2), np.uint8(2)):
        assert predictor.predict([HEADLINE], top_k=top_k) == ranked
    texts = HEADLINES[:10]
    expected = predictor.predict_proba(texts)
    for batch_size in (np.int64(8), np.int32(3), np.array(4)):
        assert_same_predictions(predictor.predict(texts, batch_size=batch_size),
                                predictor.predict(texts))
        np.testing.assert_allclose(predictor.predict_proba(texts, batch_size=batch_size),
                                   expected, atol=1e-6)
        np.testing.assert_allclose(predictor.classify(texts, batch_size=batch_size)[0],
                                   expected, atol=1e-6)
        np.testing.assert_allclose(predictor.predict_log_proba(texts, batch_size=batch_size),
                                   np.log(expected), atol=1e-5)
        assert len(predictor.window_scores(texts, batch_size=batch_size)) == 10


@pytest.mark.parametrize("value", BAD_COUNTS, ids=repr)
def test_bad_counts_are_refused_alike_by_every_method(predictor, value):
    message = count_refusal("batch_size", value)
    for method in (predictor.predict, predictor.predict_proba, predictor.predict_log_proba,
                   predictor.classify, predictor.window_scores):
        with pytest.raises(NewsclfError, match=message):
            method([HEADLINE], batch_size=value)
    if value is not None:  # top_k=None: the best label alone
        with pytest.raises(NewsclfError, match=count_refusal("top_k", value)):
            predictor.predict([HEADLINE], top_k=value)


def test_other_functions_take_counts_by_the_same_rule(predictor, tmp_path):
    from newsclf import TrainConfig, evaluate
    from newsclf.predict import predict_file

    predicted = [row["label"] for row in predictor.predict(HEADLINES[:6])]
    result = evaluate(predictor, HEADLINES[:6], predicted, batch_size=np.int64(4))
    assert result.accuracy == 1.0
    with pytest.raises(NewsclfError, match=count_refusal("batch_size", 0)):
        evaluate(predictor, HEADLINES[:2], ["财经", "财经"], batch_size=0)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(HEADLINES[:5]) + "\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    summary = predict_file(predictor, str(source), str(out), top_k=np.int64(2),
                           batch_size=np.int64(2), chunk_size=np.int64(2), workers=np.int64(1),
                           progress=False)
    assert summary["rows"] == 5 and "top2_label" in pd.read_csv(out).columns
    out.unlink()
    for option, value in [("chunk_size", 0), ("workers", 0), ("workers", "2"),
                          ("top_k", np.int64(-1))]:
        with pytest.raises(NewsclfError, match=count_refusal(option, value)):
            predict_file(predictor, str(source), str(out), progress=False, **{option: value})
        assert not out.exists()
    config = TrainConfig(batch_size=np.int64(8), epochs=np.int32(3)).validate()
    assert type(config.batch_size) is int and type(config.epochs) is int
    assert json.loads(json.dumps(config.to_dict()))["batch_size"] == 8
    for value in (0, 2.5, True):
        with pytest.raises(NewsclfError, match=count_refusal("batch_size", value)):
            TrainConfig(batch_size=value).validate()


def test_a_bad_workers_count_stops_fitting_before_training(tmp_path):
    from newsclf import TextClassifier

    texts = HEADLINES[:4]
    for value in (0, "2", 1.5):
        with pytest.raises(NewsclfError, match=count_refusal("workers", value)):
            TextClassifier(ensemble_size=1, epochs=1, workers=value).fit(texts, ["a", "b"] * 2)


@pytest.mark.parametrize("data", [b"abc", bytearray("沪指".encode()), memoryview(b"abc")],
                         ids=["bytes", "bytearray", "memoryview"])
def test_bytes_are_not_texts(predictor, estimator, data):
    kind = type(data).__name__
    message = re.escape(f"texts is {kind}, not text; decode it first: data.decode('utf-8')")
    for method in (predictor.predict, predictor.predict_proba, predictor.classify):
        with pytest.raises(NewsclfError, match=message):
            method(data)
    for call in (estimator.predict, estimator.predict_proba, lambda X: estimator.score(X, ["a"])):
        with pytest.raises(NewsclfError, match=re.escape(f"X is {kind}, not text; decode it")):
            call(data)
    with pytest.raises(TypeError, match=re.escape("texts[0] is bytes, not str; decode it first")):
        predictor.predict([b"abc"])


def test_one_string_is_one_text_for_a_predictor_and_refused_by_the_estimator(predictor,
                                                                                 estimator):
    assert predictor.predict(HEADLINE) == predictor.predict([HEADLINE])
    assert len(predictor.predict(HEADLINE)) == 1
    assert predictor.predict_proba(HEADLINE).shape == (1, len(predictor.classes_))
    for call in (estimator.predict, estimator.predict_proba,
                 lambda X: estimator.score(X, ["财经"])):
        with pytest.raises(TypeError, match="X must be a sequence of texts, not a single str"):
            call(HEADLINE)


@pytest.mark.parametrize("mapping", [{"a": HEADLINE}, {HEADLINE: "a"},
                                     types.MappingProxyType({"a": HEADLINE})],
                         ids=["texts-as-values", "texts-as-keys", "read-only-mapping"])
def test_a_mapping_is_refused_not_read_for_its_keys(predictor, estimator, mapping):
    from newsclf import evaluate
    from newsclf.explain import explain_batch

    kind = type(mapping).__name__
    message = re.escape(f"texts is a mapping ({kind}); pass its texts, e.g. list(d.values()), "
                        "or a list or Series of texts")
    for method in (predictor.predict, predictor.predict_proba, predictor.classify):
        with pytest.raises(NewsclfError, match=message):
            method(mapping)
    with pytest.raises(NewsclfError, match=message):
        evaluate(predictor, mapping, ["财经"])
    with pytest.raises(NewsclfError, match=message):
        explain_batch(predictor, mapping)
    for call in (estimator.predict, estimator.predict_proba,
                 lambda X: estimator.score(X, ["财经"])):
        with pytest.raises(NewsclfError, match=re.escape(f"X is a mapping ({kind}); pass its")):
            call(mapping)


def test_series_arrays_and_dict_values_are_texts(predictor, estimator):
    texts = HEADLINES[:5]
    expected = predictor.predict(texts)
    series = pd.Series(texts, index=[10, 3, 7, 1, 99])  # the index is not the order
    assert predictor.predict(series) == expected
    assert predictor.predict(np.array(texts)) == expected
    assert predictor.predict(tuple(texts)) == expected
    assert predictor.predict(dict(zip("abcde", texts)).values()) == expected
    np.testing.assert_allclose(predictor.predict_proba(series), predictor.predict_proba(texts))
    labels = [row["label"] for row in expected]
    assert estimator.predict(series).tolist() == labels
    assert estimator.predict(np.array(texts)).tolist() == labels
    assert estimator.score(series, labels) == 1.0


@pytest.mark.parametrize("threads", ["2", 0, -2, 1.5, True, np.int64(0)], ids=repr)
def test_bad_threads_are_refused_in_one_line(sample_model, threads):
    from newsclf import Predictor

    with pytest.raises(NewsclfError, match=count_refusal("threads", threads)):
        Predictor.from_dir(sample_model, threads=threads)


def test_threads_take_numpy_integers_and_none(sample_model, predictor):
    from newsclf import Predictor

    texts = HEADLINES[:5]
    for threads in (np.int64(2), 1, None):
        loaded = Predictor.from_dir(sample_model, threads=threads)
        assert loaded.predict(texts) == predictor.predict(texts)


def test_the_service_takes_counts_by_the_same_rule(sample_model, predictor):
    from newsclf.serve import create_app

    for option, value in [("threads", 0), ("threads", "2"), ("max_texts", 0),
                          ("max_chars", 2.5), ("max_batch_texts", True)]:
        with pytest.raises(NewsclfError, match=count_refusal(option, value)):
            create_app(sample_model, **{option: value})
    app = create_app(predictor, max_texts=np.int64(3), threads=np.int64(1))
    assert app.state.served.predictor is predictor
