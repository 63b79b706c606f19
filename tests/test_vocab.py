import json

import numpy as np
import pytest

from newsclf.errors import ModelDirError
from newsclf.vocab import PAD_ID, UNK_ID, Vocab


def seqs(*texts):
    return [[(ch,) for ch in text] for text in texts]


def test_order_is_frequency_then_token_with_specials_first():
    vocab = Vocab.build(seqs("bab", "cab", "d"), min_freq=1)
    assert vocab.tokens == ["[PAD]", "[UNK]", "b", "a", "c", "d"]


def test_min_freq_and_max_size():
    data = seqs("aaab", "bbc", "c", "d")
    assert Vocab.build(data, min_freq=2).tokens[2:] == ["a", "b", "c"]
    assert Vocab.build(data, min_freq=1, max_size=2).tokens[2:] == ["a", "b"]


def test_encode_maps_unknown_truncates_and_keeps_feature_columns():
    vocab = Vocab.build([[("x", "y")], [("x", "z")]], min_freq=1)
    ids = vocab.encode([("x", "y"), ("q", "z"), ("x", "x")], max_len=2, n_features=2)
    assert ids.dtype == np.int64 and ids.shape == (2, 2)
    assert ids[0, 0] == vocab.index["x"] and ids[1, 0] == UNK_ID


def test_empty_text_yields_one_unknown_position_never_padding():
    vocab = Vocab.build(seqs("ab"))
    ids = vocab.encode([], max_len=5, n_features=3)
    assert ids.shape == (1, 3) and (ids == UNK_ID).all() and PAD_ID not in ids


def test_encode_keys_is_encode_of_prefix_and_key_for_many_texts():
    vocab = Vocab.build([[("c:a", "w:ab"), ("c:b", "w:ab")], [("c:x", "w:x")]], min_freq=1)
    texts = [[["a", "b", "q"], ["ab", "ab", "q"]], [[], []], [["x"], ["zz"]]]
    encoded = vocab.encode_keys(("c:", "w:"), texts)
    assert [ids.shape for ids in encoded] == [(3, 2), (1, 2), (1, 2)]
    for ids, (chars, words) in zip(encoded, texts):
        positions = [("c:" + ch, "w:" + word) for ch, word in zip(chars, words)]
        assert ids.dtype == np.int64
        assert (ids == vocab.encode(positions, max_len=10, n_features=2)).all()
    assert (encoded[1] == UNK_ID).all() and encoded[0][2, 0] == UNK_ID


def test_save_load_roundtrip_is_plain_json(tmp_path):
    vocab = Vocab.build(seqs("中文新闻", "新闻"))
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["tokens"] == vocab.tokens
    assert Vocab.load(path).tokens == vocab.tokens


def test_damaged_vocabulary_is_refused(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text('{"tokens": ["a", "b"]}', encoding="utf-8")
    with pytest.raises(ModelDirError, match=r"\[PAD\]"):
        Vocab.load(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelDirError, match="damaged"):
        Vocab.load(path)
    with pytest.raises(ModelDirError, match="missing"):
        Vocab.load(tmp_path / "absent.json")
