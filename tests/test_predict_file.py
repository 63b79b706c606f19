"""Batch prediction on files: every row kept, in order, across formats and encodings."""


import csv
import io
import json

import openpyxl
import pandas as pd
import pytest

from newsclf.errors import DataError, NewsclfError
from newsclf.predict import predict_file

from conftest import assert_user_error, run_cli

HOSTILE = [
    "沪指放量上涨 券商板块集体走强",
    "",
    "   ",
    "😀🎉",
    "带,逗号的标题",
    '带"引号"的标题',
    "带\n换行的\r\n标题",
    "\u200b\u200d",
    "足球" * 10000,
    "ＮＢＡ总决赛第七场",
]


def hostile_frame():
    return pd.DataFrame({"id": [str(i) for i in range(len(HOSTILE))], "text": HOSTILE,
                         "note": [f"备注{i}" for i in range(len(HOSTILE))]})


def write_csv(path, encoding):
    path.write_bytes(hostile_frame().to_csv(index=False).encode(encoding))
    return path


def read_out(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_hostile_rows_are_all_kept_in_order_with_identical_predictions(tmp_path, predictor, encoding):
    out = tmp_path / "out.csv"
    summary = predict_file(predictor, str(write_csv(tmp_path / "in.csv", encoding)), str(out),
                           progress=False, chunk_size=3)
    result = read_out(out)
    expected = hostile_frame()
    assert summary["rows"] == len(expected) == len(result)
    pd.testing.assert_frame_equal(result[["id", "text", "note"]], expected)
    assert (result["error"] == "empty text").tolist() == \
        [False, True, True, False, False, False, False, True, False, False]
    assert result["error"].tolist()[3] == "no known token"  # 😀🎉: nothing the model knows
    empty = result["error"] != ""
    assert (result.loc[empty, "pred_label"] == "").all()
    assert (result.loc[empty, "pred_score"] == "").all()
    assert set(result.loc[~empty, "pred_label"]) <= set(predictor.classes_)
    direct = predictor.predict([t for t, e in zip(HOSTILE, empty) if not e])
    assert result.loc[~empty, "pred_label"].tolist() == [d["label"] for d in direct]
    scores = result.loc[~empty, "pred_score"]
    assert scores.str.fullmatch(r"[01]\.\d{6}").all()  # six decimals, as every float column
    assert scores.astype(float).tolist() == pytest.approx([d["score"] for d in direct], abs=2e-6)


def test_encodings_give_identical_output(tmp_path, predictor):
    outputs = []
    for encoding in ["utf-8", "utf-8-sig", "gb18030"]:
        out = tmp_path / f"out-{encoding}.csv"
        predict_file(predictor, str(write_csv(tmp_path / f"in-{encoding}.csv", encoding)),
                     str(out), progress=False)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_top_k_probabilities_and_excel_bom(tmp_path, predictor):
    out = tmp_path / "out.csv"
    predict_file(predictor, str(write_csv(tmp_path / "in.csv", "utf-8")), str(out), top_k=3,
                 probabilities=True, excel=True, progress=False)
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    result = read_out(out)
    prob_columns = [f"prob_{c}" for c in predictor.classes_]
    assert [c for c in result.columns if c.startswith("prob_")] == prob_columns
    row = result.iloc[0]
    assert row["top1_label"] == row["pred_label"]
    assert float(row["top1_score"]) >= float(row["top2_score"]) >= float(row["top3_score"])
    assert sum(float(row[c]) for c in prob_columns) == pytest.approx(1.0, abs=1e-4)


def test_txt_and_tsv_inputs(tmp_path, predictor):
    txt = tmp_path / "in.txt"
    txt.write_text("第一条新闻\n\n第三条\t带制表符\n", encoding="utf-8")
    out = tmp_path / "out.csv"  # a tab inside a text: CSV output (TSV output cannot hold it)
    predict_file(predictor, str(txt), str(out), progress=False)
    assert read_out(out)["text"].tolist() == ["第一条新闻", "", "第三条\t带制表符"]
    tsv = tmp_path / "in.tsv"
    tsv.write_text('title\tsource\n"引号"开头的标题\t网站\n', encoding="utf-8")
    out = tmp_path / "out2.csv"
    predict_file(predictor, str(tsv), str(out), text_column="title", progress=False)
    assert read_out(out)["title"].tolist() == ['"引号"开头的标题']


def test_long_text_chunk_combines_windows(predictor):
    article = "股市" * 200 + "足球比赛" * 100
    truncated = predictor.predict_proba([article])
    chunked = predictor.predict_proba([article], long_text="chunk")
    assert chunked.shape == truncated.shape
    assert abs(chunked - truncated).max() > 1e-4  # the end of the article now counts
    short = ["央行降息"]
    assert abs(predictor.predict_proba(short, long_text="chunk")
               - predictor.predict_proba(short)).max() < 1e-6


def test_bad_inputs_are_clear_and_leave_no_output(tmp_path, predictor):
    src = write_csv(tmp_path / "in.csv", "utf-8")
    out = tmp_path / "out.csv"
    with pytest.raises(DataError, match="no column 'headline' for the text; the columns are 'id', 'text', 'note'"):
        predict_file(predictor, str(src), str(out), text_column="headline", progress=False)
    assert not out.exists() and list(tmp_path.iterdir()) == [src]
    with pytest.raises(DataError, match="file not found"):
        predict_file(predictor, str(tmp_path / "missing.csv"), str(out), progress=False)
    clash = tmp_path / "clash.csv"
    clash.write_text("text,pred_label\n新闻,x\n", encoding="utf-8")
    with pytest.raises(DataError, match="already has column"):
        predict_file(predictor, str(clash), str(out), progress=False)
    with pytest.raises(NewsclfError, match="top_k"):
        predict_file(predictor, str(src), str(out), top_k=0, progress=False)


def test_existing_output_survives_a_failed_run(tmp_path, predictor):
    src = tmp_path / "in.csv"
    src.write_bytes("text\n好新闻\n".encode() + b"\xff\xfe bad bytes\n")
    out = tmp_path / "out.csv"
    out.write_text("previous results\n", encoding="utf-8")
    with pytest.raises(DataError):
        predict_file(predictor, str(src), str(out), progress=False, encoding="utf-8")
    assert out.read_text(encoding="utf-8") == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


@pytest.mark.parametrize("name", ["out.csv", "out.xlsx"])
def test_a_replaced_output_keeps_its_permissions(tmp_path, predictor, name):
    src = tmp_path / "in.csv"
    src.write_text("text\n股市大涨\n", encoding="utf-8")
    out = tmp_path / name
    out.write_text("previous results\n", encoding="utf-8")
    out.chmod(0o640)
    predict_file(predictor, str(src), str(out), progress=False)
    assert out.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.csv", name])


def test_an_output_given_as_a_link_writes_the_file_it_points_to(tmp_path, predictor):
    src = tmp_path / "in.csv"
    src.write_text("text\n股市大涨\n", encoding="utf-8")
    (tmp_path / "results").mkdir()
    real = tmp_path / "results" / "today.csv"
    real.write_text("previous results\n", encoding="utf-8")
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    predict_file(predictor, str(src), str(link), progress=False)
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text(encoding="utf-8").startswith("text,pred_label")
    assert sorted(p.name for p in real.parent.iterdir()) == ["today.csv"]


def test_cli_file_prediction_with_workers_and_stdin(tmp_path, sample_model):
    src = write_csv(tmp_path / "in.csv", "gb18030")
    one = tmp_path / "one.csv"
    two = tmp_path / "two.csv"
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output", one,
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output", two,
                     "--workers", "2", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert one.read_bytes() == two.read_bytes()
    import subprocess
    import sys

    piped = subprocess.run([sys.executable, "-m", "newsclf", "predict", "--model", str(sample_model),
                            "--input", "-", "--format", "txt", "--output", "-", "--no-progress"],
                           input="股市大涨\n球队夺冠\n".encode(), capture_output=True)
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.decode().strip().split("\n")
    assert lines[0].startswith("text,pred_label,pred_score") and len(lines) == 3


def test_cli_unknown_column_is_one_line(tmp_path, sample_model):
    src = write_csv(tmp_path / "in.csv", "utf-8")
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output",
                     tmp_path / "o.csv", "--text-column", "title")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "columns are 'id', 'text', 'note'" in result.stderr
    counted_from_zero = run_cli("predict", "--model", sample_model, "--input", src, "--output",
                                tmp_path / "o.csv", "--text-column", "0")
    assert_user_error(counted_from_zero, "no column '0' for the text; the columns are 'id', "
                                         "'text', 'note' (positions start at 1)")
    assert not (tmp_path / "o.csv").exists()


def test_cli_summary_counts_rows_in_words(tmp_path, sample_model):
    src = tmp_path / "one.csv"
    src.write_text("text\n股市大涨\n", encoding="utf-8")
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output",
                     tmp_path / "o.csv", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "1 row labelled (0 without a label" in result.stderr


@pytest.mark.parametrize("name,content", [("in.txt", b""), ("in.ft", b""), ("in.csv", b"text\n")])
def test_an_empty_input_is_refused_and_the_previous_output_kept(tmp_path, sample_model, name,
                                                                content):
    src = tmp_path / name
    src.write_bytes(content)
    out = tmp_path / "out.csv"
    out.write_text("yesterday's results\n", encoding="utf-8")
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output", out,
                     "--no-progress", *(["--format", "fasttext"] if name.endswith(".ft") else []))
    assert_user_error(result, str(src), "no texts in it")
    assert out.read_text(encoding="utf-8") == "yesterday's results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "out.csv"])


def test_empty_standard_input_is_refused(sample_model):
    import subprocess
    import sys

    piped = subprocess.run([sys.executable, "-m", "newsclf", "predict", "--model",
                            str(sample_model), "--input", "-", "--format", "txt", "--output",
                            "-", "--no-progress"], input=b"", capture_output=True)
    assert piped.returncode == 2 and piped.stdout == b""
    assert piped.stderr.decode().strip().split("\n")[-1] == \
        "newsclf predict: error: <stdin>: empty file; no texts in it"


def test_excel_on_standard_output_starts_with_a_bom(sample_model):
    import subprocess
    import sys

    piped = subprocess.run([sys.executable, "-m", "newsclf", "predict", "--model",
                            str(sample_model), "--input", "-", "--format", "txt", "--output",
                            "-", "--excel", "--no-progress"],
                           input="股市大涨\n球队夺冠\n".encode(), capture_output=True)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith("\ufefftext,pred_label".encode())
    assert piped.stdout.count("\ufeff".encode()) == 1


def test_excel_with_json_lines_output_is_refused(tmp_path, sample_model):
    src = tmp_path / "in.csv"
    src.write_text("text\n股市大涨\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output", out,
                     "--excel", "--no-progress")
    assert_user_error(result, "--excel", "leave --excel out for .jsonl output")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.parametrize("first,rows", [("news_summary", 11), ("新闻全文内容", 11),
                                        ("news_summary", 3), ("摘要", 3)])
def test_a_one_column_table_under_an_unusual_name_is_not_labelled_as_a_text(
        tmp_path, sample_model, first, rows):
    headlines = [HOSTILE[0], "央行宣布下调金融机构存款准备金率", "国家队主教练公布世界杯预选赛大名单",
                 "教育部部署今年高校毕业生就业工作", "新能源汽车销量连续三个月同比增长",
                 "多地出台政策支持首套住房贷款需求", "研究团队发布新一代量子计算原型机",
                 "电影节开幕红毯星光熠熠引发热议", "沪深两市成交额突破万亿元大关",
                 "篮球联赛季后赛首轮主场险胜对手", "高考志愿填报指南发布各地陆续公布分数线"][:rows]
    src = tmp_path / "in.csv"
    src.write_text("\n".join([first, *headlines]) + "\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output", out,
                     "--no-progress")
    assert_user_error(result, f"in.csv:1: the first row ({first!r}) looks like a column name",
                      "--header", "--no-header")
    assert not out.exists()
    for flag, column, texts in (("--header", first, headlines),
                                ("--no-header", "text", [first, *headlines])):
        result = run_cli("predict", "--model", sample_model, "--input", src, "--output", out,
                         "--no-progress", flag)
        assert result.returncode == 0, result.stderr
        assert read_out(out)[column].tolist() == texts


@pytest.mark.parametrize("first", ["中国女排夺冠", "5G", "NBA Finals: Celtics win",
                                   "NBA总决赛第七场今晚开打"])
def test_a_one_column_table_of_texts_alone_reads_every_row(tmp_path, sample_model, first):
    texts = [first, "央行宣布下调金融机构存款准备金率", "国家队公布大名单",
             *[f"第{i}条关于股市行情的新闻标题" for i in range(10)]]
    assert texts_read_back(tmp_path / "in.csv", texts, sample_model) == texts


def texts_read_back(src, lines, model):
    """The text column of what ``newsclf predict`` writes for ``src`` holding ``lines``."""
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = src.with_name("out.csv")
    result = run_cli("predict", "--model", model, "--input", src, "--output", out,
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    return read_out(out)["text"].tolist()


def test_a_read_only_output_file_is_refused_and_kept(tmp_path, sample_model):
    src = tmp_path / "in.csv"
    src.write_text("text\n股市大涨\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    out.write_text("results I protected\n", encoding="utf-8")
    out.chmod(0o444)
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output", out,
                     "--no-progress")
    assert_user_error(result, "out.csv: the file is read-only", "chmod u+w")
    assert out.read_text(encoding="utf-8") == "results I protected\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_a_csv_on_standard_input_is_read_as_csv(sample_model):
    import subprocess
    import sys

    piped = subprocess.run([sys.executable, "-m", "newsclf", "predict", "--model",
                            str(sample_model), "--input", "-", "--output", "-", "--no-progress"],
                           input="标题,类别\n\"股市大涨, 券商走强\",股票\n球队夺冠,体育\n".encode(),
                           capture_output=True)
    assert piped.returncode == 0, piped.stderr
    assert "<stdin>: read as CSV with a header row" in piped.stderr.decode()
    result = pd.read_csv(io.StringIO(piped.stdout.decode()), dtype=str, keep_default_na=False)
    assert result["标题"].tolist() == ["股市大涨, 券商走强", "球队夺冠"]
    assert result["类别"].tolist() == ["股票", "体育"]


@pytest.mark.parametrize("flag", [["--header"], ["--text-column", "news_summary"],
                                  ["--text-column", "2"]])
def test_a_table_option_on_a_file_of_lines_is_refused(tmp_path, sample_model, flag):
    src = tmp_path / "in.txt"
    src.write_text("news_summary\n股市大涨\n球队夺冠\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output", out,
                     "--no-progress", *flag)
    assert_user_error(result, flag[0], "read as one text per line", "--format csv")
    assert not out.exists()


@pytest.mark.parametrize("name,content,fragment", [
    ("blank.txt", "\n \n\t\n\u200b\n", "blank.txt: the text of every row is blank (4 rows)"),
    ("blank.csv", "id,text\n1,\n2,  \n", "blank.csv: the text of every row is blank (2 rows); "
                                        "no texts in it (--text-column chooses another column)")])
def test_an_input_whose_texts_are_all_blank_is_refused_and_the_output_kept(
        tmp_path, sample_model, name, content, fragment):
    src = tmp_path / name
    src.write_text(content, encoding="utf-8")
    out = tmp_path / "out.csv"
    out.write_text("yesterday's results\n", encoding="utf-8")
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output", out,
                     "--no-progress")
    assert_user_error(result, fragment)
    assert out.read_text(encoding="utf-8") == "yesterday's results\n"


def test_an_output_that_is_a_folder_is_told_so(tmp_path, sample_model):
    src = tmp_path / "in.csv"
    src.write_text("text\n股市大涨\n", encoding="utf-8")
    (tmp_path / "results").mkdir()
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output",
                     tmp_path / "results", "--no-progress")
    assert_user_error(result, "results: is a directory; give an output file name")
    assert list((tmp_path / "results").iterdir()) == []


def test_excel_on_standard_output_writes_one_bom_over_many_chunks(tmp_path, predictor, capsys):
    src = tmp_path / "in.txt"
    src.write_text("股市大涨\n球队夺冠\n央行降息\n", encoding="utf-8")
    predict_file(predictor, str(src), "-", excel=True, chunk_size=1, progress=False)
    out = capsys.readouterr().out
    assert out.startswith("\ufefftext,pred_label") and out.count("\ufeff") == 1
    assert len(out.strip().split("\n")) == 4


def test_a_file_of_lines_starting_with_a_column_name_is_refused(tmp_path, sample_model):
    src = tmp_path / "in.txt"
    src.write_text("标题\n央行宣布下调存款准备金率\n", encoding="utf-8")
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output",
                     tmp_path / "out.csv", "--no-progress")
    assert_user_error(result, "its first line ('标题') is a column name", "--format csv")
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output",
                     tmp_path / "out.csv", "--no-progress", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert read_out(tmp_path / "out.csv")["标题"].tolist() == ["央行宣布下调存款准备金率"]


@pytest.mark.parametrize("first", ["Apple event recap, Title", "两会热词,主题,解读"])
def test_a_file_of_lines_whose_first_line_has_a_comma_and_a_column_word_stays_lines(
        tmp_path, sample_model, first):
    texts = [first, "央行宣布下调存款准备金率", "国足主场两球战胜对手", "教育部发布高考报名新规"]
    assert texts_read_back(tmp_path / "in.txt", texts, sample_model) == texts


# JSON lines holding every kind of value: numbers an int64 or a double cannot hold exactly
# elsewhere, true/false/null, nested lists and objects, unicode keys and values; the last line
# leaves keys out
JSON_LINES = [
    '{"id": 7, "title": "沪指放量上涨", "score": 1e3, "ok": true, "tags": ["a"], "note": null}',
    '{"id": 9223372036854775808, "title": "央行宣布下调存款准备金率", "score": 0.1, "ok": false, '
    '"tags": {"来源": "新华社", "层": [1, 2.5, null]}, "note": "备注😀"}',
    '{"id": -12345678901234567890123, "title": "国足主场两球战胜对手", '
    '"score": 1.7976931348623157e308, "ok": null, "tags": [], "note": {}}',
    '{"title": "ＮＢＡ总决赛第七场", "score": 2.5e-08}',
]
JSON_COLUMNS = ["id", "title", "score", "ok", "tags", "note"]
ADDED = ["pred_label", "pred_score", "error"]


def typed(value):
    """A JSON value with every type and key order spelled out (in Python 1 == 1.0 == True, and
    dicts equal in any order)."""
    if isinstance(value, dict):
        return [(key, typed(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [typed(item) for item in value]
    return type(value).__name__, value


def json_lines_in(path, lines=JSON_LINES):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def records_of(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_values_written_back(out, lines, columns, predictor):
    records = records_of(out)
    assert len(records) == len(lines)
    for line, record in zip(lines, records):
        read = json.loads(line)
        assert list(record) == columns + ADDED
        assert typed({key: record[key] for key in columns}) == \
            typed({key: read.get(key) for key in columns})  # a key left out: null
    assert [record["pred_label"] for record in records] == \
        [best["label"] for best in predictor.predict([record["title"] for record in records])]


def test_json_lines_output_keeps_every_value_of_json_lines_input(tmp_path, predictor,
                                                                  sample_model):
    src = json_lines_in(tmp_path / "in.jsonl")
    out = tmp_path / "out.jsonl"
    predict_file(predictor, str(src), str(out), progress=False, chunk_size=3)
    assert_values_written_back(out, JSON_LINES, JSON_COLUMNS, predictor)
    assert out.read_text(encoding="utf-8").splitlines()[0].startswith(
        '{"id":7,"title":"沪指放量上涨","score":1000.0,"ok":true,"tags":["a"],"note":null,'
        '"pred_label":')
    cli_out = tmp_path / "cli.jsonl"
    result = run_cli("predict", "--model", sample_model, "--input", src, "--output", cli_out,
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    assert_values_written_back(cli_out, JSON_LINES, JSON_COLUMNS, predictor)


# what the text formats and Excel hold for JSON_LINES (docs/files.md, "Labelling files")
JSON_LINES_AS_TEXT = [
    ["7", "沪指放量上涨", "1000.0", "true", '["a"]', ""],
    ["9223372036854775808", "央行宣布下调存款准备金率", "0.1", "false",
     '{"来源": "新华社", "层": [1, 2.5, null]}', "备注😀"],
    ["-12345678901234567890123", "国足主场两球战胜对手", "1.7976931348623157e+308", "", "[]",
     "{}"],
    ["", "ＮＢＡ总决赛第七场", "2.5e-08", "", "", ""],
]


def test_json_lines_input_is_written_as_text_to_csv_tsv_and_excel(tmp_path, predictor,
                                                                  sample_model):
    src = json_lines_in(tmp_path / "in.jsonl")
    for name in ("out.csv", "out.tsv"):
        result = run_cli("predict", "--model", sample_model, "--input", src, "--output",
                         tmp_path / name, "--no-progress")
        assert result.returncode == 0, result.stderr
        with open(tmp_path / name, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, **({"delimiter": "\t", "quoting": csv.QUOTE_NONE}
                                              if name.endswith(".tsv") else {})))
        assert rows[0] == JSON_COLUMNS + ADDED
        assert [row[:len(JSON_COLUMNS)] for row in rows[1:]] == JSON_LINES_AS_TEXT
    predict_file(predictor, str(src), str(tmp_path / "out.xlsx"), progress=False)
    sheet = openpyxl.load_workbook(tmp_path / "out.xlsx").active
    cells = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [list(row[:len(JSON_COLUMNS)]) for row in cells] == \
        [[field or None for field in row] for row in JSON_LINES_AS_TEXT]  # text cells, empty
    assert all(isinstance(row[JSON_COLUMNS.index("id")], (str, type(None))) for row in cells)


def test_a_json_lines_text_that_is_not_a_string_is_classified_as_its_text_and_kept(
        tmp_path, predictor):
    lines = ['{"title": 2024, "n": 1}', '{"title": null, "n": 2}',
             '{"title": ["沪指放量上涨", "券商板块集体走强"], "n": 3}', '{"title": "央行降息", "n": 4}']
    src = json_lines_in(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    predict_file(predictor, str(src), str(out), progress=False)
    records = records_of(out)
    assert [typed(record["title"]) for record in records] == \
        [typed(json.loads(line)["title"]) for line in lines]
    in_workers = tmp_path / "workers.jsonl"
    predict_file(predictor, str(src), str(in_workers), progress=False, workers=2, chunk_size=2)
    assert in_workers.read_bytes() == out.read_bytes()
    assert [record["error"] for record in records][1] == "empty text"
    texts = ["2024", '["沪指放量上涨", "券商板块集体走强"]', "央行降息"]
    assert [records[i]["pred_label"] for i in (0, 2, 3)] == \
        [best["label"] for best in predictor.predict(texts)]
    predict_file(predictor, str(src), str(tmp_path / "out.csv"), progress=False)
    written = read_out(tmp_path / "out.csv")
    assert written["title"].tolist() == ["2024", "", texts[1], "央行降息"]
    assert written["pred_label"].tolist() == [record["pred_label"] for record in records]


def test_csv_input_gives_strings_in_json_lines_output(tmp_path, predictor):
    src = tmp_path / "in.csv"
    src.write_text('id,title,ok,tags\n007,央行降息,true,"[1, 2]"\n1e3,,null,\n',
                   encoding="utf-8")
    out = tmp_path / "out.jsonl"
    predict_file(predictor, str(src), str(out), progress=False)
    assert [[record[key] for key in ("id", "title", "ok", "tags")] for record in records_of(out)] \
        == [["007", "央行降息", "true", "[1, 2]"], ["1e3", "", "null", ""]]
