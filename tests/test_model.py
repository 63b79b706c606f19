import numpy as np
import pytest

from newsclf.config import TrainConfig
from newsclf.data import pad_batch
from newsclf.runtime import configure_paddle

paddle = configure_paddle()

from newsclf.model.inference import predict_scores, softmax  # noqa: E402
from newsclf.model.layers import (EnsembleClassifier, NewsClassifier, build_network,  # noqa: E402
                                  sinusoidal_encoding)


def make_model(**overrides):
    paddle.seed(0)
    overrides.setdefault("ensemble_size", 1)
    config = TrainConfig(d_model=32, n_heads=4, n_layers=2, d_ff=64, max_len=32, **overrides)
    model = build_network(config.model_spec(vocab_size=50, n_classes=5))
    model.eval()
    return model


def texts(n_features=3):
    rng = np.random.RandomState(0)
    short = rng.randint(2, 50, size=(4, n_features)).astype(np.int64)
    long = rng.randint(2, 50, size=(11, n_features)).astype(np.int64)
    return short, long


@pytest.mark.parametrize("pooling", ["mean", "max", "mean_max", "attention", "cls"])
@pytest.mark.parametrize("position", ["sinusoidal", "learned"])
@pytest.mark.parametrize("pre_ln", [False, True])
def test_padding_does_not_change_logits(pooling, position, pre_ln):
    model = make_model(pooling=pooling, position=position, pre_ln=pre_ln)
    short, long = texts()
    alone = model(paddle.to_tensor(pad_batch([short]))).numpy()[0]
    batched = model(paddle.to_tensor(pad_batch([short, long]))).numpy()[0]
    np.testing.assert_allclose(alone, batched, atol=1e-5)


def test_attention_is_zero_on_padding_and_rows_sum_to_one():
    model = make_model()
    short, long = texts()
    logits, attentions = model(paddle.to_tensor(pad_batch([short, long])), return_attention=True)
    assert len(attentions) == 2
    for layer in attentions:
        weights = layer.numpy()
        assert weights.shape == (2, 4, 11, 11)
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
        assert (weights[0, :, :, 4:] == 0).all()


def test_attention_matches_paddles_own_attention():
    model = make_model()
    short, long = texts()
    ids = paddle.to_tensor(pad_batch([short, long]))
    _, attentions = model(ids, return_attention=True)
    layer = model.encoder.layers[0]
    x = model.embedding(ids).sum(axis=2) * 32 ** 0.5 + model.position_table[:11].unsqueeze(0)
    mask = (ids[:, :, 0] != 0).unsqueeze([1, 2])
    layer.self_attn.need_weights = True
    try:
        _, expected = layer.self_attn(x, x, x, mask)
    finally:
        layer.self_attn.need_weights = False
    np.testing.assert_allclose(attentions[0].numpy(), expected.numpy(), atol=1e-6)


def test_predict_scores_keeps_input_order():
    model = make_model()
    short, long = texts()
    encoded = [long, short, long[:7], short[:1]]
    together = predict_scores(model, encoded, batch_size=2)
    one_by_one = np.stack([predict_scores(model, [ids])[0] for ids in encoded])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_sinusoidal_encoding_values():
    table = sinusoidal_encoding(10, 8)
    assert table.shape == (10, 8)
    np.testing.assert_allclose(table[0, 0::2], 0.0)
    np.testing.assert_allclose(table[0, 1::2], 1.0)
    np.testing.assert_allclose(table[3, 0], np.sin(3.0), rtol=1e-6)


def test_ensemble_predicts_the_mean_of_its_members_probabilities():
    model = make_model(ensemble_size=3)
    assert isinstance(model, EnsembleClassifier) and len(model.members) == 3
    assert all(isinstance(member, NewsClassifier) for member in model.members)
    short, long = texts()
    ids = paddle.to_tensor(pad_batch([short, long]))
    members = np.stack([member(ids).numpy() for member in model.members])
    assert not np.allclose(members[0], members[1])  # each member starts from its own weights
    expected = np.mean([softmax(m) for m in members], axis=0)
    np.testing.assert_allclose(softmax(model(ids).numpy()), expected, atol=1e-6)


def test_ensemble_padding_and_attention():
    model = make_model(ensemble_size=2)
    short, long = texts()
    alone = model(paddle.to_tensor(pad_batch([short]))).numpy()[0]
    batched, attentions = model(paddle.to_tensor(pad_batch([short, long])), return_attention=True)
    np.testing.assert_allclose(alone, batched.numpy()[0], atol=1e-5)
    assert len(attentions) == 2  # layers
    for layer in attentions:
        weights = layer.numpy()
        assert weights.shape == (2, 8, 11, 11)  # 2 members x 4 heads side by side
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
        assert (weights[0, :, :, 4:] == 0).all()


def test_single_model_is_not_wrapped():
    assert isinstance(make_model(), NewsClassifier)
