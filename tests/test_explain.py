"""Attention inspection (newsclf.explain) through its public API and its CLI entry point."""

import argparse
import html
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLE, assert_user_error, run_cli
from newsclf.errors import NewsclfError
from newsclf.cli import explain as explain_command
from newsclf.explain import explain, explain_batch

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
    layers, heads = predictor.spec.n_layers, predictor.spec.n_heads
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
        assert explanation.tokens == predictor.tokenizer.tokenize(text)[:predictor.spec.max_len]
        assert len(explanation.importance) == n
    assert len(explain(predictor, long_text).tokens) == predictor.spec.max_len


def _rollout_by_hand(attentions, residual=0.5):
    """Attention rollout written out position by position, for comparison with the library."""
    layers, heads, n, _ = attentions.shape
    rollout = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    for layer in range(layers):
        mixed = []
        for i in range(n):
            row = [(1 - residual) * sum(float(attentions[layer, h, i, j])
                                        for h in range(heads)) / heads
                   + (residual if i == j else 0.0) for j in range(n)]
            total = sum(row)
            mixed.append([value / total for value in row])
        rollout = [[sum(mixed[i][k] * rollout[k][j] for k in range(n)) for j in range(n)]
                   for i in range(n)]
    return np.array(rollout)


def test_importance_is_a_distribution_over_tokens(predictor, cls_predictor):
    assert predictor.spec.pooling == "mean" and cls_predictor.spec.pooling == "cls"
    for text in HEADLINES:
        explanation = explain(predictor, text)
        importance = explanation.importance
        assert np.all(importance >= 0.0)
        assert importance.sum() == pytest.approx(1.0, abs=1e-6)
        # mean pooling: the mean rollout row over the text's positions, from its own attention
        expected = _rollout_by_hand(explanation.attentions).mean(axis=0)
        np.testing.assert_allclose(importance, expected / expected.sum(), atol=1e-6)
    for text in HEADLINES[1:]:
        explanation = explain(cls_predictor, text)
        assert cls_predictor.spec.n_layers == 2
        # [CLS] pooling: the [CLS] rollout row over the model's positions, [CLS] column dropped
        cls_row = _rollout_by_hand(explanation.model_attentions)[0, 1:]
        np.testing.assert_allclose(explanation.importance, cls_row / cls_row.sum(), atol=1e-6)
        # not what the mean over rows would give: the two poolings are told apart
        rows = _rollout_by_hand(explanation.model_attentions)[:, 1:].mean(axis=0)
        assert not np.allclose(explanation.importance, rows / rows.sum(), atol=1e-4)


def test_attention_rollout_worked_example():
    from newsclf.explain import attention_rollout, rollout_importance

    everyone_to = lambda j: np.eye(3)[[j, j, j]]  # noqa: E731  every query attends to token j
    attentions = np.array([
        [everyone_to(0), everyone_to(2)],   # layer 1: heads average to rows [.5, 0, .5]
        [np.eye(3), everyone_to(1)],        # layer 2: [.5, .5, 0], [0, 1, 0], [0, .5, .5]
    ])
    # 0.5 * head average + 0.5 * identity, per layer (rows already sum to 1)
    layer1 = np.array([[.75, 0, .25],
                       [.25, .5, .25],
                       [.25, 0, .75]])
    layer2 = np.array([[.75, .25, 0],
                       [0, 1, 0],
                       [0, .25, .75]])
    # rollout = layer2 @ layer1, row by row:
    #   row 0 = .75 * [.75, 0, .25] + .25 * [.25, .5, .25]   = [.625, .125, .25]
    #   row 1 = 1 * [.25, .5, .25]                            = [.25, .5, .25]
    #   row 2 = .25 * [.25, .5, .25] + .75 * [.25, 0, .75]   = [.25, .125, .625]
    expected = np.array([[.625, .125, .25],
                         [.25, .5, .25],
                         [.25, .125, .625]])
    np.testing.assert_allclose(attention_rollout(attentions[:1]), layer1, atol=1e-12)
    np.testing.assert_allclose(attention_rollout(attentions[1:]), layer2, atol=1e-12)
    np.testing.assert_allclose(attention_rollout(attentions), expected, atol=1e-12)
    # mean pooling: column means of the rollout, (.625 + .25 + .25) / 3 = .375, ...
    np.testing.assert_allclose(rollout_importance(attentions), [.375, .25, .375], atol=1e-12)
    # [CLS] pooling (position 0 is [CLS]): its row without its own column, renormalized:
    # [.125, .25] / .375
    np.testing.assert_allclose(rollout_importance(attentions, offset=1), [1 / 3, 2 / 3],
                               atol=1e-12)
    # without the residual the rollout is the plain product of the head averages: every row of
    # layer 1's average is [.5, 0, .5], and any mix of such rows (layer 2) is that row again
    np.testing.assert_allclose(attention_rollout(attentions, residual=0.0), [[.5, 0, .5]] * 3,
                               atol=1e-12)

    # every head of 3 layers sends every query to token 0 (4 tokens): each layer maps a row to
    # half itself plus half token 0, so after 3 layers a row keeps 1/8 of its own position and
    # token 0 gets the rest; importance: token 0 (1 + 3 * 7/8) / 4, the others (1/8) / 4 each
    to_first = np.broadcast_to(np.eye(4)[[0, 0, 0, 0]], (3, 2, 4, 4))
    rollout = attention_rollout(to_first)
    np.testing.assert_allclose(rollout, [[1, 0, 0, 0],
                                         [7 / 8, 1 / 8, 0, 0],
                                         [7 / 8, 0, 1 / 8, 0],
                                         [7 / 8, 0, 0, 1 / 8]], atol=1e-12)
    np.testing.assert_allclose(rollout_importance(to_first),
                               [(1 + 3 * 7 / 8) / 4, 1 / 32, 1 / 32, 1 / 32], atol=1e-12)


def test_top_tokens_are_ranked(predictor):
    explanation = explain(predictor, HEADLINES[2])
    top = explanation.top_tokens(5)
    assert len(top) == 5
    assert [w for _, w in top] == sorted((w for _, w in top), reverse=True)
    assert top[0][1] == pytest.approx(float(explanation.importance.max()))


def test_prediction_matches_predictor(predictor):
    for text in HEADLINES:
        explanation = explain(predictor, text)
        best = predictor.predict([text])[0]
        assert explanation.label == best["label"]
        assert explanation.score == best["score"]
        probabilities = predictor.predict_proba([text])[0]
        assert list(explanation.probabilities) == list(predictor.classes_)
        np.testing.assert_allclose(list(explanation.probabilities.values()), probabilities,
                                   rtol=0, atol=1e-7)


def test_empty_text_has_nothing_to_explain(predictor):
    for text in ("", " \u200b\t "):
        with pytest.raises(NewsclfError, match="nothing to explain in the text: empty text"):
            explain(predictor, text)


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
    from newsclf.training import train

    out = tmp_path_factory.mktemp("models") / "cls"
    config = TrainConfig(d_model=16, n_heads=2, n_layers=2, d_ff=32, epochs=1, batch_size=32,
                         min_freq=1, pooling="cls", tokenizer="word", seed=3)
    train(config, read_labelled(SAMPLE / "train.tsv"), None, out, progress=False,
          log=lambda message: None)
    return Predictor.from_dir(out)


def test_cls_models_drop_the_cls_position(cls_predictor):
    _, problems = cls_predictor.classify(HEADLINES)  # jieba words unseen in training: no label
    texts = [text for text, problem in zip(HEADLINES, problems) if problem is None]
    assert len(texts) >= 3
    batch = explain_batch(cls_predictor, texts)
    assert batch.offset == 1
    _check_padded_attention(batch)
    for text, explanation in zip(texts, batch):
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


# --- signed attributions: occlusion and integrated gradients ---

def _paddle():
    from newsclf.runtime import configure_paddle

    return configure_paddle()


def _label_probability(predictor, ids, target, scale=None):
    """p(target) from the network for each row of ``ids`` ``[batch, length, features]``."""
    paddle = _paddle()
    model = predictor.model
    model.eval()
    with paddle.no_grad():
        scores = model(paddle.to_tensor(ids),
                       token_scale=None if scale is None else paddle.to_tensor(scale))
    scores = scores.numpy().astype(np.float64)
    probabilities = np.exp(scores - scores.max(axis=1, keepdims=True))
    return (probabilities / probabilities.sum(axis=1, keepdims=True))[:, target]


def _check_occlusion(predictor, text):
    explanation = explain(predictor, text, method="occlusion")
    assert explanation.method == "occlusion" and explanation.signed
    ids = predictor.encode([text])[0]
    target = list(predictor.classes_).index(explanation.label)
    assert explanation.importance.shape == (len(ids),) == (len(explanation.tokens),)
    # recomputed one variant at a time: the row of position j deleted from the ids
    full = predictor.predict_proba([text])[0, target]
    for j in range(len(ids)):
        without = _label_probability(predictor, np.delete(ids, j, axis=0)[None], target)[0]
        assert explanation.importance[j] == pytest.approx(full - without, abs=1e-4), j
    return explanation


def _check_completeness(predictor, text, steps, tolerance):
    explanation = explain(predictor, text, method="integrated-gradients", steps=steps)
    assert explanation.signed and explanation.steps == steps
    ids = predictor.encode([text])[0]
    target = list(predictor.classes_).index(explanation.label)
    baseline = _label_probability(predictor, ids[None], target,
                                  np.zeros((1, len(ids)), dtype=np.float32))[0]
    assert explanation.baseline_score == pytest.approx(baseline, abs=1e-5)
    rise = explanation.score - baseline
    assert abs(explanation.importance.sum() - rise) <= tolerance, (
        explanation.importance.sum(), rise)
    return explanation


def test_occlusion_is_the_drop_without_each_token(predictor):
    for text in HEADLINES[1:3]:
        explanation = _check_occlusion(predictor, text)
        # the attention stays available and is the same whatever the method
        np.testing.assert_allclose(explanation.attentions, explain(predictor, text).attentions,
                                   atol=1e-6)
    assert len(explanation.importance) > 20  # the long headline: 20+ variants in one batch


def test_integrated_gradients_add_up_to_the_rise_from_the_baseline(predictor):
    for text in HEADLINES[1:]:
        # trapezoid rule: the error shrinks with the square of the step count
        coarse = _check_completeness(predictor, text, 32, 5e-3)
        fine = _check_completeness(predictor, text, 128, 1e-3)
        np.testing.assert_allclose(coarse.importance, fine.importance, atol=0.02)
    with_steps = explain(predictor, HEADLINES[1], method="integrated-gradients")
    assert with_steps.steps == 32 and str(with_steps.steps) in with_steps.description


def test_integrated_gradients_use_the_true_gradient_per_token(predictor):
    """One trapezoid step is the mean of the gradients at the baseline and at the input:
    compare each token's with central differences of the network itself."""
    from newsclf.explain import integrated_gradients

    text = HEADLINES[2]
    ids = predictor.encode([text])[0]
    n, h = len(ids), 1e-2
    target = int(np.argmax(predictor.predict_proba([text])[0]))
    attributions, baseline, at_input = integrated_gradients(predictor, ids, target, steps=1)
    scales = []
    for alpha in (0.0, 1.0):
        for j in range(n):
            for sign in (1, -1):
                scale = np.full(n, alpha)
                scale[j] += sign * h
                scales.append(scale)
    p = _label_probability(predictor, np.repeat(ids[None], len(scales), axis=0), target,
                           np.array(scales, dtype=np.float32)).reshape(2, n, 2)
    gradients = (p[..., 0] - p[..., 1]) / (2 * h)
    np.testing.assert_allclose(attributions, gradients.mean(axis=0), atol=2e-3)
    assert at_input == pytest.approx(predictor.predict_proba([text])[0, target], abs=1e-5)


class _TinyBag:
    """A two-class model with known attributions: the logit of class 1 is the sum over the
    positions of ``delta[id] * scale``, class 0's is 0, so ``p1 = sigmoid(z)``."""

    def __init__(self, delta):
        paddle = _paddle()

        class Network(paddle.nn.Layer):
            def __init__(self):
                super().__init__()
                self.table = paddle.to_tensor(np.asarray(delta, dtype=np.float32)[:, None])

            def forward(self, ids, token_scale=None):
                z = paddle.nn.functional.embedding(ids[:, :, 0], self.table)[:, :, 0]
                if token_scale is not None:
                    z = z * token_scale
                z = z.sum(axis=1, keepdim=True)
                return paddle.concat([paddle.zeros_like(z), z], axis=1)

        self.model = Network()
        self.classes_ = np.array(["against", "for"], dtype=object)


def test_signs_and_values_on_a_model_with_known_attributions():
    from newsclf.explain import integrated_gradients, occlusion_importance

    delta = np.array([0, 0, 1.5, -0.7, 0.4, 0.9, -2.0])
    model = _TinyBag(delta)
    ids = np.array([[2], [3], [4], [5], [6], [2]])
    d = delta[ids[:, 0]]
    z = d.sum()  # 1.6: class 1 predicted
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    # integrated gradients of a function of sum(scale * d): IG_j = d_j / z * (p(z) - p(0))
    attributions, baseline, at_input = integrated_gradients(model, ids, 1, steps=64)
    np.testing.assert_allclose(attributions, d / z * (sigmoid(z) - 0.5), atol=1e-4)
    assert (baseline, at_input) == (pytest.approx(0.5), pytest.approx(sigmoid(z)))
    assert np.array_equal(np.sign(attributions), np.sign(d))  # + for class 1, - against it
    # for class 0 every sign flips
    np.testing.assert_allclose(integrated_gradients(model, ids, 0, steps=64)[0], -attributions,
                               atol=1e-6)
    # occlusion: deleting position j takes d_j out of the sum
    np.testing.assert_allclose(occlusion_importance(model, ids, 1),
                               sigmoid(z) - sigmoid(z - d), atol=1e-6)
    # nothing left, or nothing known ([UNK] = 1) left: equal probabilities, as predict gives
    assert occlusion_importance(model, ids[:1], 1) == pytest.approx([sigmoid(1.5) - 0.5])
    unknown = np.array([[4], [1]])
    np.testing.assert_allclose(occlusion_importance(model, unknown, 1),
                               [sigmoid(0.4) - 0.5, 0.0], atol=1e-6)


def test_delete_positions():
    from newsclf.explain import delete_positions

    ids = np.arange(12).reshape(6, 2)
    np.testing.assert_array_equal(delete_positions(ids, [4, 1]), ids[[0, 2, 3, 5]])
    np.testing.assert_array_equal(delete_positions(ids, []), ids)
    with pytest.raises(IndexError):
        delete_positions(ids, [6])


@pytest.fixture(scope="module")
def ensemble_predictor(sample_model, tmp_path_factory):
    """An ensemble of two members built from the sample model's weights (the second one
    perturbed), with no export: it runs on the dynamic graph."""
    from dataclasses import replace

    from newsclf import Predictor
    from newsclf.model.layers import ensemble_weights
    from newsclf.modeldir import load_model_dir, save_model_dir

    files = load_model_dir(sample_model)
    rng = np.random.default_rng(0)
    other = {name: value + rng.normal(0, 0.05, value.shape).astype(value.dtype)
             for name, value in files.weights.items()}
    out = tmp_path_factory.mktemp("models") / "ensemble"
    save_model_dir(out, spec=replace(files.spec, ensemble_size=2), vocab=files.vocab,
                   labels=files.labels, weights=ensemble_weights([files.weights, other]),
                   training={})
    return Predictor.from_dir(out)


def test_signed_methods_on_an_ensemble_and_a_cls_model(ensemble_predictor, cls_predictor):
    assert type(ensemble_predictor.model).__name__ == "EnsembleClassifier"
    for text in HEADLINES[1:3]:
        _check_occlusion(ensemble_predictor, text)
        _check_completeness(ensemble_predictor, text, 32, 5e-3)
    assert cls_predictor.spec.pooling == "cls"
    text = "央行宣布下调存款准备金率"
    assert cls_predictor.classify([text])[1] == [None]
    for explanation in (_check_occlusion(cls_predictor, text),
                        _check_completeness(cls_predictor, text, 32, 5e-3)):
        # one score per token, [CLS] not among them
        assert len(explanation.importance) == len(explanation.tokens) \
            == explanation.model_attentions.shape[-1] - 1


def test_unknown_method_is_refused_in_one_line(predictor):
    for method in ("bogus", None, "Rollout"):
        with pytest.raises(NewsclfError) as error:
            explain(predictor, "国足", method=method)
        assert str(error.value) == (f"method must be one of rollout, occlusion, "
                                    f"integrated-gradients, not {method!r}")
    for steps in (0, 2.5, True):
        with pytest.raises(NewsclfError, match="steps must be a whole number of at least 1"):
            explain_batch(predictor, ["国足"], method="integrated-gradients", steps=steps)


def test_signed_views_show_for_and_against(predictor):
    explanation = explain(predictor, HEADLINES[2], method="occlusion")
    assert (explanation.importance > 0).any() and (explanation.importance < 0).any()
    plain = explanation.to_terminal(color=False, top=3)
    assert "\x1b" not in plain
    lines = plain.split("\n")
    assert lines[0].startswith("prediction: " + explanation.label)
    assert lines[1].startswith("importance: occlusion")
    start, middle = lines.index(f"for {explanation.label}:"), lines.index(
        f"against {explanation.label}:")
    supporting, opposing = lines[start + 1:middle], lines[middle + 1:]
    assert [line.split()[0] for line in supporting] == [t for t, _ in explanation.tokens_for(3)]
    assert all(re.fullmatch(r"\s+\S+\s+\+\d\.\d{3}", line) for line in supporting)
    assert all(re.fullmatch(r"\s+\S+\s+-\d\.\d{3}", line) for line in opposing)
    assert opposing and opposing[0].split()[0] == explanation.tokens_against(1)[0][0]
    coloured = explanation.to_terminal(color=True)
    assert "\x1b[48;5;" in coloured and "green = for" in coloured

    page = explanation.to_html(top=3)
    assert "rgba(22, 163, 74" in page and "rgba(220, 38, 38" in page
    assert "Green</span> = the token supports" in page and "drops when the token is deleted" in page
    assert page.count('<ol class="for"><li>') == page.count('<ol class="against"><li>') == 1


# --- CLI (the explain command through its own argparse parser; the wiring is tested separately) ---

def _run(argv):
    parser = argparse.ArgumentParser(prog="newsclf")
    explain_command.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["explain", *map(str, argv)])
    explain_command.run(args)


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

def test_html_output_other_than_a_web_page_is_refused_and_left_unchanged(sample_model,
                                                                          tmp_path):
    data = tmp_path / "headlines.txt"
    data.write_text("央行宣布下调存款准备金率\n", encoding="utf-8")
    config = Path(sample_model) / "config.json"
    before = config.read_bytes()
    for target in (config, data, tmp_path / "page"):
        result = run_cli("explain", "--model", sample_model, "--text", "国足", "--html", target)
        assert_user_error(result, str(target), "give a file name ending in .html")
    assert config.read_bytes() == before
    assert data.read_text(encoding="utf-8") == "央行宣布下调存款准备金率\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["headlines.txt"]


def test_cli_signed_methods(sample_model, tmp_path, capsys):
    text = "沪指放量上涨 券商板块集体走强"
    _run(["--model", sample_model, "--text", text, "--method", "occlusion", "--top", "3",
          "--no-color"])
    out = capsys.readouterr().out
    assert out.startswith("prediction: ") and "\x1b" not in out
    assert "importance: occlusion" in out and "\nfor " in out and "\nagainst " in out
    signed = [line for line in out.split("\n") if re.fullmatch(r"\s+\S+\s+[+-]\d\.\d{3}", line)]
    assert 1 <= len(signed) <= 6 and any("+" in line for line in signed)

    page = tmp_path / "why.html"
    _run(["--model", sample_model, "--text", text, "--method", "integrated-gradients", "--html",
          page, "--no-color"])
    out, err = capsys.readouterr()
    assert "importance: integrated gradients" in out and str(page) in err
    written = page.read_text(encoding="utf-8")
    assert "Green</span> = the token supports" in written and "baseline" in written
    assert re.search(r"rgba\((22, 163, 74|220, 38, 38), [01]\.\d{3}\)", written)
    assert "http" not in written.lower()


def test_cli_refuses_an_unknown_method(sample_model, capsys):
    with pytest.raises(SystemExit) as stop:
        _run(["--model", sample_model, "--text", "国足", "--method", "bogus"])
    assert stop.value.code == 2
    errors = [line for line in capsys.readouterr().err.strip().split("\n")
              if "error:" in line]
    assert len(errors) == 1 and "invalid choice: 'bogus'" in errors[0]
    assert "rollout" in errors[0] and "integrated-gradients" in errors[0]
