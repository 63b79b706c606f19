import numpy as np
import pytest

from newsclf.config import TrainConfig
from newsclf.data import pad_batch
from newsclf.runtime import configure_paddle

paddle = configure_paddle()

from newsclf.model.inference import predict_scores, softmax  # noqa: E402
from newsclf.model.layers import (EnsembleClassifier, NewsClassifier, build_network,  # noqa: E402
                                  relative_buckets, rotary_tables, rotate, sinusoidal_encoding)
from newsclf.spec import POSITIONS  # noqa: E402


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
@pytest.mark.parametrize("position", POSITIONS)
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


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("pre_ln", [False, True])
def test_encoder_layers_equal_paddles_transformer_encoder(pre_ln, pooling):
    """The same parameters in paddle.nn.TransformerEncoder give the same outputs and weights,
    so models trained with Paddle's layer load into newsclf's and predict the same."""
    model = make_model(pre_ln=pre_ln, pooling=pooling)
    layer = paddle.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu",
                                              normalize_before=pre_ln)
    reference = paddle.nn.TransformerEncoder(layer, 2, norm=paddle.nn.LayerNorm(32) if pre_ln
                                             else None)
    missing, unexpected = reference.set_state_dict(
        {name[len("encoder."):]: value for name, value in model.state_dict().items()
         if name.startswith("encoder.")})
    assert not missing and not unexpected
    reference.eval()
    x = paddle.randn([2, 11, 32])
    keep = paddle.to_tensor([[True] * 4 + [False] * 7, [True] * 11]).unsqueeze([1, 2])
    ours = x
    for ours_layer, theirs_layer in zip(model.encoder.layers, reference.layers):
        theirs_layer.self_attn.need_weights = True
        _, expected_weights = theirs_layer.self_attn(
            theirs_layer.norm1(ours) if pre_ln else ours, None, None, keep)
        theirs_layer.self_attn.need_weights = False
        ours, weights = ours_layer(ours, keep)
        np.testing.assert_allclose(weights.numpy(), expected_weights.numpy(), atol=1e-5)
    if pre_ln:
        ours = model.encoder.norm(ours)
    np.testing.assert_allclose(ours.numpy(), reference(x, src_mask=keep).numpy(), atol=1e-5)


def shifted_scores(model, x, shift):
    """Layer 0's attention scores of ``x`` as if its tokens sat ``shift`` positions later."""
    attention, length = model.encoder.layers[0].self_attn, x.shape[1]
    if model.position == "rotary":
        rotary = model.rotary_cos[shift:shift + length], model.rotary_sin[shift:shift + length]
        return attention.scores(x, rotary=rotary)[0].numpy()
    buckets = model.relative_table[shift:shift + length, shift:shift + length]
    return attention.scores(x, buckets=buckets)[0].numpy()


@pytest.mark.parametrize("position", ["rotary", "relative"])
def test_relative_encodings_depend_on_distance_only(position):
    model = make_model(position=position)
    if position == "relative":  # trained biases are not zero
        bias = model.encoder.layers[0].self_attn.relative_bias.weight
        bias.set_value(paddle.randn(bias.shape))
    x = paddle.randn([2, 9, 32])
    unshifted = shifted_scores(model, x, 0)
    for shift in (1, 7, 20):
        np.testing.assert_allclose(shifted_scores(model, x, shift), unshifted, atol=1e-4)
    # ... and they do depend on position: the same tokens in another order score differently
    reordered = shifted_scores(model, x[:, ::-1], 0)[:, :, ::-1, ::-1]
    assert np.abs(reordered - unshifted).max() > 1e-3


def test_rotary_turns_each_dimension_pair_by_its_angle():
    cos, sin = rotary_tables(5, 4)
    x = paddle.to_tensor(np.array([1.0, 2.0, 3.0, 4.0], dtype="float32").reshape(1, 1, 1, 4))
    turned = rotate(x, paddle.to_tensor(cos[3:4]), paddle.to_tensor(sin[3:4])).numpy().ravel()
    for i, rate in enumerate((1.0, 0.01)):  # pair (i, i + 2) turns by 3 * 10000 ** (-i / 2)
        angle = 3 * rate
        a, b = 1.0 + i, 3.0 + i
        np.testing.assert_allclose(turned[[i, i + 2]],
                                   [a * np.cos(angle) - b * np.sin(angle),
                                    b * np.cos(angle) + a * np.sin(angle)], atol=1e-6)


def test_relative_buckets_clip_long_distances():
    buckets = relative_buckets(40, max_distance=16)
    assert buckets[0, 0] == 16 and buckets[0, 5] == 21 and buckets[5, 0] == 11
    assert buckets[0, 39] == 32 and buckets[39, 0] == 0


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
