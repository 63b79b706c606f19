"""Hostile training and evaluation files through the CLI: a one-line error or correct handling."""

import json

import pytest

from conftest import assert_user_error, SAMPLE, run_cli

GOOD = SAMPLE / "train.tsv"
FAST = ["--ensemble-size", "1", "--epochs", "1", "--d-model", "32", "--n-heads", "2", "--n-layers", "1", "--d-ff", "32",
        "--no-progress", "--no-export"]


def train(tmp_path, data, *extra):
    return run_cli("train", "--train", data, "--output", tmp_path / "model", *FAST, *extra)


def sample_lines(n=60):
    return GOOD.read_text(encoding="utf-8").splitlines()[:n]


@pytest.mark.parametrize("name, content, fragments", [
    ("empty.tsv", b"", ["empty.tsv: no examples"]),
    ("header.tsv", b"text\tlabel\n", ["header.tsv: no rows below the header"]),
    ("header.csv", b"text,label\n", ["header.csv: no rows below the header"]),
    ("notab.tsv", "好新闻\t财经\n这一行没有标签\n".encode(), ["notab.tsv:2: no tab"]),
    ("columns.csv", "text,label\n好,财经\n坏,体育,多余\n".encode(), ["columns.csv: malformed CSV",
                                                                  "line 3"]),
    ("nul.tsv", "好新闻\t财经\n".encode() + b"\x00\x00\x01\x02", ["nul.tsv:2", "NUL bytes"]),
    ("junk.tsv", bytes(range(128, 256)) * 50, ["junk.tsv"]),
    ("oneclass.tsv", "股市大涨\t股票\n股市大跌\t股票\n".encode(), ["only one class"]),
    ("twice.jsonl", '{"text": "股市大涨", "label": "股票"}\n{"text": "球队夺冠", "label": "体育", '
                    '"text": "央行降息"}\n'.encode(), ["twice.jsonl:2: the key 'text' appears more "
                                                   "than once, and only one of its values"]),
])
def test_bad_training_files(tmp_path, name, content, fragments):
    path = tmp_path / name
    path.write_bytes(content)
    assert_user_error(train(tmp_path, path), *fragments)
    assert not (tmp_path / "model" / "config.json").exists()


def test_label_ids_against_a_class_file(tmp_path):
    classes = tmp_path / "class.txt"
    classes.write_text("财经\n体育\n", encoding="utf-8")
    data = tmp_path / "ids.txt"
    data.write_text("央行降息\t0\n球队夺冠\t1\n房价回落\t7\n", encoding="utf-8")
    assert_user_error(train(tmp_path, data, "--classes", classes), "ids.txt:3",
                      "label id 7 is out of range")
    data.write_text("央行降息\t财经\n新车上市\t汽车\n", encoding="utf-8")
    assert_user_error(train(tmp_path, data, "--classes", classes), "ids.txt:2", "'汽车'")


def test_a_listed_class_no_training_text_has_is_refused(tmp_path):
    classes = tmp_path / "class.txt"
    classes.write_text("财经\n体育\n汽车\n科技\n", encoding="utf-8")
    for name, body in [("ids.txt", "央行降息\t0\n球队夺冠\t1\n"),
                       ("names.txt", "央行降息\t财经\n球队夺冠\t体育\n")]:
        data = tmp_path / name
        data.write_text(body, encoding="utf-8")
        assert_user_error(train(tmp_path, data, "--classes", classes),
                          f"{classes}:3: no training text in {data} is labelled with class(es) "
                          "'汽车' (line 3, id 2), '科技' (line 4, id 3), so the model could not "
                          f"learn them; remove them from {classes} or add training texts "
                          "labelled with them")
        assert not (tmp_path / "model").exists()


def test_class_names_with_invisible_characters_are_the_labels_they_look_like(tmp_path):
    lines = sample_lines(100)
    names = sorted({line.split("\t")[1] for line in lines})
    classes = tmp_path / "class.txt"
    classes.write_text("".join(f"{name}\u200b\n" if name == "股票" else f"{name}\u3000\n"
                               for name in names), encoding="utf-8")
    data = tmp_path / "head.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = train(tmp_path, data, "--classes", classes)
    assert result.returncode == 0, result.stderr
    labels = json.loads((tmp_path / "model" / "labels.json").read_text(encoding="utf-8"))
    assert labels == names and "股票" in labels


def test_a_user_dictionary_of_tab_separated_lines_is_kept_as_jieba_reads_it(tmp_path):
    from newsclf import Predictor

    user_dict = tmp_path / "dict.txt"
    user_dict.write_text("券商板块\t100\tn\r\nA股\t50\n\n降准  \t 3\n", encoding="utf-8")
    data = tmp_path / "head.tsv"
    data.write_text("\n".join(sample_lines(100)) + "\n", encoding="utf-8")
    result = train(tmp_path, data, "--user-dict", user_dict, "--tokenizer", "word")
    assert result.returncode == 0, result.stderr
    copy = tmp_path / "model" / "user_dict.txt"
    assert copy.read_text(encoding="utf-8") == "券商板块 100 n\na股 50\n降准 3\n"
    words = Predictor.from_dir(tmp_path / "model").tokenizer.words("券商板块领涨A股，央行降准")
    assert words == ["券商板块", "领涨", "a股", ",", "央行", "降准"]


@pytest.mark.parametrize("line, fragments", [
    ("纽约 时报 100", ["a word cannot hold a space", "jieba would take '纽约 时报' for the word"]),
    ("股市大涨 1.5", ["the frequency '1.5' is not a whole number",
                  "jieba would take '股市大涨 1.5' for the word"]),
    ("股市大涨 100 NR", ["the tag 'NR' is not in lower-case letters"]),
    ("券商板块 n 100", ["'n' comes before the frequency"]),
])
def test_user_dictionary_lines_jieba_would_misread_are_refused(tmp_path, line, fragments):
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text(f"降准 3\n{line}\n", encoding="utf-8")
    assert_user_error(train(tmp_path, GOOD, "--user-dict", user_dict), f"{user_dict}:2: ",
                      *fragments, "write 'word [freq] [tag]'")
    assert not (tmp_path / "model").exists()


def test_a_user_dictionary_that_is_a_directory_is_named_so(tmp_path):
    assert_user_error(train(tmp_path, GOOD, "--user-dict", tmp_path),
                      f"{tmp_path}: is a directory, not a user dictionary; give the dictionary's "
                      "file")
    assert_user_error(train(tmp_path, GOOD, "--user-dict", tmp_path / "none.txt"),
                      f"{tmp_path / 'none.txt'}: user dictionary not found")


def test_dev_class_unseen_in_training(tmp_path):
    dev = tmp_path / "dev.tsv"
    dev.write_text("新车上市\t汽车\n", encoding="utf-8")
    assert_user_error(run_cli("train", "--train", GOOD, "--dev", dev, "--output",
                              tmp_path / "m", *FAST), "汽车 never occur in the training data")


def test_crlf_bom_gbk_long_and_odd_texts_train_fine(tmp_path):
    lines = sample_lines()
    odd = ["足球" * 50000 + "\t体育",                     # a 100,000-character text
           "😀🎉 表情标题 \u200b零宽\u200d字符\x07\t娱乐",   # emoji, zero-width, control
           "\u200b\u200b\t社会"]                          # a text that normalizes to nothing
    body = "\r\n".join(lines + odd) + "\r\n"
    for name, raw in [("crlf_bom.tsv", b"\xef\xbb\xbf" + body.encode("utf-8")),
                      ("gbk.tsv", "\r\n".join(lines).encode("gbk"))]:
        path = tmp_path / name
        path.write_bytes(raw)
        result = train(tmp_path, path, "--overwrite")
        assert result.returncode == 0, result.stderr
    predicted = run_cli("predict", "--model", tmp_path / "model", "--text", "足球" * 10000,
                        "--text", "😀", "--text", "")
    assert predicted.returncode == 0, predicted.stderr
    assert len(predicted.stdout.strip("\n").split("\n")) == 3


def test_evaluate_with_bad_files(tmp_path, sample_model):
    missing = run_cli("evaluate", "--model", sample_model, "--data", tmp_path / "none.tsv")
    assert_user_error(missing, "none.tsv: file not found")
    bad = tmp_path / "bad.tsv"
    bad.write_text("好新闻\t财经\n没有标签\n", encoding="utf-8")
    assert_user_error(run_cli("evaluate", "--model", sample_model, "--data", bad), "bad.tsv:2")


def test_a_vocabulary_left_empty_is_one_line_and_leaves_no_folder(tmp_path):
    result = train(tmp_path, GOOD, "--min-freq", "100000")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().split("\n")[-1] == (
        "newsclf train: error: no token of the training texts occurs 100000 times or more, so "
        "the vocabulary is empty: lower --min-freq (min_freq), or give texts that have words "
        "in them")
    assert not (tmp_path / "model").exists()


def test_labels_that_differ_only_in_case_width_or_zeros_are_warned_about(tmp_path):
    lines = sample_lines(40)
    data = tmp_path / "lookalike.tsv"
    data.write_text("\n".join(lines + ["主队加时赛绝杀晋级决赛\tSports", "球队公布新赛季大名单\tsports",
                                       "新车上市\tＡＢ", "电动车降价\tAB"]) + "\n",
                    encoding="utf-8")
    result = train(tmp_path, data)
    assert result.returncode == 0, result.stderr
    assert ("newsclf train: warning: " + str(data) + ": labels that differ only in case, width "
            "or leading zeros are separate classes: 'AB' / 'ＡＢ'; 'Sports' / 'sports'; write "
            "each class one way if they are one") in result.stderr
    plain = train(tmp_path, GOOD, "--overwrite")
    assert plain.returncode == 0 and "differ only in case" not in plain.stderr
