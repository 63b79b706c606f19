"""Hostile files to label (and to evaluate on): each one is read exactly as written or refused
with one line naming the file (and line) and what to do, and a refused run leaves no output file,
no partial file, and every file the user had as it was."""

import io
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from newsclf.data import iter_input_chunks
from newsclf.errors import DataError, NewsclfError, NoTextsError
from newsclf.predict import predict_file
from newsclf.tokenize import normalize

from conftest import assert_user_error as assert_refused, SAMPLE, run_cli

PREDICTION_COLUMNS = ["pred_label", "pred_score", "error"]


def predict_cli(model, source, output, *options):
    return run_cli("predict", "--model", model, "--input", source, "--output", output,
                   "--no-progress", *options)


def label(predictor, source, output, **options):
    return predict_file(predictor, str(source), str(output), progress=False, **options)


def files_in(folder):
    return sorted(path.name for path in Path(folder).iterdir())


def write(path, content, encoding="utf-8"):
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


# --- 1. rows with more or fewer fields than the header ------------------------------------------

@pytest.mark.parametrize("name, content, fragments", [
    ("extra.csv", "id,text\n1,央行宣布下调存款准备金率,多余\n2,球队夺冠\n3,房价回稳\n",
     ["extra.csv: malformed CSV at line 2: 3 fields, but the header has 2",
      "put a field that contains commas in double quotes"]),
    ("tab.tsv", "id\ttext\tsource\n1\t央行宣布\t下调存款准备金率\t新华社\n2\t球队夺冠\t体育报\n",
     ["tab.tsv: malformed TSV at line 2: 4 fields, but the header has 3",
      "a TSV field cannot contain a tab"]),
    ("short.csv", 'id,text\n1,"两行\n的文本"\n2\n3,房价回稳\n',
     ["short.csv: malformed CSV at line 4: 1 field, but the header has 2"]),
    ("semicolons.csv", "标题;类别\n央行宣布下调存款准备金率;财经\n球队夺冠;体育;多余\n房价回稳;房产\n",
     ["semicolons.csv: malformed CSV at line 3: 3 fields, but the header has 2",
      "put a field that contains semicolons in double quotes"]),
], ids=["extra-field-csv", "tab-in-tsv-text", "short-row-csv", "extra-field-semicolon-csv"])
def test_a_row_with_more_or_fewer_fields_than_the_header_is_refused_with_its_line(
        tmp_path, sample_model, name, content, fragments):
    source = write(tmp_path / name, content)
    output = write(tmp_path / "out.csv", "earlier results\n")
    assert_refused(predict_cli(sample_model, source, output), *fragments)
    assert output.read_text(encoding="utf-8") == "earlier results\n"
    assert files_in(tmp_path) == sorted([name, "out.csv"])


def test_evaluating_on_a_csv_with_an_extra_field_or_a_repeated_column_is_refused(
        tmp_path, sample_model):
    extra = write(tmp_path / "extra.csv", "text,label\n央行宣布降息,财经,多余\n球队夺冠,体育\n")
    assert_refused(run_cli("evaluate", "--model", sample_model, "--data", extra),
                   "extra.csv: malformed CSV at line 2: 3 fields, but the header has 2")
    repeated = write(tmp_path / "twice.csv", "text,label,label\n央行宣布降息,财经,体育\n")
    assert_refused(run_cli("evaluate", "--model", sample_model, "--data", repeated),
                   "twice.csv:1: column name(s) 'label' appear more than once")


def test_a_line_longer_than_the_csv_modules_field_limit_in_a_file_of_texts_is_read(
        tmp_path, sample_model):
    # the format of a .txt or standard input is guessed from its first lines, with the csv
    # module, whose fields stop at 131,072 characters (it raised _csv.Error)
    long_text = "沪指放量上涨" * 25000
    source = write(tmp_path / "long.txt", f"{long_text}\n短新闻\n")
    result = predict_cli(sample_model, source, tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(tmp_path / "out.csv")["text"].tolist() == [long_text, "短新闻"]


def test_a_json_escape_of_half_a_character_is_refused_with_its_line(tmp_path, sample_model):
    # json.loads keeps "\\ud800" as a lone surrogate, which no UTF-8 output could write (a
    # traceback); an escaped pair is one character and reads fine
    source = write(tmp_path / "in.jsonl", '{"text": "央行\\ud83d\\ude00降息"}\n'
                                          '{"text": "球队\\ud800夺冠"}\n')
    assert_refused(predict_cli(sample_model, source, tmp_path / "out.jsonl"),
                   "in.jsonl:2: a \\uD800-\\uDFFF escape without its pair")
    assert files_in(tmp_path) == ["in.jsonl"]


# --- 2. mixed encodings -------------------------------------------------------------------------

def test_utf8_rows_then_gbk_rows_are_refused_at_the_line_where_the_encoding_changes(
        tmp_path, sample_model):
    source = write(tmp_path / "mixed.csv",
                   "id,text\n1,央行宣布降息\n".encode() + "2,球队夺冠\n".encode("gbk"))
    assert_refused(predict_cli(sample_model, source, tmp_path / "out.csv"),
                   "mixed.csv:3: GBK text after UTF-8 text", "save all of it as UTF-8")
    assert files_in(tmp_path) == ["mixed.csv"]


def test_mixed_encodings_far_into_a_file_are_refused_and_plain_files_still_read(
        tmp_path, predictor):
    # the change of encoding comes after the first 64 KiB, which detection looks at
    utf8_then_gbk = write(tmp_path / "a.csv", ("text\n" + "中文新闻\n" * 20000).encode()
                          + "房价回稳\n".encode("gbk"))
    with pytest.raises(DataError, match=r"a\.csv:20002: GBK text after UTF-8 text"):
        label(predictor, utf8_then_gbk, tmp_path / "out.csv")
    gbk_then_utf8 = write(tmp_path / "b.csv", ("text\n" + "中文新闻\n" * 20000).encode("gbk")
                          + "央行宣布降息\n".encode())
    with pytest.raises(DataError, match=r"b\.csv:20002: UTF-8 text after GBK text"):
        label(predictor, gbk_then_utf8, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    # GBK after 64 KiB of ASCII is a plain GBK file; plain UTF-8, UTF-8 with BOM and GBK files
    # of Chinese text are read as before
    texts = ["abc"] * 20000 + ["房价回稳"]
    late_gbk = write(tmp_path / "late.csv", "text\n" + "\n".join(texts) + "\n", "gbk")
    assert label(predictor, late_gbk, tmp_path / "late-out.csv")["rows"] == len(texts)
    assert pd.read_csv(tmp_path / "late-out.csv", dtype=str)["text"].tolist() == texts
    lines = (SAMPLE / "train.tsv").read_text(encoding="utf-8").splitlines()
    for encoding in ("utf-8", "utf-8-sig", "gbk"):
        plain = write(tmp_path / f"plain-{encoding}.txt", "\n".join(lines) + "\n", encoding)
        label(predictor, plain, tmp_path / f"plain-{encoding}.csv")
        written = pd.read_csv(tmp_path / f"plain-{encoding}.csv")
        assert written["text"].tolist() == [line.split("\t")[0] for line in lines]
        assert written["label"].tolist() == [line.split("\t")[1] for line in lines]


TRADITIONAL = ["台北股市今日收盤上漲，電子股領軍", "立法院三讀通過教育改革法案", "颱風逼近，氣象局發布海上警報",
               "職棒總冠軍賽第七戰，主場球隊奪冠", "房價連續三季下跌，建商推出優惠方案"]


def test_a_big5_file_is_labelled_with_its_own_text_and_said_to_be_big5(tmp_path, sample_model):
    rows = "id,text\n" + "".join(f"{number},{text}\n" for number, text in enumerate(TRADITIONAL))
    source = write(tmp_path / "news.csv", rows, "big5")
    result = predict_cli(sample_model, source, tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    assert "news.csv: read as CSV with a header row, text column 'text', Big5" in result.stderr
    assert pd.read_csv(tmp_path / "out.csv")["text"].tolist() == TRADITIONAL


def test_big5_mixed_with_utf8_is_refused_at_the_line_where_the_encoding_changes(
        tmp_path, predictor, sample_model):
    big5_line = "颱風逼近，氣象局發布海上警報\n".encode("big5")
    utf8_then_big5 = write(tmp_path / "a.csv", ("text\n" + "中文新闻\n" * 20000).encode()
                           + big5_line)
    with pytest.raises(DataError, match=r"a\.csv:20002: Big5 text after UTF-8 text"):
        label(predictor, utf8_then_big5, tmp_path / "out.csv")
    big5_then_utf8 = write(tmp_path / "b.txt", big5_line * 3 + "央行宣布降息\n".encode())
    assert_refused(predict_cli(sample_model, big5_then_utf8, tmp_path / "out.csv"),
                   "b.txt:4: UTF-8 text after Big5 text", "save all of it as UTF-8")
    big5_then_other = write(tmp_path / "c.txt", big5_line * 3 + b"\x81\x30\n")
    assert_refused(predict_cli(sample_model, big5_then_other, tmp_path / "out.csv"),
                   "c.txt:4: not Big5, the encoding of the lines before it (byte 0x81)")
    # GBK and Big5 lines in one file: every Big5 line decodes as GBK and most GBK lines as
    # Big5, into other characters; the line that reads as the other encoding's is refused
    gbk_then_big5 = write(tmp_path / "d.txt", "沪指放量上涨 券商板块集体走强\n主队加时赛绝杀晋级决赛\n"
                          .encode("gbk") + big5_line)
    assert_refused(predict_cli(sample_model, gbk_then_big5, tmp_path / "out.csv"),
                   "d.txt:3: Big5 text after GBK text: the file mixes two encodings")
    gbk_line = "央行宣布降息\n".encode("gbk")
    assert gbk_line.decode("big5")  # read as Big5 it is other characters
    big5_then_gbk = write(tmp_path / "e.tsv", (big5_line.rstrip(b"\n") + "\t時政\n".encode("big5")) * 20
                          + gbk_line.rstrip(b"\n") + "\t财经\n".encode("gbk"))
    assert_refused(run_cli("evaluate", "--model", sample_model, "--data", big5_then_gbk),
                   "e.tsv:21: GBK text after Big5 text")
    # after 64 KiB of ASCII, Big5 lines make a Big5 file
    late_big5 = write(tmp_path / "late.txt", b"abc\n" * 20000 + big5_line)
    label(predictor, late_big5, tmp_path / "late.csv")
    assert pd.read_csv(tmp_path / "late.csv")["text"].tolist()[-1] == "颱風逼近，氣象局發布海上警報"
    assert files_in(tmp_path) == ["a.csv", "b.txt", "c.txt", "d.txt", "e.tsv", "late.csv",
                                  "late.txt"]


def test_gbk_rows_then_utf8_rows_are_refused_in_files_to_label_and_to_evaluate(
        tmp_path, sample_model):
    utf8 = "央行宣布降息"
    assert utf8.encode().decode("gb18030") != utf8  # what reading it all as GBK would give
    source = write(tmp_path / "mixed.txt", "球队夺冠\n房价回稳\n".encode("gbk") + f"{utf8}\n".encode())
    assert_refused(predict_cli(sample_model, source, tmp_path / "out.csv"),
                   "mixed.txt:3: UTF-8 text after GBK text", "save all of it as UTF-8")
    data = write(tmp_path / "dev.tsv", "球队夺冠\t体育\n".encode()
                 + "房价回稳\t房产\n央行降息\t财经\n".encode("gbk"))
    assert_refused(run_cli("evaluate", "--model", sample_model, "--data", data),
                   "dev.tsv:2: GBK text after UTF-8 text")
    assert files_in(tmp_path) == ["dev.tsv", "mixed.txt"]


# --- 3. the output is the input -----------------------------------------------------------------

def test_writing_over_the_input_is_refused_before_reading_it(tmp_path, sample_model, predictor):
    content = "id,text\n1,央行宣布降息\n2,球队夺冠\n"
    source = write(tmp_path / "a.csv", content)
    assert_refused(predict_cli(sample_model, source, source),
                   f"{source}: this is the input file", "write the labelled rows to another file")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(source)
    os.link(source, tmp_path / "hard.csv")
    for same in (tmp_path / "sub" / ".." / "a.csv", tmp_path / "link.csv", tmp_path / "hard.csv"):
        with pytest.raises(NewsclfError, match="this is the input file"):
            label(predictor, source, same)
    with pytest.raises(NewsclfError, match="this is the input file"):
        label(predictor, tmp_path / "link.csv", source)
    assert source.read_text(encoding="utf-8") == content
    assert files_in(tmp_path) == ["a.csv", "hard.csv", "link.csv", "sub"]


def test_writing_over_a_file_of_a_model_directory_is_refused(tmp_path, sample_model, predictor):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(sample_model, model)
    source = write(tmp_path / "a.csv", "id,text\n1,央行宣布降息\n2,球队夺冠\n")
    log = model / "train_log.jsonl"
    before = log.read_bytes()
    assert_refused(predict_cli(model, source, log),
                   f"{log}: a file of the model directory {model}")
    (tmp_path / "link.csv").symlink_to(model / "eval_dev" / "misclassified.csv")
    for output in (model / "eval_dev" / "misclassified.csv", tmp_path / "link.csv"):
        with pytest.raises(NewsclfError, match="a file of the model directory"):
            label(predictor, source, output)
    assert log.read_bytes() == before
    assert (model / "eval_dev" / "misclassified.csv").read_bytes() == \
        (sample_model / "eval_dev" / "misclassified.csv").read_bytes()
    label(predictor, source, model / "labelled.csv")  # a file of the user's own beside them
    assert (model / "labelled.csv").is_file()


def test_a_json_array_is_refused_saying_json_lines_are_read_and_how_to_convert(
        tmp_path, sample_model):
    import json

    rows = [{"text": "沪指放量上涨", "label": "股票"}, {"text": "教育部发布新规", "label": "教育"}]
    for name, content, converted in (
            ("arr.json", json.dumps(rows, ensure_ascii=False, indent=2), "arr.jsonl"),
            ("flat.jsonl", json.dumps(rows, ensure_ascii=False), "flat-lines.jsonl")):
        source = write(tmp_path / name, content + "\n")
        expected = [f"{source}:1: a JSON array", "one object per line",
                    f"jq -c '.[]' {source} > {tmp_path / converted}"]
        assert_refused(predict_cli(sample_model, source, tmp_path / "out.csv"), *expected)
        assert_refused(run_cli("evaluate", "--model", sample_model, "--data", source), *expected)
    assert not (tmp_path / "out.csv").exists()


# --- 4. wrong or odd encodings ------------------------------------------------------------------

def test_utf16_given_for_a_utf8_file_is_a_one_line_error_and_for_a_utf16_file_works(
        tmp_path, sample_model, predictor):
    source = write(tmp_path / "in.csv", "id,text\n1,央行宣布降息\n")
    assert_refused(predict_cli(sample_model, source, tmp_path / "out.csv", "--encoding", "utf-16"),
                   "in.csv: has no NUL bytes, so it is not utf-16", "leave out --encoding")
    assert files_in(tmp_path) == ["in.csv"]
    # Excel's "Unicode text": UTF-16 with a BOM, tab-separated
    unicode_text = write(tmp_path / "in.tsv", "title\tid\n央行宣布降息\t1\n球队夺冠\t2\n", "utf-16")
    label(predictor, unicode_text, tmp_path / "out.csv", text_column="title", encoding="utf-16")
    result = pd.read_csv(tmp_path / "out.csv", dtype=str)
    assert result["title"].tolist() == ["央行宣布降息", "球队夺冠"]
    assert result["id"].tolist() == ["1", "2"]


@pytest.mark.parametrize("encoding, message", [
    ("utf-32", r"in\.csv: has no NUL bytes, so it is not utf-32"),
    ("base64", r"'base64' is not a text encoding; try utf-8, utf-8-sig, gb18030 or big5"),
    ("rot13", r"'rot13' is not a text encoding"),
    ("ascii", r"in\.csv:2: not valid ascii \(byte 0xe5\); check the file's encoding"),
], ids=["utf-32", "base64", "rot13", "ascii"])
def test_wrong_or_odd_encodings_are_data_errors(tmp_path, predictor, encoding, message):
    source = write(tmp_path / "in.csv", "id,text\n1,央行宣布降息\n")
    with pytest.raises(DataError, match=message):
        label(predictor, source, tmp_path / "out.csv", encoding=encoding)
    assert files_in(tmp_path) == ["in.csv"]


# --- 5. a repeated column name ------------------------------------------------------------------

def test_a_repeated_column_name_is_refused(tmp_path, sample_model, predictor):
    source = write(tmp_path / "in.csv", "text,text,id\n央行宣布降息,球队夺冠,1\n")
    assert_refused(predict_cli(sample_model, source, tmp_path / "out.csv"),
                   "in.csv:1: column name(s) 'text' appear more than once in the header",
                   "give every column its own name")
    tsv = write(tmp_path / "in.tsv", "\n\nid\ttext\tid\tnote\tnote\n1\t央行\t2\t3\t4\n")
    with pytest.raises(DataError, match=r"in\.tsv:3: column name\(s\) 'id', 'note' appear"):
        label(predictor, tsv, tmp_path / "out.tsv")
    assert files_in(tmp_path) == ["in.csv", "in.tsv"]


# --- 6. TSV output reads back unchanged ---------------------------------------------------------

QUOTED = ['"引号"开头的标题', '中间"引号"的标题', '末尾的引号"', '""', '"', "逗号,和'单引号'"]


@pytest.mark.parametrize("output_name", ["out.tsv", "out.txt"])
def test_tsv_output_is_read_back_unchanged_by_the_tsv_reader(tmp_path, predictor, output_name):
    source = write(tmp_path / "in.tsv", "title\tnote\n"
                   + "".join(f'{text}\t"备注{i}"\n' for i, text in enumerate(QUOTED)))
    output = tmp_path / output_name
    label(predictor, source, output, text_column="title")
    lines = output.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t")[:2] == ["title", "note"]
    assert [line.split("\t")[0] for line in lines[1:]] == QUOTED  # as written, not quoted
    (frame, column), = iter_input_chunks(str(output), fmt="tsv", text_column="title")
    assert frame["title"].tolist() == QUOTED
    assert frame["note"].tolist() == [f'"备注{i}"' for i in range(len(QUOTED))]
    assert list(frame.columns) == ["title", "note", *PREDICTION_COLUMNS]


def test_a_text_tsv_cannot_hold_is_refused_for_tsv_output(tmp_path, sample_model, predictor):
    source = write(tmp_path / "in.csv", 'id,text\n1,央行宣布降息\n2,"两行\n的文本"\n3,球队夺冠\n')
    assert_refused(predict_cli(sample_model, source, tmp_path / "out.tsv"),
                   "in.csv:3: column 'text' holds a tab or line break, which a TSV file cannot "
                   "hold; write .csv output instead")
    tabbed = write(tmp_path / "in.txt", "央行宣布降息\n球队\t夺冠\n")
    with pytest.raises(DataError, match=r"in\.txt:2: column 'text' holds a tab or line break"):
        label(predictor, tabbed, tmp_path / "out.txt")
    header = write(tmp_path / "header.csv", 'text,"a\tb"\n央行宣布降息,1\n')
    with pytest.raises(DataError, match=r"header\.csv: column name 'a\\tb' holds a tab"):
        label(predictor, header, tmp_path / "out.tsv")
    assert files_in(tmp_path) == ["header.csv", "in.csv", "in.txt"]
    label(predictor, source, tmp_path / "out.csv")  # CSV output holds them
    assert pd.read_csv(tmp_path / "out.csv", dtype=str)["text"].tolist()[1] == "两行\n的文本"


# --- 7. a TSV without a header ------------------------------------------------------------------

def test_a_headerless_labelled_tsv_is_labelled_with_its_columns_named_by_role(
        tmp_path, sample_model):
    result = predict_cli(sample_model, SAMPLE / "dev.tsv", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    assert "dev.tsv: read as TSV without a header row, text<TAB>label, UTF-8" in result.stderr
    written = pd.read_csv(tmp_path / "out.csv", dtype=str)
    lines = (SAMPLE / "dev.tsv").read_text(encoding="utf-8").splitlines()
    assert written.columns.tolist() == ["text", "label", *PREDICTION_COLUMNS]
    assert written["text"].tolist() == [line.split("\t")[0] for line in lines]


# --- 8. output formats --------------------------------------------------------------------------

def test_an_output_format_newsclf_does_not_write_is_refused(tmp_path, sample_model, predictor):
    source = write(tmp_path / "in.csv", "id,text\n1,央行宣布降息\n")
    assert_refused(predict_cli(sample_model, source, tmp_path / "out.parquet"),
                   "out.parquet: cannot write .parquet", "the output is .csv, .tsv or .txt "
                   "(tab-separated), .xlsx, .jsonl, or - for standard output")
    for name in ("out.json", "out.CSV.bak", "out", "out.xls"):
        with pytest.raises(NewsclfError, match="the output is .csv, .tsv or .txt"):
            label(predictor, source, tmp_path / name)
    assert files_in(tmp_path) == ["in.csv"]
    label(predictor, source, tmp_path / "OUT.TXT")
    assert (tmp_path / "OUT.TXT").read_text(encoding="utf-8").startswith(
        "id\ttext\tpred_label\tpred_score\terror\n1\t央行宣布降息\t")


# --- 9. every table pandas round-trips through CSV comes out unchanged ------------------------

CELL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=8)
NAME = CELL.filter(lambda name: name and name not in PREDICTION_COLUMNS)


@st.composite
def tables(draw):
    columns = draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
    rows = draw(st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns)),
                         min_size=1, max_size=6))
    return pd.DataFrame(rows, columns=columns, dtype=object)


def read_back(csv_text):
    return pd.read_csv(io.StringIO(csv_text), dtype=str, keep_default_na=False)


@given(table=tables())
# a one-column table whose cells end in a tab, read as tab-separated before its named column
@example(table=pd.DataFrame([["0\t"]], columns=["0\t"], dtype=object))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_table_pandas_round_trips_keeps_its_columns_and_rows(predictor, table):
    written = table.to_csv(index=False, lineterminator="\n")
    try:
        back = read_back(written)
    except (pd.errors.ParserError, pd.errors.EmptyDataError):
        back = None
    assume(back is not None and back.columns.tolist() == table.columns.tolist()
           and back.astype(object).values.tolist() == table.values.tolist())
    with tempfile.TemporaryDirectory() as folder:
        source = write(Path(folder) / "in.csv", written)
        output = Path(folder) / "out.csv"
        name = table.columns[0]
        # a column named by digits is a position unless a header row is asked for (data/README)
        header = True if name.strip().isdecimal() else None
        if not any(normalize(text) for text in table[name]):  # no text: refused, nothing written
            with pytest.raises(NoTextsError, match="the text of every row is blank"):
                label(predictor, source, output, text_column=name, header=header, chunk_size=2)
            assert not output.exists()
            return
        summary = label(predictor, source, output, text_column=name, header=header, chunk_size=2)
        result = read_back(output.read_bytes().decode("utf-8"))  # "\r" in a cell kept
    assert summary["rows"] == len(table)
    assert result.columns.tolist() == [*table.columns, *PREDICTION_COLUMNS]
    assert result[table.columns].astype(object).values.tolist() == table.values.tolist()


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a file system of 1 MB (a tmpfs), for what a full disk does."""
    import shutil
    import subprocess

    folder = tmp_path / "small-disk"
    folder.mkdir()
    if shutil.which("mount") is None or os.name != "posix" or os.geteuid() != 0:
        pytest.skip("a full disk is made with a small tmpfs, which needs root and mount")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize("name", ["labelled.csv", "labelled.jsonl", "labelled.xlsx"])
def test_a_full_disk_is_one_line_naming_the_output_and_the_old_output_is_kept(
        tmp_path, sample_model, small_disk, name):
    rows = (SAMPLE / "dev.tsv").read_text(encoding="utf-8").splitlines()
    source = tmp_path / "many.tsv"
    source.write_text("\n".join(rows * 40) + "\n", encoding="utf-8")  # labelled: over 1 MB
    output = small_disk / name
    output.write_bytes(b"what the user had")
    result = predict_cli(sample_model, source, output)
    assert_refused(result, f"{output}: no space left on the device (", "MB free there now")
    assert output.read_bytes() == b"what the user had"
    assert sorted(path.name for path in small_disk.iterdir()) == [name]


def test_a_model_that_does_not_fit_on_the_disk_is_one_line(small_disk):
    result = run_cli("train", "--train", SAMPLE / "train.tsv", "--dev", SAMPLE / "dev.tsv",
                     "--output", small_disk / "model", "--epochs", "1", "--d-model", "32",
                     "--n-heads", "2", "--d-ff", "64", "--ensemble-size", "1", "--no-progress")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"newsclf train: error: {small_disk / 'model'}/") and (
        "no space left on the device" in last)
