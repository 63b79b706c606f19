"""Labelling on Dask (newsclf.dask, newsclf predict --scheduler): on a two-process LocalCluster,
the same rows, columns, labels and scores as newsclf predict, with one model load per worker."""

import socket
import sys

import pandas as pd
import pytest

from conftest import SAMPLE, assert_user_error, run_cli

dd = pytest.importorskip("dask.dataframe", reason='needs the dask extra: pip install ".[dask]"')
distributed = pytest.importorskip("distributed",
                                  reason='needs the dask extra: pip install ".[dask]"')

import newsclf.dask as newsclf_dask  # noqa: E402
from newsclf.errors import DataError, NewsclfError  # noqa: E402
from newsclf.predict import predict_file  # noqa: E402

FILE_ROWS = (2500, 1800, 6200)  # the last is two parts of 5,000 rows or fewer
EMPTY_TEXTS = ("", "   ", "。。！", "——")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


def sample_texts():
    return [line.split("\t")[0] for line in
            (SAMPLE / "train.tsv").read_text(encoding="utf-8").splitlines() if line]


def news_frame(rows: int, seed: int) -> pd.DataFrame:
    texts = sample_texts()
    titles = [texts[(i * 7 + seed) % len(texts)] for i in range(rows)]
    for i in range(seed, rows, 97):
        titles[i] = EMPTY_TEXTS[i % len(EMPTY_TEXTS)]
    return pd.DataFrame({"id": [f"{seed}-{i}" for i in range(rows)], "title": titles,
                         "source": [f"来源{i % 5}" for i in range(rows)]})


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Three CSV files (the second in GBK), with empty texts and columns besides the text."""
    folder = tmp_path_factory.mktemp("inputs")
    paths = []
    for number, rows in enumerate(FILE_ROWS):
        path = folder / f"big-{number}.csv"
        encoding = "gbk" if number == 1 else "utf-8"
        path.write_bytes(news_frame(rows, number + 1).to_csv(index=False).encode(encoding))
        paths.append(path)
    return paths


def predicted_files(inputs, predictor, folder, chunk_size=5000):
    """What newsclf predict writes for each input file (scores can differ in the last decimal
    with texts batched otherwise, so chunks are cut as the parts are)."""
    outputs = []
    for path in inputs:
        out = folder / path.name
        predict_file(predictor, str(path), str(out), progress=False, chunk_size=chunk_size)
        outputs.append(out.read_text(encoding="utf-8"))
    return outputs


@pytest.fixture(scope="module")
def expected(inputs, predictor, tmp_path_factory):
    return predicted_files(inputs, predictor, tmp_path_factory.mktemp("expected"))


def data_lines(text: str) -> list[str]:
    return text.splitlines()[1:]


def parts_of(folder):
    return sorted(folder.iterdir())


def test_files_on_cluster_are_labelled_as_predict_file_does(client, sample_model, predictor,
                                                            inputs, tmp_path):
    expected = predicted_files(inputs, predictor, tmp_path, chunk_size=1000)
    out = tmp_path / "labelled"
    summary = newsclf_dask.predict_files(sample_model, str(inputs[0].parent / "big-*.csv"), out,
                                         client, part_rows=1000, progress=False)
    parts = parts_of(out)
    assert [p.name for p in parts] == [f"part-{i:05d}.csv" for i in range(len(parts))]
    per_file = [-(-rows // 1000) for rows in FILE_ROWS]
    assert summary["parts"] == len(parts) == sum(per_file)
    assert summary["rows"] == sum(FILE_ROWS)
    texts = [part.read_text(encoding="utf-8") for part in parts]
    assert all(len(data_lines(text)) <= 1000 for text in texts)
    start = 0
    for count, wanted in zip(per_file, expected):
        mine = texts[start:start + count]
        assert {text.splitlines()[0] for text in mine} == {wanted.splitlines()[0]}
        assert [line for text in mine for line in data_lines(text)] == data_lines(wanted)
        start += count
    assert summary["empty"] == sum(not line.endswith(",") for text in expected
                                   for line in data_lines(text))  # an error in the last field


def test_json_lines_files_are_labelled_as_predict_file_does(client, sample_model, predictor,
                                                           tmp_path):
    src = tmp_path / "in.jsonl"  # texts that are not strings are classified as their text
    src.write_text('{"id": 7, "title": 2024, "tags": ["a"]}\n'
                   '{"id": 8, "title": null, "tags": {"k": "é"}}\n'
                   '{"id": 9.5, "title": "沪指放量上涨", "tags": true}\n', encoding="utf-8")
    predict_file(predictor, str(src), str(tmp_path / "expected.csv"), progress=False)
    newsclf_dask.predict_files(sample_model, str(src), tmp_path / "labelled", client,
                               progress=False)
    assert (tmp_path / "labelled" / "part-00000.csv").read_text(encoding="utf-8") == \
        (tmp_path / "expected.csv").read_text(encoding="utf-8")


def test_dataframe_is_labelled_as_predict_file_does_with_one_load_per_worker(
        client, sample_model, inputs, tmp_path):
    reference = tmp_path / "reference.csv"
    predict_file(str(sample_model), str(inputs[2]), str(reference), top_k=3, probabilities=True,
                 progress=False, chunk_size=800)
    frame = pd.read_csv(inputs[2], dtype=str, keep_default_na=False)
    ddf = dd.from_pandas(frame, chunksize=800)
    assert ddf.npartitions == 8
    before = client.run(newsclf_dask.worker_stats)

    labelled = newsclf_dask.predict(ddf, sample_model, text_column="title", top_k=3,
                                    probabilities=True)
    assert newsclf_dask.worker_stats()["models_loaded"] == 0  # meta without the model
    assert list(labelled.columns[:3]) == ["id", "title", "source"]
    assert list(labelled.columns[3:9]) == ["pred_label", "pred_score", "top1_label",
                                           "top1_score", "top2_label", "top2_score"]
    assert labelled.columns[-1] == "error"
    result = labelled.compute()

    assert list(result.columns) == list(labelled.columns)
    written = result.to_csv(index=False, lineterminator="\n", float_format="%.6f")
    assert written == reference.read_text(encoding="utf-8")
    after = client.run(newsclf_dask.worker_stats)
    labelled_here = {worker: after[worker]["partitions_labelled"]
                     - before[worker]["partitions_labelled"] for worker in after}
    assert sum(labelled_here.values()) == ddf.npartitions
    assert max(labelled_here.values()) > 1
    assert all(stats["models_loaded"] == 1 for worker, stats in after.items()
               if stats["partitions_labelled"])


def test_an_empty_file_among_the_inputs_is_said_and_the_others_labelled(client, sample_model,
                                                                       inputs, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    said = []
    out = tmp_path / "labelled"
    summary = newsclf_dask.predict_files(sample_model, [str(inputs[0]), str(empty)], out,
                                         client, progress=False, log=said.append)
    assert summary["rows"] == FILE_ROWS[0] and summary["files"] == 2
    assert f"{empty}: empty file; no texts in it; going on with the other files" in said
    assert [p.name for p in parts_of(out)] == ["part-00000.csv"]


def test_a_model_written_again_is_loaded_again(client, sample_model, tmp_path):
    import os
    import shutil

    model = shutil.copytree(sample_model, tmp_path / "model")
    ddf = dd.from_pandas(pd.DataFrame({"text": ["国足主场两球战胜对手"] * 4}), npartitions=1)

    worker = sorted(client.scheduler_info()["workers"])[0]

    def label_on_one_worker():
        client.compute(newsclf_dask.predict(ddf, model), workers=[worker]).result()
        return client.run(newsclf_dask.worker_stats, workers=[worker])[worker]["models_loaded"]

    start = label_on_one_worker()
    assert label_on_one_worker() == start
    labels = model / "labels.json"
    os.utime(labels, ns=(labels.stat().st_atime_ns, labels.stat().st_mtime_ns + 10**9))
    assert label_on_one_worker() == start + 1


def test_missing_texts_in_a_dataframe_are_empty_texts(client, sample_model):
    frame = pd.DataFrame({"text": ["国足主场两球战胜对手", None, float("nan"), ""],
                          "n": [1, 2, 3, 4]})
    result = newsclf_dask.predict(dd.from_pandas(frame, npartitions=2), sample_model).compute()
    assert result["n"].tolist() == [1, 2, 3, 4]
    assert result["error"].tolist() == ["", "empty text", "empty text", "empty text"]
    assert result["pred_label"].tolist()[1:] == ["", "", ""]


def test_dataframe_problems_are_refused_before_anything_runs(sample_model, tmp_path):
    frame = dd.from_pandas(pd.DataFrame({"title": ["央行降准"], "pred_label": ["x"],
                                         "n": [1]}), npartitions=1)
    with pytest.raises(DataError, match="no column 'text'.*text_column="):
        newsclf_dask.predict(frame, sample_model)
    with pytest.raises(DataError, match="already has column.*pred_label"):
        newsclf_dask.predict(frame, sample_model, text_column="title")
    with pytest.raises(DataError, match="'n' holds int64 values, not texts"):
        newsclf_dask.predict(frame[["n"]], sample_model, text_column="n")
    with pytest.raises(NewsclfError, match="must be a Dask DataFrame"):
        newsclf_dask.predict(frame.compute(), sample_model, text_column="title")
    with pytest.raises(NewsclfError, match="top_k"):
        newsclf_dask.predict(frame[["title"]], sample_model, text_column="title", top_k=0)
    with pytest.raises(NewsclfError):
        newsclf_dask.predict(frame[["title"]], tmp_path / "no-model", text_column="title")


def test_cli_with_scheduler_writes_one_part_per_chunk(client, sample_model, inputs, expected,
                                                      tmp_path):
    out = tmp_path / "labelled"
    result = run_cli("predict", "--model", sample_model, "--input",
                     inputs[0].parent / "big-*.csv", "--output", out, "--scheduler",
                     client.scheduler.address, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"{sum(FILE_ROWS)} rows of 3 files labelled" in result.stderr
    parts = [part.read_text(encoding="utf-8") for part in parts_of(out)]
    assert len(parts) == 4  # 5,000 rows a part
    assert parts[:2] == expected[:2]
    assert parts[2].splitlines()[0] == expected[2].splitlines()[0]
    assert data_lines(parts[2]) + data_lines(parts[3]) == data_lines(expected[2])
    assert len(data_lines(parts[2])) == 5000


def test_cli_errors_are_one_line(client, sample_model, inputs, tmp_path, monkeypatch):
    address = client.scheduler.address
    base = ["predict", "--model", sample_model, "--no-progress"]
    assert_user_error(run_cli(*base, "--input", tmp_path / "nothing-*.csv", "--output",
                              tmp_path / "out", "--scheduler", address), "no file matches")
    assert not (tmp_path / "out").exists()
    full = tmp_path / "full"
    full.mkdir()
    (full / "part-00000.csv").write_text("old\n")
    assert_user_error(run_cli(*base, "--input", inputs[0], "--output", full, "--scheduler",
                              address, in_process=False), "not empty", "part-00000.csv")
    assert_user_error(run_cli(*base, "--input", inputs[0], "--output", tmp_path / "o",
                              "--scheduler", address, "--workers", "2"), "--workers goes with")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "1s")
    assert_user_error(run_cli(*base, "--input", inputs[0], "--output", tmp_path / "o",
                              "--scheduler", f"tcp://127.0.0.1:{port}", in_process=False),
                      "cannot reach the Dask scheduler", "dask scheduler")


def test_a_failed_run_leaves_no_part(client, sample_model, inputs, tmp_path):
    broken = tmp_path / "in" / "b.csv"
    broken.parent.mkdir()
    broken.write_text("id,title\n1,央行降准\n2,国足,多余\n", encoding="utf-8")
    out = tmp_path / "labelled"
    with pytest.raises(DataError, match="malformed CSV at line 3"):
        newsclf_dask.predict_files(sample_model, [inputs[0], broken], out, client,
                                   progress=False)
    assert not out.exists()


def test_without_the_extra_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(NewsclfError, match=r'pip install "newsclf\[dask\]"'):
        with newsclf_dask.cluster_client("local"):
            pass


def test_importing_newsclf_does_not_import_dask():
    import subprocess

    code = ("import sys, newsclf, newsclf.cli, newsclf.dask, newsclf.predict; "
            "print('dask' in sys.modules or 'distributed' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_the_staging_folder_a_killed_run_left_is_removed_by_the_next_run(
        client, sample_model, inputs, tmp_path, capsys):
    import os
    import subprocess
    import time

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that no run holds any more
    out = tmp_path / "labelled"
    leftover = out / f".partial-{socket.gethostname()}-{dead.pid}"
    leftover.mkdir(parents=True)
    (leftover / "part-00000.csv").write_text("id,title\n", encoding="utf-8")
    for path in (leftover / "part-00000.csv", leftover):
        os.utime(path, (time.time() - 120, time.time() - 120))
    summary = newsclf_dask.predict_files(sample_model, inputs[0], out, client, progress=False)
    assert sorted(path.name for path in out.iterdir()) == [
        f"part-{number:05d}.csv" for number in range(summary["parts"])]
    assert f"removed {leftover}, left by an earlier run (process {dead.pid})" in \
        capsys.readouterr().err
    # one still being written (its process alive) is not touched, and the folder is not empty
    live = out / f".partial-{socket.gethostname()}-{os.getpid()}"
    live.mkdir()
    (live / "part-00000.csv").write_text("id,title\n", encoding="utf-8")
    empty = tmp_path / "again"
    empty.mkdir()
    live.rename(empty / live.name)
    with pytest.raises(NewsclfError, match=r"not empty \(holds \.partial-"):
        newsclf_dask.predict_files(sample_model, inputs[0], empty, client, progress=False)
    assert (empty / live.name / "part-00000.csv").is_file()
