"""Long texts: windows, how ``long_text="chunk"`` combines them, and what it keeps of truncation."""

import numpy as np
import pytest

from conftest import SAMPLE
from newsclf.errors import NewsclfError
from newsclf.model.inference import softmax
from newsclf.predictor import CHUNK_RULE, WINDOW_RULES, combine_windows


def probabilities_of(scores):
    return softmax(np.atleast_2d(np.asarray(scores, dtype=np.float64)))[0]


@pytest.fixture(scope="module")
def dev():
    from newsclf.data import read_labelled

    return read_labelled(SAMPLE / "dev.tsv")


@pytest.fixture(scope="module")
def article(dev):
    return "\n".join("，".join(dev.texts[i:i + 4]) + "。" for i in range(0, 40, 4))


# --- the rules, on hand-made window scores ----------------------------------------------------

def test_chunk_is_the_logit_mean_with_the_lead_counting_as_all_the_others():
    scores = np.array([[3.0, 0.0, 1.0], [0.0, 2.0, 1.0], [1.0, 1.0, 4.0], [0.5, 0.0, 0.0]])
    assert CHUNK_RULE == "lead_half_logit"
    np.testing.assert_allclose(combine_windows(scores),
                               scores[0] / 2 + scores[1:].sum(axis=0) / 6, rtol=1e-6)
    np.testing.assert_allclose(combine_windows(scores, "logit_mean"), scores.mean(axis=0),
                               rtol=1e-6)
    # two windows: the lead counts as much as the other one, a plain mean
    np.testing.assert_allclose(combine_windows(scores[:2]), scores[:2].mean(axis=0), rtol=1e-6)


def test_rules_on_probabilities_weigh_windows_by_confidence_and_lead():
    probabilities = np.array([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05], [0.1, 0.6, 0.3]])
    scores = np.log(probabilities) + np.array([[1.0], [-2.0], [0.5]])  # logits: any shift
    top = probabilities.max(axis=1)
    entropy = -(probabilities * np.log(probabilities)).sum(axis=1)
    expected = {
        "prob_mean": probabilities.mean(axis=0),
        "max_prob": top @ probabilities / top.sum(),
        "entropy": np.exp(-entropy) @ probabilities / np.exp(-entropy).sum(),
        "lead_x3": np.array([3, 1, 1]) @ probabilities / 5,
        "lead_half": probabilities[0] / 2 + probabilities[1:].mean(axis=0) / 2,
        "lead_half_max_prob": (top[1:].sum() * probabilities[0] + top[1:] @ probabilities[1:])
                              / (2 * top[1:].sum()),
        "lead_half_entropy": (np.exp(-entropy[1:]).sum() * probabilities[0]
                              + np.exp(-entropy[1:]) @ probabilities[1:])
                             / (2 * np.exp(-entropy[1:]).sum()),
    }
    for rule, combined in expected.items():
        np.testing.assert_allclose(np.exp(combine_windows(scores, rule)), combined, rtol=1e-5,
                                   err_msg=rule)
    assert set(expected) | {"logit_mean", "lead_half_logit"} == set(WINDOW_RULES)


def test_an_ambiguous_lead_lets_the_body_decide_and_a_confident_one_keeps_its_label():
    body = np.tile([0.0, 1.0, 0.0], (6, 1))  # every later window leans to class 1
    assert combine_windows(np.vstack([[0.0, 0.0, 0.0], body])).argmax() == 1
    assert combine_windows(np.vstack([[3.0, 0.0, 0.0], body])).argmax() == 0
    assert combine_windows(np.vstack([[3.0, 0.0, 0.0], body]), "logit_mean").argmax() == 1


def test_one_window_gives_its_own_scores_and_none_gives_equal_probabilities():
    scores = np.array([[0.25, -1.5, 2.0]], dtype=np.float32)
    for rule in WINDOW_RULES:
        assert np.array_equal(combine_windows(scores, rule), scores[0])
    assert np.array_equal(combine_windows(np.zeros((0, 3))), np.zeros(3, dtype=np.float32))
    with pytest.raises(NewsclfError, match="rule must be one of logit_mean, "):
        combine_windows(scores, "median")


# --- the predictor ----------------------------------------------------------------------------

def test_a_text_shorter_than_max_len_gets_the_same_probabilities(predictor, dev):
    one = [dev.texts[0]]
    assert np.array_equal(predictor.predict_proba(one, long_text="chunk"),
                          predictor.predict_proba(one))
    np.testing.assert_allclose(predictor.predict_proba(dev.texts[:20], long_text="chunk"),
                               predictor.predict_proba(dev.texts[:20]), atol=1e-6)


def test_chunk_combines_the_window_scores(predictor, article):
    windows = predictor.window_scores([article, "央行降息"])
    assert len(windows[0]) >= 4 and len(windows[1]) == 1
    assert windows[0].shape[1] == len(predictor.classes_)
    np.testing.assert_allclose(predictor.predict_proba([article], long_text="chunk")[0],
                               probabilities_of(combine_windows(windows[0])), atol=1e-6)


def test_a_confident_lead_keeps_its_label_against_a_longer_weaker_body(predictor, dev):
    games = predictor.predict_proba(dev.texts)[:, list(predictor.classes_).index("游戏")]
    lead = [dev.texts[i] for i in np.argsort(-games) if dev.labels[i] == "游戏"][:3]
    body = [text for text, label in zip(dev.texts, dev.labels) if label == "体育"]
    text = "，".join(lead) + "。" + "。".join(body)
    windows = predictor.window_scores([text])[0]
    assert len(windows) >= 4

    def label(scores):
        return predictor.classes_[np.argmax(scores)]

    assert label(combine_windows(windows, "logit_mean")) == "体育"  # the body outvotes a mean
    evenly = predictor.predict_proba([text], long_text="chunk-mean")[0]
    np.testing.assert_allclose(evenly, probabilities_of(combine_windows(windows, "logit_mean")),
                               atol=1e-6)
    truncated = predictor.predict_proba([text])[0]
    chunked = predictor.predict_proba([text], long_text="chunk")[0]
    assert label(truncated) == label(chunked) == "游戏"
    sport = list(predictor.classes_).index("体育")
    assert chunked[sport] > truncated[sport]  # the body still counts


def test_windows_without_a_known_token_are_left_out(predictor, dev):
    unknown = "🙂" * (3 * predictor.spec.max_len)
    text = unknown + "，".join(dev.texts[:6])
    windows = predictor.window_scores([unknown, text, ""])
    assert [len(scores) for scores in windows][::2] == [0, 0]
    assert len(windows[1]) == len(predictor.window_scores(["，".join(dev.texts[:6])])[0])
    probabilities, problems = predictor.classify([unknown, text, ""], long_text="chunk")
    assert problems == ["no known token", None, "empty text"]
    np.testing.assert_allclose(probabilities[[0, 2]], 1 / len(predictor.classes_))
    np.testing.assert_allclose(probabilities[1], probabilities_of(combine_windows(windows[1])),
                               atol=1e-6)
    assert predictor.predict([unknown], long_text="chunk") == [
        {"label": None, "score": None, "error": "no known token"}]


def test_mixed_short_and_long_texts_keep_their_order(predictor, dev, article):
    texts = [article, dev.texts[1], "", article[::-1], dev.texts[2], "🙂" * 300, article[200:]]
    together = predictor.predict(texts, top_k=2, long_text="chunk")
    alone = [predictor.predict([text], top_k=2, long_text="chunk")[0] for text in texts]
    assert [[row["label"] for row in best] for best in together] == [
        [row["label"] for row in best] for best in alone]
    def scores(rows):
        return np.array([np.nan if row["score"] is None else row["score"]
                         for best in rows for row in best])

    np.testing.assert_allclose(scores(together), scores(alone), atol=1e-6)


def test_batch_size_and_scoring_calls_do_not_change_the_result(predictor, dev, article,
                                                               monkeypatch):
    import newsclf.predictor

    texts = [article, dev.texts[3], article[100:], "🙂" * 300, article[::2]]
    expected = predictor.predict_proba(texts, long_text="chunk")
    np.testing.assert_allclose(predictor.predict_proba(texts, batch_size=1, long_text="chunk"),
                               expected, atol=1e-5)
    monkeypatch.setattr(newsclf.predictor, "_WINDOWS_PER_CALL", 3)  # windows split across calls
    np.testing.assert_allclose(predictor.predict_proba(texts, batch_size=2, long_text="chunk"),
                               expected, atol=1e-5)
