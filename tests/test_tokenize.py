import pytest

from newsclf.errors import NewsclfError
from newsclf.tokenize import Tokenizer, normalize


def test_normalize_fullwidth_case_whitespace_and_invisible_characters():
    assert normalize("ＮＢＡ　总决赛\u200b第７场\t\n  开打\x07") == "nba 总决赛第7场 开打"


def test_normalize_keeps_chinese_and_strips():
    assert normalize("  央行降准  ") == "央行降准"
    assert normalize("\u200b\ufeff\x00") == ""


def test_word_mode_uses_jieba_words():
    tokens = Tokenizer("word").tokenize("中国队夺得世界杯冠军")
    assert "中国队" in tokens or "中国" in tokens
    assert "".join(tokens) == "中国队夺得世界杯冠军"


def test_char_mode_one_position_per_character_no_spaces():
    tokenizer = Tokenizer("char")
    assert tokenizer.tokenize("A股 大涨") == ["a", "股", "大", "涨"]
    assert tokenizer.features("A股") == [("c:a",), ("c:股",)]


def test_mixed_mode_has_char_bigram_and_word_per_character():
    features = Tokenizer("mixed").features("股市大涨")
    assert len(features) == 4
    assert [f[0] for f in features] == ["c:股", "c:市", "c:大", "c:涨"]
    assert [f[1] for f in features] == ["b:股市", "b:市大", "b:大涨", "b:涨</s>"]
    words = [f[2] for f in features]
    assert all(w.startswith("w:") for w in words)
    assert "".join(dict.fromkeys(w[2:] for w in words)) == "股市大涨"


def test_feature_keys_are_the_features_without_their_prefixes():
    for mode in ("word", "char", "mixed"):
        tokenizer = Tokenizer(mode)
        for max_positions in (None, 3):
            keys = tokenizer.feature_keys("股市大涨 5.5kg", max_positions)
            features = tokenizer.features("股市大涨 5.5kg", max_positions)
            assert len(keys) == len(tokenizer.feature_prefixes) == tokenizer.n_features
            assert [tuple(p + k for p, k in zip(tokenizer.feature_prefixes, position))
                    for position in zip(*keys)] == features
    assert Tokenizer("mixed").feature_keys("股市大涨", 2) == [["股", "市"], ["股市", "市大"],
                                                              ["股市", "股市"]]


def test_empty_text_gives_no_positions():
    for mode in ("word", "char", "mixed"):
        assert Tokenizer(mode).features("  \u200b ") == []


def test_user_dictionary_changes_segmentation(tmp_path):
    text = "新闻分类器上线"
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text("新闻分类器 100000 n\n", encoding="utf-8")
    assert "新闻分类器" not in Tokenizer("word").tokenize(text)
    assert "新闻分类器" in Tokenizer("word", str(user_dict)).tokenize(text)


def test_missing_user_dictionary_is_a_clear_error(tmp_path):
    with pytest.raises(NewsclfError, match="user dictionary not found"):
        Tokenizer("word", str(tmp_path / "nope.txt")).tokenize("测试")


def test_unknown_mode_is_rejected():
    with pytest.raises(NewsclfError, match="word, char or mixed"):
        Tokenizer("bpe")


def test_jieba_prints_nothing(capfd):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "from newsclf.tokenize import Tokenizer; "
                               "print(Tokenizer('word').tokenize('今天天气不错'))"],
        capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stderr == ""
