"""Property-based checks: normalization, tokenization and encoding never fail on any Unicode."""

from hypothesis import given, settings
from hypothesis import strategies as st

from newsclf.tokenize import Tokenizer, normalize
from newsclf.vocab import PAD_ID, Vocab

CORPUS = ["央行宣布降准释放流动性", "国足主场两球取胜", "新款手机发布 搭载5G芯片", "NBA总决赛第七场"]
TOKENIZERS = {mode: Tokenizer(mode) for mode in ("word", "char", "mixed")}
VOCABS = {mode: Vocab.build([t.features(text) for text in CORPUS], min_freq=1)
          for mode, t in TOKENIZERS.items()}


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_normalize_is_idempotent_and_clean(text):
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.strip() and "  " not in once
    assert not any(ch in once for ch in "\u200b\u200d\ufeff\x00\n\t")


@given(st.text(), st.integers(min_value=1, max_value=16))
@settings(max_examples=300, deadline=None)
def test_any_text_encodes_to_at_least_one_valid_position(text, max_len):
    for mode, tokenizer in TOKENIZERS.items():
        vocab = VOCABS[mode]
        ids = vocab.encode(tokenizer.features(text), max_len, tokenizer.n_features)
        assert 1 <= ids.shape[0] <= max_len
        assert ids.shape[1] == tokenizer.n_features
        assert ((ids >= 0) & (ids < len(vocab))).all()
        assert (ids[:, 0] != PAD_ID).all()
