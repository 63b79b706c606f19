"""Every data layout newsclf reads gives the same examples, the same model, the same evaluation
and the same labels: the sample data written as TSV either way round with and without a header,
CSV with and without one, Excel, JSON lines and fastText, in UTF-8, UTF-8 with BOM and GBK."""

import json
import re
import warnings

import openpyxl
import pandas as pd
import pytest

from conftest import SAMPLE, assert_user_error, run_cli
from newsclf.data import read_labelled
from newsclf.datafiles import (NumericLabelsWarning, column_texts, iter_input_chunks, open_texts,
                                text_chunks)
from newsclf.errors import DataError
from newsclf.predict import predict_file

REFERENCE = {split: read_labelled(SAMPLE / f"{split}.tsv") for split in ("train", "dev")}


def write_layout(folder, name, split):
    """The sample ``split`` written in layout ``name``; returns the path."""
    data = REFERENCE[split]
    pairs = list(zip(data.texts, data.labels))
    stem = folder / f"{split}-{name}"
    if name == "xlsx":
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        sheet.title = "新闻"
        sheet.append(["编号", "标题", "类别"])
        for number, (text, label) in enumerate(pairs, 1):
            sheet.append([number, text, label])
        path = stem.with_suffix(".xlsx")
        workbook.save(path)
        return path
    if name == "jsonl":
        lines = [json.dumps({"id": i, "text": t, "label": label}, ensure_ascii=False)
                 for i, (t, label) in enumerate(pairs)]
        suffix, encoding = ".jsonl", "utf-8"
    elif name == "fasttext":
        lines = [f"__label__{label} {text}" for text, label in pairs]
        suffix, encoding = ".txt", "utf-8"
    elif name.startswith("csv"):
        quoted = [f'"{text}",{label}' for text, label in pairs]
        lines = (["title,category"] if name == "csv-header" else []) + quoted
        suffix, encoding = ".csv", "utf-8"
    else:  # tsv-<order>[-header]-<encoding>
        _, order, *rest = name.split("-")
        encoding = {"utf8": "utf-8", "bom": "utf-8-sig", "gbk": "gbk"}[rest[-1]]
        rows = [f"{text}\t{label}" if order == "text" else f"{label}\t{text}"
                for text, label in pairs]
        header = ["text\tlabel" if order == "text" else "类别\t标题"] if "header" in rest else []
        lines = header + rows
        suffix = ".txt" if order == "label" else ".tsv"
    path = stem.with_suffix(suffix)
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


LAYOUTS = ["tsv-text-utf8", "tsv-label-utf8", "tsv-text-header-bom", "tsv-label-header-gbk",
           "tsv-label-bom", "tsv-text-gbk", "csv-header",
           "csv-headerless", "xlsx", "jsonl", "fasttext"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_reads_the_same_examples(tmp_path, layout):
    for split, reference in REFERENCE.items():
        data = read_labelled(write_layout(tmp_path, layout, split))
        assert data.texts == reference.texts
        assert data.labels == reference.labels


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_is_labelled_with_the_same_predictions(tmp_path, predictor, layout):
    source = write_layout(tmp_path, layout, "dev")
    predict_file(predictor, str(source), str(tmp_path / "out.csv"), progress=False)
    written = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    text_column = "标题" if layout in ("xlsx", "tsv-label-header-gbk") else \
        "title" if layout == "csv-header" else "text"
    assert written[text_column].tolist() == REFERENCE["dev"].texts
    expected = [best["label"] for best in predictor.predict(REFERENCE["dev"].texts)]
    assert written["pred_label"].tolist() == expected


TRAIN_SETTINGS = ["--d-model", "32", "--n-heads", "2", "--d-ff", "64", "--epochs", "2",
                  "--ensemble-size", "1", "--min-freq", "1", "--no-export", "--no-progress"]


def train_and_evaluate(folder, layout):
    """Train with the CLI on the sample in ``layout`` and evaluate on its dev file: the
    closing line of training, the evaluation summary and the model's classes."""
    train, dev = (write_layout(folder, layout, split) for split in ("train", "dev"))
    model = folder / f"model-{layout}"
    trained = run_cli("train", "--train", train, "--dev", dev, "--output", model,
                      *TRAIN_SETTINGS)
    assert trained.returncode == 0, trained.stderr
    assert f"{train.name}: read as " in trained.stderr
    evaluated = run_cli("evaluate", "--model", model, "--data", dev,
                        "--output", folder / f"eval-{layout}")
    assert evaluated.returncode == 0, evaluated.stderr
    return (trained.stdout.splitlines()[0], evaluated.stdout.splitlines()[:-1],
            json.loads((model / "labels.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def reference_results(tmp_path_factory):
    return train_and_evaluate(tmp_path_factory.mktemp("reference"), "tsv-text-utf8")


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["xlsx"])  # every layout reads the same examples (above)
def test_training_and_evaluating_on_any_layout_gives_the_reference_results(
        tmp_path, layout, reference_results):
    assert train_and_evaluate(tmp_path, layout) == reference_results


def test_what_was_detected_is_said(tmp_path):
    described = {name: read_labelled(write_layout(tmp_path, name, "dev")).layout.describe()
                 for name in ("tsv-label-header-gbk", "xlsx", "fasttext", "csv-headerless")}
    assert described["tsv-label-header-gbk"].endswith(
        "read as TSV with a header row, text column '标题', label column '类别', GBK/GB18030")
    assert described["xlsx"].endswith(
        "read as Excel sheet '新闻' with a header row, text column '标题', label column '类别'")
    assert described["fasttext"].endswith("read as fastText (__label__NAME text), UTF-8")
    assert described["csv-headerless"].endswith("read as CSV without a header row, text,label, "
                                                "UTF-8")


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


HEADLINES = ["央行宣布下调存款准备金率", "国足主场两球战胜对手", "楼市成交量环比回升",
             "高考报名人数创新高", "新款手机发布搭载自研芯片", "男篮加时险胜晋级八强",
             "沪指放量上涨券商走强", "多地出台购房补贴政策", "教育部发布新规", "电竞联赛总决赛开打",
             "台风登陆沿海多地停课", "新能源车销量同比翻番"]


def test_columns_by_position_header_flags_and_sheets(tmp_path):
    path = write(tmp_path / "a.tsv", "".join(f"{i}\t{text}\t{'财经' if i % 2 else '体育'}\n"
                                             for i, text in enumerate(HEADLINES)))
    with pytest.raises(DataError, match=r"3 columns and no header row; say which hold the "
                                        r"text and the label: --text-column N --label-column M"):
        read_labelled(path)
    data = read_labelled(path, text_column=2, label_column="3")
    assert data.texts == HEADLINES and data.labels[:2] == ["体育", "财经"]
    with pytest.raises(DataError, match="without a header row, columns are chosen by position"):
        read_labelled(path, text_column="title", header=False)
    # a header row with unusual names: named by --header, columns by position or name
    named = write(tmp_path / "b.csv", "编号,新闻,栏目\n" + "".join(
        f"{i},{text},{'财经' if i % 2 else '体育'}\n" for i, text in enumerate(HEADLINES)))
    assert read_labelled(named, header=True, text_column="新闻", label_column=3).texts == HEADLINES
    workbook = openpyxl.Workbook()
    workbook.active.append(["说明"])
    second = workbook.create_sheet("数据")
    second.append(["text", "label"])
    for text in HEADLINES:
        second.append([text, "财经"])
    workbook.save(tmp_path / "c.xlsx")
    assert read_labelled(tmp_path / "c.xlsx", sheet="数据").texts == HEADLINES
    assert read_labelled(tmp_path / "c.xlsx", sheet="2").texts == HEADLINES
    with pytest.raises(DataError, match=r"c\.xlsx: no sheet '3'; its sheets are 'Sheet', '数据'"):
        read_labelled(tmp_path / "c.xlsx", sheet="3")
    workbook.create_sheet("空")
    workbook.save(tmp_path / "c.xlsx")
    with pytest.raises(DataError, match=r"c\.xlsx \(sheet '空'\): no examples \(the sheet is "
                                        r"empty\)"):
        read_labelled(tmp_path / "c.xlsx", sheet="空")
    with pytest.raises(DataError, match=r"--sheet: .*a\.tsv is not an Excel workbook \(\.xlsx\); "
                                        r"leave out --sheet"):
        list(iter_input_chunks(str(path), sheet="数据", text_column=2))
    # training and dev files share the options: one that fits the other file is not refused
    assert read_labelled(path, sheet="数据", text_column=2, label_column=3).texts == HEADLINES


def test_ambiguous_files_are_refused_with_the_flag_that_settles_them(tmp_path):
    labels = ["财经", "体育", "教育"] * 4
    unusual_header = write(tmp_path / "a.tsv", "新闻内容\t所属频道\n" + "".join(
        f"{text}\t{label}\n" for text, label in zip(HEADLINES, labels)))
    with pytest.raises(DataError, match=r"a\.tsv:1: the first row .* looks like a header row: "
                                        r"pass --header .* or --no-header"):
        read_labelled(unusual_header)
    assert read_labelled(unusual_header, header=True).texts == HEADLINES
    two_texts = write(tmp_path / "b.tsv", "".join(f"{text}\t{text[::-1]}\n" for text in HEADLINES))
    with pytest.raises(DataError, match=r"cannot tell which of its 2 columns holds the labels "
                                        r"and which the text; pass --label-column 1 or "
                                        r"--label-column 2"):
        read_labelled(two_texts)
    both = write(tmp_path / "c.csv", "title,content,label\n" + "".join(
        f"{text},{text},财经\n" for text in HEADLINES))
    with pytest.raises(DataError, match="columns 'title' and 'content' could both hold the text; "
                                        "pass --text-column NAME"):
        read_labelled(both)
    assert read_labelled(both, text_column="content").texts == HEADLINES


def test_integer_labels_without_class_names_warn(tmp_path):
    path = write(tmp_path / "a.tsv", "".join(f"{text}\t{i % 3}\n" for i, text in enumerate(HEADLINES)))
    with pytest.warns(NumericLabelsWarning, match=r"every label is a whole number \(0, 1, 2\) "
                                                  r"and no class names were given.*--classes FILE"):
        read_labelled(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_labelled(path, ["财经", "体育", "教育"])


def test_fasttext_jsonl_and_excel_specific_errors(tmp_path):
    several = write(tmp_path / "a.txt", "__label__财经 __label__股票 沪指上涨\n__label__体育 球赛\n")
    with pytest.raises(DataError, match=r"a\.txt:1: 2 labels \(财经, 股票\); newsclf gives each "
                                        r"text one label"):
        read_labelled(several)
    (frame, column), = iter_input_chunks(str(several))  # to label, several are kept
    assert frame["label"].tolist() == ["财经 股票", "体育"] and column == "text"
    broken = write(tmp_path / "b.jsonl", '{"text": "沪指上涨", "label": "股票"}\n{"text": 1,\n')
    with pytest.raises(DataError, match=r"b\.jsonl:2: not valid JSON"):
        read_labelled(broken)
    extra = write(tmp_path / "c.jsonl", '{"text": "沪指上涨", "label": "股票"}\n'
                                        '{"text": "球赛", "label": "体育", "source": "网"}\n')
    with pytest.raises(DataError, match=r"c\.jsonl:2: key\(s\) 'source' not in the first "
                                        "line's keys"):
        read_labelled(extra)
    keyless = write(tmp_path / "e.jsonl", "{}\n{}\n")  # it was "an empty file"
    for read in (read_labelled, iter_input_chunks):
        with pytest.raises(DataError, match=r"e\.jsonl:1: an object with no keys; the first "
                                            r"line's keys are the file's"):
            list(read(str(keyless)))
    (tmp_path / "d.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(DataError, match=r"d\.xls: an old binary Excel file; save it as \.xlsx"):
        read_labelled(tmp_path / "d.xls")
    (tmp_path / "e.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(DataError, match=r"e\.xlsx: cannot read as an \.xlsx workbook"):
        read_labelled(tmp_path / "e.xlsx")


def test_json_lines_values_are_text_in_labelled_data_and_kept_in_texts_to_label(tmp_path):
    lines = ['{"id": 1, "text": "沪指上涨", "label": 1}\n',
             '{"id": 2.5, "text": 2024, "label": "体育"}\n', '{"text": ["球赛"], "label": null}\n']
    data = read_labelled(write(tmp_path / "v.jsonl", "".join(lines[:2])), ["财经", "股票", "体育"])
    assert data.texts == ["沪指上涨", "2024"] and data.labels == ["股票", "体育"]
    with pytest.raises(DataError, match=r"w\.jsonl:3: empty label"):
        read_labelled(write(tmp_path / "w.jsonl", "".join(lines)))
    with open_texts(str(tmp_path / "w.jsonl")) as table:
        (frame, column), = text_chunks(table)
    assert [[(type(value).__name__, value) for value in row] for row in frame.values.tolist()] \
        == [[("int", 1), ("str", "沪指上涨"), ("int", 1)],
            [("float", 2.5), ("int", 2024), ("str", "体育")],
            [("NoneType", None), ("list", ["球赛"]), ("NoneType", None)]]  # id left out
    assert column_texts(frame[column]) == ["沪指上涨", "2024", '["球赛"]']
    # the public reader gives the text column as texts, ready for Predictor.predict
    (frame, column), = iter_input_chunks(str(tmp_path / "w.jsonl"))
    assert frame[column].tolist() == ["沪指上涨", "2024", '["球赛"]']
    assert frame["id"].tolist()[:2] == [1, 2.5]


def test_xlsx_and_jsonl_output_keep_every_column(tmp_path, predictor):
    source = write_layout(tmp_path, "xlsx", "dev")
    predict_file(predictor, str(source), str(tmp_path / "out.xlsx"), progress=False, top_k=2)
    sheet = openpyxl.load_workbook(tmp_path / "out.xlsx").active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("编号", "标题", "类别", "pred_label", "pred_score", "top1_label",
                       "top1_score", "top2_label", "top2_score", "error")
    assert [row[1] for row in rows[1:]] == REFERENCE["dev"].texts
    assert all(isinstance(row[4], float) and 0 < row[4] <= 1 for row in rows[1:])
    predict_file(predictor, str(source), str(tmp_path / "out.jsonl"), progress=False)
    records = [json.loads(line) for line in
               (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [record["标题"] for record in records] == REFERENCE["dev"].texts
    assert list(records[0]) == ["编号", "标题", "类别", "pred_label", "pred_score", "error"]


def test_cli_says_how_it_read_and_warns_in_one_line(tmp_path, sample_model):
    source = write_layout(tmp_path, "tsv-label-header-gbk", "dev")
    result = run_cli("predict", "--model", sample_model, "--input", source, "--output",
                     tmp_path / "out.xlsx", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"{source}: read as TSV with a header row, text column '标题', label column '类别', " \
           "GBK/GB18030" in result.stderr
    ids = write(tmp_path / "ids.tsv", "".join(f"{text}\t{i % 3}\n" for i, text in enumerate(HEADLINES)))
    result = run_cli("evaluate", "--model", sample_model, "--data", ids)
    assert "newsclf evaluate: warning: " in result.stderr and "--classes FILE" in result.stderr
    assert "warnings.warn" not in result.stderr and "NumericLabelsWarning" not in result.stderr
    result = run_cli("predict", "--model", sample_model, "--input", source, "--output",
                     tmp_path / "x.csv", "--format", "parquet")
    assert result.returncode == 2 and "unknown data format 'parquet'; use one of csv, tsv" in \
        result.stderr


@pytest.mark.parametrize("separator, said", [("\t", "tabs"), (";", "semicolons")])
def test_a_csv_separated_by_tabs_or_semicolons_is_read_by_its_separator(
        tmp_path, sample_model, separator, said):
    pairs = list(zip(REFERENCE["dev"].texts, REFERENCE["dev"].labels))[:40]
    source = write(tmp_path / "news.csv", "".join(
        f"{text}{separator}{label}\n" for text, label in [("标题", "类别"), *pairs]))
    result = run_cli("predict", "--model", sample_model, "--input", source, "--output",
                     tmp_path / "out.csv", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"read as CSV separated by {said} with a header row, text column '标题'" in \
        result.stderr
    written = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert written.columns[:2].tolist() == ["标题", "类别"]
    assert written["标题"].tolist() == [text for text, _ in pairs]
    data = read_labelled(source)
    assert (data.texts, data.labels) == tuple(map(list, zip(*pairs)))


def test_column_names_in_traditional_characters_are_known(tmp_path, sample_model):
    rows = [("滬指放量上漲 券商板塊集體走強", "股票"), ("教育部發佈高考報名新規", "教育"),
            ("主隊加時賽絕殺晉級決賽", "體育"), ("央行宣佈下調存款準備金率", "財經"),
            ("新款手機發佈搭載自研芯片", "科技")]
    source = write(tmp_path / "news.csv", "標題,類別\n" + "".join(f"{text},{label}\n" for text, label in rows))
    result = run_cli("predict", "--model", sample_model, "--input", source, "--output",
                     tmp_path / "out.csv", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "with a header row, text column '標題', label column '類別'" in result.stderr
    written = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert written["標題"].tolist() == [text for text, _ in rows]
    assert read_labelled(source).labels == [label for _, label in rows]


# --- files users really have -----------------------------------------------------------------

def test_a_pipe_is_read_whole(tmp_path):
    import os
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    lines = [f"{HEADLINES[i % len(HEADLINES)]}{i}\t{'财经' if i % 2 else '体育'}\n"
             for i in range(3000)]
    writer = threading.Thread(target=lambda: fifo.write_text("".join(lines), encoding="utf-8"))
    writer.start()
    data = read_labelled(fifo)
    writer.join()
    assert len(data) == 3000 and data.texts[-1] == f"{HEADLINES[2999 % len(HEADLINES)]}2999"


def test_digit_columns_are_positions_in_a_headerless_file(tmp_path):
    path = write(tmp_path / "ids.tsv", "".join(f"{text}\t{(i + 2) % 3}\n"
                                               for i, text in enumerate(HEADLINES)))
    data = read_labelled(path, ["财经", "体育", "教育"], text_column="1", label_column="2")
    assert data.texts == HEADLINES and not data.layout.header
    one = write(tmp_path / "one.tsv", f"{HEADLINES[0]}\t1\n{HEADLINES[1]}\t0\n")
    assert read_labelled(one, ["财经", "体育"], text_column="1", label_column="2").labels == \
        ["体育", "财经"]
    (frame, column), = iter_input_chunks(str(one), text_column="1")
    assert column == "text" and frame["text"].tolist() == HEADLINES[:2]


def test_text_first_tsv_with_tabs_in_some_texts_and_fasttext_with_tabs(tmp_path):
    texts = [text + ("\t(图)" if i % 3 == 0 else "") for i, text in enumerate(HEADLINES)]
    labels = ["财经", "体育", "教育"] * 4
    path = write(tmp_path / "a.tsv", "".join(f"{t}\t{label}\n" for t, label in zip(texts, labels)))
    data = read_labelled(path)
    assert data.texts == texts and data.labels == labels
    fasttext = write(tmp_path / "b.txt", "__label__财经\t央行宣布降息\n__label__体育  国足获胜\n")
    data = read_labelled(fasttext)
    assert data.texts == ["央行宣布降息", "国足获胜"] and data.labels == ["财经", "体育"]


def test_joined_files_repeating_the_header_are_refused(tmp_path):
    part = "\ufeff标题,类别\r\n" + "".join(f"{text},财经\r\n" for text in HEADLINES[:3])
    path = write(tmp_path / "joined.csv", part + part)
    with pytest.raises(DataError, match=r"joined\.csv:5: this row repeats the header row"):
        read_labelled(path)


def test_forced_text_lines_on_a_tsv_and_a_headerless_text_column_say_what_they_read(
        tmp_path, predictor):
    path = write(tmp_path / "a.tsv", f"{HEADLINES[0]}\t财经\n{HEADLINES[1]}\t体育\n")
    with pytest.raises(DataError, match=r"a\.tsv: read as one text per line, so it has no labels"):
        read_labelled(path, fmt="lines")
    summary = predict_file(predictor, str(path), str(tmp_path / "out.csv"), text_column="1",
                           progress=False)
    assert summary["layout"].describe().endswith("TSV without a header row, text in column 1, "
                                                 "UTF-8")
    unclear = write(tmp_path / "b.tsv", "".join(f"{t}\t{t[::-1]}\n" for t in HEADLINES))
    with pytest.raises(DataError, match="pass --text-column 1 or --text-column 2"):
        predict_file(predictor, str(unclear), str(tmp_path / "out2.csv"), progress=False)


def test_excel_output_keeps_text_as_text_and_refuses_what_a_cell_cannot_hold(tmp_path, predictor):
    source = write(tmp_path / "in.csv", "text\n=1+1 开盘大涨\n=== 重磅 === 央行降准\n")
    predict_file(predictor, str(source), str(tmp_path / "out.xlsx"), progress=False)
    sheet = openpyxl.load_workbook(tmp_path / "out.xlsx").active
    assert [row[0].value for row in sheet.iter_rows(min_row=2)] == ["=1+1 开盘大涨",
                                                                    "=== 重磅 === 央行降准"]
    assert {row[0].data_type for row in sheet.iter_rows(min_row=2)} == {"s"}
    long = write(tmp_path / "long.csv", "text\n短文本\n" + "长文本" * 15000 + "\n")
    with pytest.raises(DataError, match=r"long\.csv:3: a field of 45,000 characters; an \.xlsx "
                                        r"cell holds at most 32,767"):
        predict_file(predictor, str(long), str(tmp_path / "long.xlsx"), progress=False)
    assert not (tmp_path / "long.xlsx").exists()
    unnamed = write(tmp_path / "unnamed.csv", "text,,\n央行降准,1,2\n")
    with pytest.raises(DataError, match="appear more than once, which JSON lines cannot hold"):
        predict_file(predictor, str(unnamed), str(tmp_path / "out.jsonl"), progress=False)


def test_excel_sheets_with_a_wrong_dimension_or_a_chart_first(tmp_path):
    import zipfile

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["标题", "类别"])
    for text in HEADLINES:
        sheet.append([text, "财经"])
    workbook.save(tmp_path / "right.xlsx")
    with zipfile.ZipFile(tmp_path / "right.xlsx") as source, \
            zipfile.ZipFile(tmp_path / "wrong.xlsx", "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = re.sub(rb'<dimension ref="A1:B13"\s*/>', b'<dimension ref="A1:A5"/>',
                                 content)
            target.writestr(item, content)
    data = read_labelled(tmp_path / "wrong.xlsx")
    assert data.texts == HEADLINES and data.labels == ["财经"] * len(HEADLINES)
    from openpyxl.chart import BarChart, Reference

    charted = openpyxl.Workbook()
    charted.active.title = "数据"
    charted["数据"].append(["text", "label"])
    charted["数据"].append(["央行降准", "财经"])
    chart = BarChart()
    chart.add_data(Reference(charted["数据"], min_col=2, min_row=1, max_row=2))
    charted.create_chartsheet("图表", 0).add_chart(chart)
    charted.save(tmp_path / "chart.xlsx")
    with pytest.raises(DataError, match=r"sheet '图表' is a chart, not a table; its sheets are "
                                        r"'图表', '数据' \(--sheet picks one\)"):
        read_labelled(tmp_path / "chart.xlsx")
    assert read_labelled(tmp_path / "chart.xlsx", sheet="数据").texts == ["央行降准"]
    notes = openpyxl.Workbook()
    notes.active.append(["说明：2023年数据"])
    notes.create_sheet("数据").append(["text", "label"])
    notes.save(tmp_path / "notes.xlsx")
    with pytest.raises(DataError, match=r"\(read sheet 'Sheet'; the workbook also has '数据': "
                                        r"--sheet picks one\)"):
        read_labelled(tmp_path / "notes.xlsx")
    # a notes sheet whose problem shows only past its first rows, in a file to label
    notes = openpyxl.Workbook()
    notes.active.title = "说明"
    notes.active.append(["这一页是说明", "不是新闻"])
    notes.active.append(["第二行", "还是说明", "多一列"])
    notes.create_sheet("news").append(["标题"])
    notes.save(tmp_path / "notes-to-label.xlsx")
    with pytest.raises(DataError, match=r"malformed Excel sheet at line 2: .*\(read sheet '说明'; "
                                        r"the workbook also has 'news': --sheet picks one\)"):
        with open_texts(str(tmp_path / "notes-to-label.xlsx")) as table:
            list(text_chunks(table))


def test_invisible_characters_do_not_make_new_classes_and_excel_dates_read_as_dates(tmp_path):
    import datetime

    path = write(tmp_path / "a.tsv", f"{HEADLINES[0]}\t股票\u200b\n{HEADLINES[1]}\t\ufeff股票 \n")
    assert read_labelled(path).labels == ["股票", "股票"]
    workbook = openpyxl.Workbook()
    workbook.active.append(["text", "label", "date"])
    workbook.active.append([HEADLINES[0], "财经", datetime.datetime(2024, 1, 1)])
    workbook.save(tmp_path / "d.xlsx")
    (frame, _), = iter_input_chunks(str(tmp_path / "d.xlsx"))
    assert frame["date"].tolist() == ["2024-01-01"]


def test_skip_rows_leaves_out_a_title_above_the_table_and_keeps_the_line_numbers(
        tmp_path, sample_model):
    workbook = openpyxl.Workbook()
    workbook.active.append(["2026年12月新闻汇总"])
    workbook.active.append(["标题", "编号"])
    for number, text in enumerate(HEADLINES[:3], 1):
        workbook.active.append([text, number])
    workbook.save(tmp_path / "titled.xlsx")
    out = tmp_path / "out.csv"
    result = run_cli("predict", "--model", sample_model, "--input", tmp_path / "titled.xlsx",
                     "--output", out, "--skip-rows", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "below its first 1 row" in result.stderr
    labelled = pd.read_csv(out)
    assert labelled["标题"].tolist() == HEADLINES[:3]
    assert labelled["编号"].tolist() == [1, 2, 3]

    # a text file: its lines keep their numbers in what is said about them
    titled = write(tmp_path / "titled.csv", "新闻汇总\n\n标题,类别\n" + f"{HEADLINES[0]},财经\n"
                   + f"{HEADLINES[1]},体育,多余\n")
    with pytest.raises(DataError, match=r"titled.csv: malformed CSV at line 5: 3 fields"):
        read_labelled(titled, skip_rows=2)
    assert [len(chunk) for chunk, _ in iter_input_chunks(str(titled), skip_rows=3,
                                                         header=False, fmt="lines")] == [2]
    for bad in ("-1", "x"):
        result = run_cli("predict", "--model", sample_model, "--input", titled, "--output",
                         tmp_path / "bad.csv", "--skip-rows", bad)
        assert result.returncode == 2 and "--skip-rows" in result.stderr
    with pytest.raises(DataError, match="--skip-rows must be a whole number"):
        read_labelled(titled, skip_rows=-1)


def test_a_first_sheet_that_is_a_note_is_not_labelled_as_news(tmp_path, sample_model):
    workbook = openpyxl.Workbook()
    workbook.active.title = "说明"
    workbook.active.append(["数据见下一页"])
    news = workbook.create_sheet("新闻")
    news.append(["标题"])
    for text in HEADLINES[:3]:
        news.append([text])
    workbook.save(tmp_path / "noted.xlsx")
    out = tmp_path / "out.csv"
    result = run_cli("predict", "--model", sample_model, "--input", tmp_path / "noted.xlsx",
                     "--output", out)
    assert_user_error(result, "sheet '说明' holds only 1 filled cell", "'新闻': --sheet picks one")
    assert not out.exists()
    result = run_cli("predict", "--model", sample_model, "--input", tmp_path / "noted.xlsx",
                     "--output", out, "--sheet", "新闻", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(out)["标题"].tolist() == HEADLINES[:3]
    # a sheet asked for is read as it is, note or not
    (frame, column), = iter_input_chunks(str(tmp_path / "noted.xlsx"), sheet="说明",
                                         header=False)
    assert frame[column].tolist() == ["数据见下一页"]
    # a first sheet of a header and one headline is a table
    workbook.active["A1"] = "标题"
    workbook.active["A2"] = HEADLINES[3]
    workbook.save(tmp_path / "one.xlsx")
    (frame, column), = iter_input_chunks(str(tmp_path / "one.xlsx"))
    assert frame[column].tolist() == [HEADLINES[3]]


def test_formula_cells_without_a_computed_value_are_refused_not_read_as_empty(
        tmp_path, sample_model):
    workbook = openpyxl.Workbook()  # openpyxl stores formulas without computing them
    workbook.active.append(["前缀", "标题", "编号"])
    workbook.active.append(["央行", "央行宣布下调存款准备金率", 1])
    workbook.active.append(["国足", '=CONCATENATE(A3,"主场两球战胜对手")', 2])
    workbook.save(tmp_path / "formulas.xlsx")
    out = tmp_path / "out.csv"
    result = run_cli("predict", "--model", sample_model, "--input", tmp_path / "formulas.xlsx",
                     "--output", out)
    assert_user_error(result, "cell B3 of sheet 'Sheet' holds a formula (=CONCATENATE(A3",
                      "save it")
    assert not out.exists()
    # an empty cell that is only empty is an empty text, as before
    workbook.active["B3"] = None
    workbook.save(tmp_path / "empty.xlsx")
    (frame, column), = iter_input_chunks(str(tmp_path / "empty.xlsx"))
    assert frame[column].tolist() == ["央行宣布下调存款准备金率", ""]
    # in training data too, for a label as for a text
    workbook = openpyxl.Workbook()
    workbook.active.append(["标题", "类别"])
    workbook.active.append([HEADLINES[0], "财经"])
    workbook.active.append([HEADLINES[1], '=IF(1,"体育","")'])
    workbook.save(tmp_path / "labels.xlsx")
    with pytest.raises(DataError, match=r"cell B3 of sheet 'Sheet' holds a formula"):
        read_labelled(tmp_path / "labels.xlsx")
    # an array formula is named by its text
    from openpyxl.worksheet.formula import ArrayFormula

    workbook.active["B3"] = ArrayFormula("B3", '=IF(1,"体育","")')
    workbook.save(tmp_path / "array.xlsx")
    with pytest.raises(DataError, match=r"holds a formula \(=IF\(1,\"体育\",\"\"\)\)"):
        read_labelled(tmp_path / "array.xlsx")
    # a row of uncomputed formulas only is not skipped as an empty row, in the middle or last
    for rows in ([HEADLINES[0]], ["=A2"], [HEADLINES[1]]), ([HEADLINES[0]], [None], ["=A2"]):
        workbook = openpyxl.Workbook()
        for row in (["标题"], *rows):
            workbook.active.append(row)
        workbook.save(tmp_path / "rows.xlsx")
        with pytest.raises(DataError, match=r"cell A(3|4) of sheet 'Sheet' holds a formula"):
            list(iter_input_chunks(str(tmp_path / "rows.xlsx")))


def test_a_sheet_without_a_note_of_its_size_is_labelled(tmp_path, sample_model):
    import zipfile

    workbook = openpyxl.Workbook()
    workbook.active.append(["标题"])
    for text in HEADLINES[:3]:
        workbook.active.append([text])
    workbook.save(tmp_path / "noted.xlsx")
    with zipfile.ZipFile(tmp_path / "noted.xlsx") as source, \
            zipfile.ZipFile(tmp_path / "bare.xlsx", "w") as bare:  # as some exporters write it
        for item in source.infolist():
            data = source.read(item)
            if item.filename.startswith("xl/worksheets/"):
                data = re.sub(rb"<dimension [^>]*/>", b"", data)
            bare.writestr(item, data)
    out = tmp_path / "out.csv"
    result = run_cli("predict", "--model", sample_model, "--input", tmp_path / "bare.xlsx",
                     "--output", out)
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(out)["标题"].tolist() == HEADLINES[:3]


def test_a_formula_computed_to_an_empty_text_is_an_empty_text(tmp_path):
    import zipfile

    workbook = openpyxl.Workbook()
    workbook.active.append(["标题", "类别"])
    workbook.active.append([HEADLINES[0], "财经"])
    workbook.active.append(['=IF(1,"","x")', "体育"])
    workbook.active.append(["=1+1", "体育"])
    workbook.save(tmp_path / "written.xlsx")
    # as Excel and LibreOffice store the results: a text result typed "str", even when empty
    with zipfile.ZipFile(tmp_path / "written.xlsx") as source, \
            zipfile.ZipFile(tmp_path / "computed.xlsx", "w") as computed:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.startswith("xl/worksheets/"):
                data = data.replace(b'<c r="A3"><f>', b'<c r="A3" t="str"><f>')
                data = re.sub(rb'(<c r="A4"><f>1\+1</f>)<v\s*/>', rb"\1<v>2</v>", data)
            computed.writestr(item, data)
    (frame, column), = iter_input_chunks(str(tmp_path / "computed.xlsx"))
    assert frame[column].tolist() == [HEADLINES[0], "", "2"]
    # the same cells without their results are still refused
    with pytest.raises(DataError, match=r"cell A3 of sheet 'Sheet' holds a formula \(=IF"):
        list(iter_input_chunks(str(tmp_path / "written.xlsx")))
