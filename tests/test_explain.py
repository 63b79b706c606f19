"""Attention inspection (newsclf.explain) through its public API and its CLI entry point."""

import argparse
import html
import re

import numpy as np
import pytest

from conftest import SAMPLE
from newsclf.errors import NewsclfError
from newsclf.explain import add_explain_parser, cmd_explain, explain, explain_batch

HEADLINES = ["国足", "央行宣布下调存款准备金率", "沪指放量上涨 券商板块集体走强，两市成交额突破万亿",
             "教育部发布高考报名新规"]


def _check_padded_attention(batch):
    attention, mask = batch.padded_attentions, batch.mask
    assert attention.shape[0] == mask.shape[0] == len(batch)
    assert attention.shape[-1] == attention.shape[-2] == mask.shape[1]
    assert (~mask).any(), "the batch should contain padding"
    for b in range(len(batch)):
        real = mask[b]
        for layer in range(attention.shape[1]):
            for head in range(attention.shape[2]):
                weights = attention[b, layer, head]
                # every query's weights sum to 1 over the real tokens ...
                np.testing.assert_allclose(weights[real][:, real].sum(axis=-1), 1.0, atol=1e-5)
                # ... and padding keys get exactly 0, from real and padding queries alike
                assert np.all(weights[:, ~real] == 0.0)
                assert np.all(weights >= 0.0)


def test_padded_batch_attention_rows_sum_to_one_and_zero_on_padding(predictor):
    batch = explain_batch(predictor, HEADLINES)
    _check_padded_attention(batch)
    lengths = [len(ids) for ids in predictor.encode(HEADLINES)]
    assert batch.mask.sum(axis=1).tolist() == lengths
    layers, heads = predictor.config.n_layers, predictor.config.n_heads
    for explanation, n, b in zip(batch, lengths, range(len(batch))):
        # cropped to the text's own length: exactly the padded batch's real block
        assert explanation.attentions.shape == (layers, heads, n, n)
        np.testing.assert_array_equal(explanation.attentions, batch.padded_attentions[b, :, :, :n, :n])
        np.testing.assert_allclose(explanation.attentions.sum(axis=-1), 1.0, atol=1e-5)


def test_batch_and_single_explanations_agree(predictor):
    batch = explain_batch(predictor, HEADLINES)
    for text, in_batch in zip(HEADLINES, batch):
        alone = explain(predictor, text)
        assert alone.tokens == in_batch.tokens and alone.label == in_batch.label
        np.testing.assert_allclose(alone.attentions, in_batch.attentions, atol=1e-5)
        np.testing.assert_allclose(alone.importance, in_batch.importance, atol=1e-5)
        assert alone.score == pytest.approx(in_batch.score, abs=1e-5)


def test_tokens_align_with_model_positions(predictor):
    long_text = "央行宣布下调存款准备金率" * 20
    for text in HEADLINES + [long_text, "  NBA总决赛 G7  "]:
        explanation = explain(predictor, text)
        n = len(predictor.encode([text])[0])
        assert len(explanation.tokens) == n == explanation.attentions.shape[-1]
        assert explanation.tokens == predictor.tokenizer.tokenize(text)[:predictor.config.max_len]
        assert len(explanation.importance) == n
    assert len(explain(predictor, long_text).tokens) == predictor.config.max_len


def test_importance_is_a_distribution_over_tokens(predictor):
    for text in HEADLINES:
        importance = explain(predictor, text).importance
        assert np.all(importance >= 0.0)
        assert importance.sum() == pytest.approx(1.0, abs=1e-6)


def test_top_tokens_are_ranked(predictor):
    explanation = explain(predictor, HEADLINES[2])
    top = explanation.top_tokens(5)
    assert len(top) == 5
    assert [w for _, w in top] == sorted((w for _, w in top), reverse=True)
    assert top[0][1] == pytest.approx(float(explanation.importance.max()))


def test_prediction_matches_predictor(predictor):
    for text in HEADLINES + [""]:
        explanation = explain(predictor, text)
        best = predictor.predict([text])[0]
        assert explanation.label == best["label"]
        assert explanation.score == best["score"]
        probabilities = predictor.predict_proba([text])[0]
        assert list(explanation.probabilities) == list(predictor.classes_)
        np.testing.assert_allclose(list(explanation.probabilities.values()), probabilities,
                                   rtol=0, atol=1e-7)


def test_empty_text_is_one_unknown_position(predictor):
    explanation = explain(predictor, "")
    assert explanation.tokens == ["[UNK]"]
    assert explanation.attentions.shape[-2:] == (1, 1)
    np.testing.assert_allclose(explanation.attentions, 1.0, atol=1e-6)
    assert explanation.importance.tolist() == [1.0]
    assert explain(predictor, " \u200b\t ").tokens == ["[UNK]"]


def test_html_is_self_contained_and_escapes_text(predictor):
    text = '<script>alert("x")</script> 央行 & 券商 "降息"'
    page = explain(predictor, text).to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    assert html.escape(text) in page
    assert "<script" not in page
    assert "http" not in page.lower()
    assert not re.search(r"\b(src|href)\s*=", page, re.IGNORECASE)
    assert "@import" not in page and "url(" not in page
    for name in predictor.classes_:
        assert html.escape(str(name)) in page


def test_to_terminal_with_and_without_colour(predictor):
    explanation = explain(predictor, HEADLINES[1])
    plain = explanation.to_terminal(color=False, top=3)
    assert "\x1b" not in plain
    lines = plain.split("\n")
    assert lines[0].startswith("prediction: " + explanation.label)
    ranked = [line for line in lines if re.fullmatch(r"\s+\S+\s+\d\.\d{3}", line)]
    assert len(ranked) == 3
    assert ranked[0].split()[0] == explanation.top_tokens(1)[0][0]
    coloured = explanation.to_terminal(color=True)
    assert "\x1b[48;5;" in coloured and coloured.count("\x1b[0m") >= len(explanation.tokens)
    # auto: pytest captures stdout, which is not a terminal
    assert "\x1b" not in explanation.to_terminal()
    # a hostile text cannot inject terminal escapes: tokens are normalized text
    assert "\x1b[2J" not in explain(predictor, "\x1b[2J央行降息").to_terminal(color=True)


def test_explain_refuses_bad_input(predictor):
    with pytest.raises(NewsclfError):
        explain_batch(predictor, [])
    with pytest.raises(TypeError):
        explain(predictor, None)
    with pytest.raises(TypeError):
        explain_batch(predictor, ["央行", 3])


@pytest.fixture(scope="module")
def cls_predictor(tmp_path_factory):
    from newsclf import Predictor, TrainConfig
    from newsclf.data import read_labelled
    from newsclf.train import train

    out = tmp_path_factory.mktemp("models") / "cls"
    config = TrainConfig(d_model=16, n_heads=2, n_layers=2, d_ff=32, epochs=1, batch_size=32,
                         min_freq=1, pooling="cls", tokenizer="word", seed=3)
    train(config, read_labelled(SAMPLE / "train.tsv"), None, out, progress=False,
          log=lambda message: None)
    return Predictor.from_dir(out)


def test_cls_models_drop_the_cls_position(cls_predictor):
    batch = explain_batch(cls_predictor, HEADLINES)
    assert batch.offset == 1
    _check_padded_attention(batch)
    for text, explanation in zip(HEADLINES, batch):
        n = len(cls_predictor.encode([text])[0])
        assert explanation.tokens == cls_predictor.tokenizer.words(text)
        assert explanation.attentions.shape[-2:] == (n, n)
        assert explanation.model_attentions.shape[-2:] == (n + 1, n + 1)
        np.testing.assert_array_equal(explanation.attentions,
                                      explanation.model_attentions[:, :, 1:, 1:])
        np.testing.assert_allclose(explanation.model_attentions.sum(axis=-1), 1.0, atol=1e-5)
        assert np.all(explanation.importance >= 0)
        assert explanation.importance.sum() == pytest.approx(1.0, abs=1e-6)
        assert explanation.label == cls_predictor.predict([text])[0]["label"]


# --- CLI (cmd_explain through its own argparse parser; cli.py wiring is tested separately) ---

def _run(argv):
    parser = argparse.ArgumentParser(prog="newsclf")
    add_explain_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["explain", *map(str, argv)])
    cmd_explain(args)


def test_cli_prints_and_writes_html(sample_model, tmp_path, capsys):
    page = tmp_path / "why.html"
    _run(["--model", sample_model, "--text", "央行宣布下调存款准备金率", "--html", page,
          "--top", "4", "--no-color"])
    out, err = capsys.readouterr()
    assert out.startswith("prediction: ") and "\x1b" not in out
    assert len([line for line in out.split("\n") if re.fullmatch(r"\s+\S+\s+\d\.\d{3}", line)]) == 4
    assert str(page) in err
    text = page.read_text(encoding="utf-8")
    assert "央行宣布下调存款准备金率" in text and "http" not in text.lower()
    assert [p.name for p in tmp_path.iterdir()] == ["why.html"]  # no temporary files left

    _run(["--model", sample_model, "--text", "国足", "--color"])
    assert "\x1b[48;5;" in capsys.readouterr().out


def test_cli_user_errors(sample_model, tmp_path):
    with pytest.raises(NewsclfError, match="--top"):
        _run(["--model", sample_model, "--text", "国足", "--top", "0"])
    with pytest.raises(NewsclfError, match="does not exist"):
        _run(["--model", sample_model, "--text", "国足", "--html", tmp_path / "nope" / "x.html"])
    with pytest.raises(NewsclfError, match="directory"):
        _run(["--model", sample_model, "--text", "国足", "--html", tmp_path])
    with pytest.raises(NewsclfError):
        _run(["--model", tmp_path / "missing", "--text", "国足"])
    with pytest.raises(SystemExit):  # --text is required
        _run(["--model", sample_model])
