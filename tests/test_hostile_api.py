"""Hostile input through the Python API and the predict/explain commands: texts with nothing to
classify, huge texts, bad arguments. Each case ends correctly or with one clear error line."""

import json
import re
import subprocess
import sys

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
