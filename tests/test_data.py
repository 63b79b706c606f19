import numpy as np
import pytest

from newsclf.data import (length_sorted_batches, pad_batch, padding_mask, read_class_names,
                          read_labelled)
from newsclf.errors import DataError

from conftest import SAMPLE


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_tsv_with_class_names(tmp_path):
    data = read_labelled(write(tmp_path / "a.tsv", "央行降准\t财经\n球队夺冠\t体育 \n"))
    assert data.texts == ["央行降准", "球队夺冠"]
    assert data.labels == ["财经", "体育"]  # trailing space in a label is not a new class


def test_tsv_with_ids_and_class_file(tmp_path):
    classes = read_class_names(write(tmp_path / "class.txt", "财经\n体育\n"))
    data = read_labelled(write(tmp_path / "a.txt", "央行降准\t0\n球队夺冠\t1\n"), classes)
    assert data.labels == ["财经", "体育"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_encodings_are_detected(tmp_path, encoding):
    path = write(tmp_path / "a.tsv", "股市大涨，券商领涨\t股票\r\n房价回稳\t房产\r\n", encoding)
    data = read_labelled(path)
    assert data.texts == ["股市大涨，券商领涨", "房价回稳"]
    assert data.labels == ["股票", "房产"]


def test_gbk_files_whose_first_bytes_also_form_utf8_characters_are_read_as_gbk(tmp_path):
    # 台 in GBK is 0xCC 0xA8, a valid UTF-8 character: such a file was refused as mixing
    # encodings; so were 30 of the sample's 200 five-line pieces saved as GBK
    assert "台".encode("gbk").decode("utf-8")
    lines = (SAMPLE / "train.tsv").read_text(encoding="utf-8").splitlines()
    for start in range(0, len(lines), 5):
        piece = "\n".join(lines[start:start + 5]) + "\n"
        data = read_labelled(write(tmp_path / "a.tsv", piece, "gbk"))
        assert data.texts == [line.split("\t")[0] for line in lines[start:start + 5]]


def test_big5_is_detected_though_its_bytes_also_decode_as_gbk(tmp_path):
    lines = ["台北股市今日收盤上漲，電子股領軍\t股票", "颱風逼近，氣象局發布海上警報\t時政", "職棒總冠軍賽主場球隊奪冠\t體育"]
    raw = "\n".join(lines).encode("big5") + b"\n"
    assert raw.decode("gb18030") != raw.decode("big5")  # read as GBK it is other characters
    data = read_labelled(write(tmp_path / "a.tsv", raw.decode("big5"), "big5"))
    assert data.texts == [line.split("\t")[0] for line in lines]
    assert data.labels == ["股票", "時政", "體育"]
    # a short line of rare characters reads as everyday ones in the other encoding (a name:
    # 瑄甯 in Big5, 李祎 in GBK): it neither decides the encoding nor makes the file mixed
    byline = "台北股市今日收盤上漲，電子股領軍\t股票\n記者林瑄甯\t股票\n"
    assert read_labelled(write(tmp_path / "c.tsv", byline, "big5hkscs")).texts == [
        "台北股市今日收盤上漲，電子股領軍", "記者林瑄甯"]
    names = "李祎\t人物\n沪指放量上涨 券商板块集体走强\t股票\n刘玥\t人物\n"
    assert read_labelled(write(tmp_path / "d.tsv", names, "gbk")).texts == [
        "李祎", "沪指放量上涨 券商板块集体走强", "刘玥"]
    # simplified and traditional text saved as GBK stay GBK, though most of it decodes as Big5
    for text in ("央行宣布降息\t财经\n", "台北股市今日收盤上漲\t股票\n"):
        assert text.encode("gbk").decode("big5", errors="ignore")
        assert read_labelled(write(tmp_path / "b.tsv", text, "gbk")).texts == [text.split("\t")[0]]


def test_header_line_is_skipped_and_blank_lines_ignored(tmp_path):
    data = read_labelled(write(tmp_path / "a.tsv", "text\tlabel\n\n央行宣布降息\t财经\n\n"))
    assert data.texts == ["央行宣布降息"] and data.labels == ["财经"]


def test_csv_columns_by_name_with_quotes(tmp_path):
    path = write(tmp_path / "a.csv", 'id,title,topic\n1,"逗号,和""引号""",财经\n2,"换\n行",体育\n')
    data = read_labelled(path, text_column="title", label_column="topic")
    assert data.texts == ['逗号,和"引号"', "换\n行"]
    assert data.labels == ["财经", "体育"]


@pytest.mark.parametrize("content, message", [
    ("央行宣布降息\t财经\n没有制表符\n", r"a\.tsv:2: no tab; each line must be 'text<TAB>label'"),
    ("央行宣布降息\t财经\n\t体育\n", r"a\.tsv:2: empty text"),
    ("央行宣布降息\t财经\n球队夺冠\t\n", r"a\.tsv:2: empty label"),
    ("", r"a\.tsv: no examples"),
])
def test_malformed_tsv_names_file_and_line(tmp_path, content, message):
    with pytest.raises(DataError, match=message):
        read_labelled(write(tmp_path / "a.tsv", content))


def test_label_id_out_of_range_and_unknown_name(tmp_path):
    path = write(tmp_path / "a.tsv", "央行宣布降息\t0\n球队夺冠\t5\n")
    with pytest.raises(DataError, match=r"a\.tsv:2: label id 5 is out of range"):
        read_labelled(path, ["财经", "体育"])
    path = write(tmp_path / "b.tsv", "央行宣布降息\t财经\n航母编队演习\t军事\n")
    with pytest.raises(DataError, match=r"b\.tsv:2: label '军事' is not a known class"):
        read_labelled(path, ["财经", "体育"])


def test_missing_csv_column_lists_the_columns(tmp_path):
    path = write(tmp_path / "a.csv", "id,headline,topic\n1,央行宣布降息,财经\n")
    with pytest.raises(DataError, match="no column 'text' for the text; the columns are 'id', "
                                        "'headline', 'topic'"):
        read_labelled(path, text_column="text")


def test_missing_file_nul_bytes_and_undecodable(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_labelled(tmp_path / "absent.tsv")
    nul = tmp_path / "nul.tsv"
    nul.write_bytes("央行宣布降息\t财经\n".encode() + b"a\x00b\t1\n")
    with pytest.raises(DataError, match=r"nul\.tsv:2: contains NUL bytes"):
        read_labelled(nul)
    bad = tmp_path / "c.tsv"
    bad.write_bytes("央行宣布降息\t财经\n".encode() + b"\xff\xfe\xff\t1\n")
    with pytest.raises(DataError, match=r"c\.tsv:2: cannot decode"):
        read_labelled(bad)


def test_explicit_encoding_override(tmp_path):
    path = write(tmp_path / "a.tsv", "房价回稳\t房产\n", "gbk")
    assert read_labelled(path, encoding="gb18030").texts == ["房价回稳"]
    with pytest.raises(DataError, match=r"a\.tsv:1: not valid utf-8"):
        read_labelled(path, encoding="utf-8")
    with pytest.raises(DataError, match="unknown encoding"):
        read_labelled(path, encoding="klingon")


def test_class_file_errors(tmp_path):
    with pytest.raises(DataError, match=r"c\.txt:3: class '财经' is listed twice \(lines 1 and "
                                        r"3\); list each class once"):
        read_class_names(write(tmp_path / "c.txt", "财经\n体育\n财经\n"))
    with pytest.raises(DataError, match="empty"):
        read_class_names(write(tmp_path / "d.txt", "\n\n"))


def test_class_names_are_cleaned_as_labels_are(tmp_path):
    # a zero-width space, a direction mark, a soft hyphen, a BOM, an ideographic or no-break
    # space: the names look like the labels, so they are the same classes
    classes = read_class_names(write(tmp_path / "class.txt", "股票\u200b\n体育\u200e\n"
                                     "\ufeff财\u00ad经\u3000\n房产\u00a0\n"))
    assert classes == ["股票", "体育", "财经", "房产"]
    data = read_labelled(write(tmp_path / "a.tsv", "沪指上涨\t股票\n球队夺冠\t体育\u2066\n"
                                                   "央行降准\t2\n房价回稳\t房产\n"), classes)
    assert data.labels == ["股票", "体育", "财经", "房产"]
    with pytest.raises(DataError, match=r"dup\.txt:3: class '股票' is listed twice \(lines 1 and "
                                        r"3, once spaces and invisible characters are removed\); "
                                        "list each class once"):
        read_class_names(write(tmp_path / "dup.txt", "股票\n体育\n股票\u200b \n"))


def test_a_label_that_differs_from_a_class_in_width_or_case_is_named(tmp_path):
    classes = read_class_names(write(tmp_path / "class.txt", "ＮＢＡ\n体育\n"))
    with pytest.raises(DataError, match=r"a\.tsv:2: label 'nba' is not a known class \('ＮＢＡ' "
                                        r"differs in case or width\); known: ＮＢＡ, 体育"):
        read_labelled(write(tmp_path / "a.tsv", "球队夺冠\t体育\n湖人夺冠\tnba\n"), classes)


def test_pad_batch_pads_to_longest_and_mask_marks_tokens():
    a = np.array([[5, 6], [7, 8]], dtype=np.int64)
    b = np.array([[9, 9]], dtype=np.int64)
    batch = pad_batch([a, b])
    assert batch.shape == (2, 2, 2)
    assert (batch[1, 1] == 0).all()
    assert padding_mask(batch).tolist() == [[True, True], [True, False]]


def test_length_sorted_batches_cover_every_index_once():
    batches = length_sorted_batches([5, 1, 3, 2, 4], 2)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == [0, 1, 2, 3, 4]
    assert flat.tolist() == [1, 3, 2, 4, 0]
