"""The fast text path changes no token and no id: words equal plain jieba's, normalization and
encoded ids equal their definitions (the module docstring of newsclf.tokenize), on every
THUCNews headline and on generated text."""

import logging
import subprocess
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsclf import tokenize
from newsclf.data import encode_texts
from newsclf.errors import NewsclfError
from newsclf.tokenize import Tokenizer, normalize
from newsclf.vocab import PAD, UNK, Vocab

from conftest import THUCNEWS

MODES = ("word", "char", "mixed")


@pytest.fixture(scope="module")
def jieba_tokenizer():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    reference = jieba.Tokenizer()
    reference.initialize()
    return reference


def jieba_words(reference, text):
    """What the words of a text are: jieba's accurate mode (HMM on) on the normalized text, spaces
    dropped."""
    return [word for word in reference.lcut(normalize(text)) if not word.isspace()]


def defined_normalize(text):
    """normalize as documented: NFKC, lower-case, control/format/surrogate/private/unassigned
    characters dropped, whitespace collapsed to single spaces and stripped."""
    text = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(ch for ch in text if ch.isspace()
                   or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    return " ".join(kept.split())


def defined_features(words, normalized, mode):
    """The features of every position, as the module docstring of newsclf.tokenize defines
    them, from the jieba words and the normalized text."""
    if mode == "word":
        return [("w:" + word,) for word in words]
    chars = normalized.replace(" ", "")
    if mode == "char":
        return [("c:" + ch,) for ch in chars]
    assert "".join(words) == chars
    word_of = [word for word in words for _ in word]
    following = list(chars[1:]) + ["</s>"]
    return [("c:" + ch, "b:" + ch + following[i], "w:" + word_of[i]) for i, ch in enumerate(chars)]


def defined_ids(tokens, features, max_len, n_features):
    """Ids by a vocabulary's token list (``{token: position}``): a feature's position, that of
    [UNK] when absent; a text without positions is one [UNK] position."""
    unk = tokens[UNK]
    rows = [[tokens.get(f, unk) for f in position] for position in features[:max_len]]
    return np.array(rows or [[unk] * n_features], dtype=np.int64)


def token_positions(vocab):
    return {token: i for i, token in enumerate(vocab.tokens)}


def thucnews_headlines():
    """Every train and dev headline, or none where the data set is not beside the project."""
    files = [THUCNEWS / "train.txt", THUCNEWS / "dev.txt"]
    if not all(path.is_file() for path in files):
        return []
    return [line.rsplit("\t", 1)[0] for path in files
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def headlines():
    texts = thucnews_headlines()
    if not texts:
        pytest.skip(f"THUCNews headlines not found at {THUCNEWS} (they live beside the project, "
                    "in ../shared/data/thucnews-headlines)")
    return texts


@pytest.fixture(scope="module")
def headline_words(headlines, jieba_tokenizer):
    return [jieba_words(jieba_tokenizer, text) for text in headlines]


@pytest.fixture(scope="module")
def headlines_normalized(headlines):
    return [defined_normalize(text) for text in headlines]


# Generated text: the characters jieba and rjieba treat differently (letters, digits, the
# symbols jieba keeps in its blocks, Han characters outside jieba's range), dictionary words,
# numbers and names jieba's HMM step splits, punctuation, full-width forms, URLs and emoji.
FRAGMENTS = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
    st.characters(min_codepoint=0x9FC0, max_codepoint=0x9FFF),  # where jieba's range ends
    st.characters(min_codepoint=0x3400, max_codepoint=0x4DBF),
    st.characters(min_codepoint=0x20000, max_codepoint=0x2A6DF),
    st.sampled_from(list("abcxyzABCXYZ0123456789.%-+#&_ ")),
    st.sampled_from(list("，。：；！？、“”‘’《》（）【】…—·　\t\n")),
    st.sampled_from(list("ＡＢＣａｂｃ０１２３．％－＋＃＆＿")),
    st.sampled_from(["5.5kg", "2-3", "S.H.E", "s.h.e", "3.14%", "1.2.3", "a_b", "x-y", "ab.cd.12",
                     "c#", "C++", "AT&T", "4S店", "江南Style", "T恤", "iPhone", "NBA", "G20",
                     "2012年", "98折", "230-290平", "-139.13万元", "..5", "a..1", "5%%"]),
    st.sampled_from(["中国", "股市", "大涨", "北京", "清华大学", "我们", "足球", "比赛", "央行",
                     "降准", "房价", "上涨", "公司", "发布", "新款", "手机", "世界杯", "冠军"]),
    st.sampled_from(["http://www.sina.com.cn/a-b_c.html?id=12&x=5.5%", "www.qq.com",
                     "user_name@mail.163.com", "#话题#", "@新浪体育"]),
    st.sampled_from(["😀", "🇨🇳", "👨\u200d👩\u200d👧", "❤️", "\u200b", "\ufeff", "\x07"]),
)
TEXTS = st.lists(FRAGMENTS, max_size=40).map("".join)


def test_rjieba_segments_when_there_is_no_user_dictionary():
    pytest.importorskip("rjieba")
    assert isinstance(tokenize._segmenter(None), tokenize._RjiebaWords)


def test_jieba_patterns_copied_unchanged():
    import jieba
    import jieba.finalseg

    assert tokenize._JIEBA_HMM_SKIP.pattern == jieba.finalseg.re_skip.pattern
    every = list(map(chr, range(sys.maxunicode + 1)))
    in_block, han = jieba.re_han_default.fullmatch, jieba.finalseg.re_han.fullmatch
    assert [ch for ch in every if tokenize._JIEBA_BLOCK.fullmatch(ch)] == [
        ch for ch in every if in_block(ch)]
    assert [ch for ch in every if tokenize._NON_HAN_PAIR.fullmatch(ch * 2)] == [
        ch for ch in every if not han(ch)]


def test_words_equal_jieba_on_every_thucnews_headline(headlines, headline_words):
    tokenizer = Tokenizer("word")
    different = [(text, words, ours) for text, words in zip(headlines, headline_words)
                 if (ours := tokenizer.words(text)) != words]
    assert not different, f"{len(different)} headlines differ, first: {different[:3]}"


@pytest.mark.parametrize("text", ["5.5kg的S.H.E在2-3点", "c#和C++、AT&T", "4S店江南Style",
                                  "第2-3名涨3.14%至1.2.3版", "ab.cd.12 x-y", "中国㐀㐁人民a_b",
                                  "股市鿖鿗大涨", "𠀀𠀁中国"])
def test_words_equal_jieba_where_rjieba_alone_differs(text, jieba_tokenizer):
    assert Tokenizer("word").words(text) == jieba_words(jieba_tokenizer, text)


@given(TEXTS)
@settings(max_examples=1000, deadline=None)
def test_words_equal_jieba_on_generated_text(jieba_tokenizer, text):
    assert Tokenizer("word").words(text) == jieba_words(jieba_tokenizer, text)


def test_normalize_equals_its_definition_on_every_thucnews_headline(headlines,
                                                                    headlines_normalized):
    assert [normalize(text) for text in headlines] == headlines_normalized


@given(st.one_of(TEXTS, st.text(), st.text(st.characters(max_codepoint=0xFFFF))))
@settings(max_examples=1000, deadline=None)
def test_normalize_equals_its_definition_on_generated_text(text):
    assert normalize(text) == defined_normalize(text)


def test_text_normalize_leaves_alone_never_composes_with_a_character_before():
    """No character of the text :func:`normalize` only lower-cases, nor its lower case, is the
    second of a pair NFKC composes (a two-character canonical decomposition, or a Hangul vowel
    or final consonant)."""
    seconds = {chr(0x1161 + i) for i in range(21)} | {chr(0x11A8 + i) for i in range(27)}
    for code in range(sys.maxunicode + 1):
        decomposition = unicodedata.decomposition(chr(code)).split()
        if len(decomposition) == 2 and not decomposition[0].startswith("<"):
            seconds.add(chr(int(decomposition[1], 16)))
    plain = [ch for ch in map(chr, range(sys.maxunicode + 1))
             if tokenize._plain_text().fullmatch(ch)]
    assert len(plain) > 20000 and "中" in plain and "A" in plain
    assert not (set(plain) | {ch.lower() for ch in plain}) & seconds


@pytest.mark.parametrize("mode", MODES)
def test_encoded_ids_equal_definition_on_every_thucnews_headline(mode, headlines, headline_words,
                                                                  headlines_normalized):
    def features(i):
        return defined_features(headline_words[i], headlines_normalized[i], mode)

    seen = Counter(f for i in range(20000) for position in features(i) for f in position)
    vocab = Vocab([PAD, UNK] + sorted(f for f, n in seen.items() if n >= 2))
    tokens, tokenizer = token_positions(vocab), Tokenizer(mode)
    whole = [defined_ids(tokens, features(i), None, tokenizer.n_features)
             for i in range(len(headlines))]
    for max_len in (64, 12):
        encoded = encode_texts(tokenizer, vocab, headlines, max_len)
        assert [ids.shape for ids in encoded] == [ids[:max_len].shape for ids in whole]
        assert all(ids.dtype == np.int64 for ids in encoded)
        assert (np.concatenate(encoded) == np.concatenate([ids[:max_len] for ids in whole])).all()


@pytest.fixture(scope="module")
def small_vocabs(jieba_tokenizer):
    """A vocabulary per mode of the features of a few news phrases, from the definitions."""
    phrases = ["中国股市大涨", "北京清华大学", "央行降准，房价上涨", "新款手机发布", "5.5kg的S.H.E",
               "NBA总决赛第2-3场", "c#和C++", "4S店江南Style"]
    vocabs = {}
    for mode in MODES:
        features = {f for text in phrases for position in defined_features(
            jieba_words(jieba_tokenizer, text), defined_normalize(text), mode) for f in position}
        vocabs[mode] = Vocab([PAD, UNK] + sorted(features))
    return vocabs


@given(st.lists(TEXTS, max_size=5), st.integers(min_value=1, max_value=80))
@settings(max_examples=300, deadline=None)
def test_encoded_ids_equal_definition_on_generated_text(jieba_tokenizer, small_vocabs, texts,
                                                        max_len):
    for mode in MODES:
        vocab, tokenizer = small_vocabs[mode], Tokenizer(mode)
        tokens = token_positions(vocab)
        encoded = encode_texts(tokenizer, vocab, texts, max_len)
        assert len(encoded) == len(texts)
        for text, ids in zip(texts, encoded):
            words = jieba_words(jieba_tokenizer, text)
            features = defined_features(words, defined_normalize(text), mode)
            expected = defined_ids(tokens, features, max_len, tokenizer.n_features)
            assert ids.dtype == np.int64 and ids.shape == expected.shape
            assert (ids == expected).all()
            single = vocab.encode(tokenizer.features(text), max_len, tokenizer.n_features)
            assert single.dtype == np.int64 and (single == expected).all()


def test_user_dictionary_gives_jiebas_words_with_that_dictionary(tmp_path, monkeypatch):
    import jieba.finalseg

    # jieba keeps the words of frequency 0 in one set for all its tokenizers: keep this test's
    # out of the other tests
    monkeypatch.setattr(jieba.finalseg, "Force_Split_Words", set(jieba.finalseg.Force_Split_Words))
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text("新闻分类器 100000 n\n降准\n股市大涨 5\n杭研 0\n张艺谋 0\nS.H.E 3 nr\n"
                         "5.5kg\n清华大学 1 nt\n中国 100000000\n", encoding="utf-8")
    reference = jieba.Tokenizer()
    reference.initialize()
    reference.load_userdict(str(user_dict))
    tokenizer = Tokenizer("word", str(user_dict))
    texts = ["新闻分类器上线", "中国队夺得世界杯冠军", "央行降准，股市大涨5.5kg", "S.H.E在清华大学",
             "张艺谋将执导新片", "他来到了网易杭研所"]
    for text in texts + thucnews_headlines()[-3000:]:
        assert tokenizer.words(text) == jieba_words(reference, text), text
    assert "新闻分类器" in tokenizer.words(texts[0])


def test_training_reads_a_user_dictionary_the_one_way_jieba_reads_it(tmp_path, monkeypatch):
    import jieba
    import jieba.finalseg

    # jieba keeps the words of frequency 0 in one set for all its tokenizers: keep this test's
    # out of the other tests
    monkeypatch.setattr(jieba.finalseg, "Force_Split_Words", set(jieba.finalseg.Force_Split_Words))
    user_dict = tmp_path / "dict.txt"
    user_dict.write_bytes("\ufeff券商板块\t100\tn\r\n\n  Ａ股  50 \r\n杭研\t0\n".encode("utf-8"))
    read = tokenize.read_user_dictionary(user_dict)
    assert read == tokenize.UserDictionary(str(user_dict), "券商板块 100 n\na股 50\n杭研 0\n")
    as_given = jieba.Tokenizer()
    as_given.load_userdict(str(user_dict))  # jieba alone takes each tab line for one word
    text = "券商板块领涨ａ股"
    assert "券商板块" not in jieba_words(as_given, text)
    kept = tmp_path / "kept.txt"
    kept.write_text(read.text, encoding="utf-8")
    reference = jieba.Tokenizer()
    reference.load_userdict(str(kept))
    words = Tokenizer("word", read).words(text)
    assert words == jieba_words(reference, text) == ["券商板块", "领涨", "a股"]
    assert Tokenizer("word", str(kept)).words(text) == words


def test_a_model_directorys_user_dictionary_is_loaded_as_it_is(tmp_path):
    """A model trained before tab-separated lines were read as jieba lines segments as it did."""
    import json
    import shutil

    import jieba

    from newsclf import Predictor
    from newsclf.files import sha256_bytes

    model = tmp_path / "v1-single"
    shutil.copytree(Path(__file__).parent / "fixtures" / "models" / "v1-single", model)
    copy = "准备金率\t10\n券商板块\t10\n".encode("utf-8")
    (model / "user_dict.txt").write_bytes(copy)
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    config["files"]["user_dict.txt"] = {"sha256": sha256_bytes(copy), "bytes": len(copy)}
    (model / "config.json").write_text(json.dumps(config), encoding="utf-8")
    reference = jieba.Tokenizer()
    reference.load_userdict(str(model / "user_dict.txt"))
    text = "券商板块下调存款准备金率"
    words = Predictor.from_dir(model).tokenizer.words(text)
    assert words == jieba_words(reference, text) and "券商板块" not in words


@pytest.mark.parametrize("line, message", [
    ("纽约 时报 100", "a word cannot hold a space (jieba cuts texts at spaces), so jieba would take "
                  "'纽约 时报' for the word"),
    ("new york 100 n", "a word cannot hold a space (jieba cuts texts at spaces), so jieba would "
                       "take 'new york' for the word"),
    ("股市大涨\t1.5\tn", "the frequency '1.5' is not a whole number, so jieba would take "
                      "'股市大涨\\t1.5\\tn' for the word"),
    ("股市大涨 -3", "the frequency '-3' is not a whole number, so jieba would take '股市大涨 -3' for "
                "the word"),
    ("股市大涨 100 NR", "the tag 'NR' is not in lower-case letters, so jieba would take "
                     "'股市大涨 100 NR' for the word"),
    ("券商板块 n 100", "'n' comes before the frequency (a tag goes after it, and a word cannot hold "
                   "a space), so jieba would take '券商板块 n' for the word"),
])
def test_user_dictionary_lines_jieba_would_misread_are_refused(tmp_path, line, message):
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text(f"降准 3\n\n{line}\n", encoding="utf-8")
    with pytest.raises(NewsclfError) as refused:
        tokenize.read_user_dictionary(user_dict)
    assert str(refused.value) == (f"{user_dict}:3: {message}; write 'word [freq] [tag]', e.g. "
                                  "'券商板块 100 n'")


def test_a_user_dictionary_that_is_a_directory_or_not_utf8_is_named_so(tmp_path):
    for user_dict in (tmp_path, str(tmp_path)):
        with pytest.raises(NewsclfError, match=r"is a directory, not a user dictionary; give the "
                                               r"dictionary's file \(UTF-8, one 'word \[freq\] "
                                               r"\[tag\]' per line\)$"):
            tokenize.read_user_dictionary(user_dict)
        with pytest.raises(NewsclfError, match="is a directory, not a user dictionary"):
            Tokenizer("word", str(user_dict)).words("测试")
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("券商板块 100 n\n".encode("gbk"))
    with pytest.raises(NewsclfError, match=r"gbk\.txt: the user dictionary is not UTF-8; save it "
                                           "as UTF-8$"):
        tokenize.read_user_dictionary(gbk)


def test_without_rjieba_jieba_gives_the_same_words(monkeypatch, jieba_tokenizer):
    monkeypatch.setitem(sys.modules, "rjieba", None)  # import rjieba now raises ImportError
    monkeypatch.setattr(tokenize, "_segmenters", {})
    texts = ["5.5kg的S.H.E在2-3点", "  NBA 总决赛\u3000第７场 ", "央行降准，股市大涨"]
    assert [Tokenizer("word").words(t) for t in texts] == [jieba_words(jieba_tokenizer, t)
                                                          for t in texts]
    assert isinstance(tokenize._segmenter(None), tokenize._JiebaWords)


def test_importing_loads_no_segmenter():
    result = subprocess.run(
        [sys.executable, "-c", "import sys, newsclf.tokenize, newsclf.data, newsclf.vocab; "
                               "print(sorted({'jieba', 'rjieba'} & set(sys.modules)))"],
        capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
