"""The HTTP service through the real ``newsclf serve`` on a free loopback port: predictions equal
``Predictor.predict``, every limit is a clear JSON error, concurrent requests are answered in
order and share model calls, and the command starts and stops with one line each."""

import json
import os
import queue
import re
import select
import signal
import subprocess
import sys
import threading
from importlib.util import find_spec

import pytest

from newsclf.spec import LONG_TEXT_MODES

from conftest import ROOT, SAMPLE, assert_user_error, run_cli

needs_serve = pytest.mark.skipif(
    find_spec("fastapi") is None or find_spec("uvicorn") is None or find_spec("httpx") is None,
    reason='the serve extra is not installed (pip install ".[serve]"; the tests also need httpx)')

MAX_TEXTS, MAX_CHARS = 50, 400
LISTENING = re.compile(r"listening on (http://\S+) ")


def start_server(*args, env=None):
    """``newsclf serve ARGS --port 0`` in its own process group; returns (process, base URL)
    once it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "newsclf", "serve", *map(str, args), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        start_new_session=True, env=env)
    ready, _, _ = select.select([process.stdout], [], [], 60)
    line = process.stdout.readline() if ready else ""
    found = LISTENING.search(line)
    if not found:
        stop(process, signal.SIGKILL)
        pytest.fail(f"the server did not start: {line!r} {process.stderr.read()!r}")
    return process, found.group(1)


def stop(process, signum=signal.SIGTERM):
    """Signal the server's process group; returns (exit status, stderr)."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
    return process.returncode, stderr


@pytest.fixture(scope="module")
def server(sample_model):
    process, url = start_server("--model", sample_model, "--max-texts", MAX_TEXTS,
                                "--max-chars", MAX_CHARS, "--batch-wait-ms", 20)
    yield url
    stop(process)


@pytest.fixture(scope="module")
def client(server):
    import httpx

    with httpx.Client(base_url=server, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def texts():
    lines = (SAMPLE / "dev.tsv").read_text(encoding="utf-8").splitlines()
    headlines = [line.split("\t")[0] for line in lines if "\t" in line]
    return headlines[:40] + ["", "   ", "！？。", "qqqqzzzz", headlines[40] * 3]


def assert_same(got, expected):
    """Rows of ``predict`` (dicts, or lists of dicts with top_k): the same labels and errors,
    scores equal up to float rounding (a text's padding depends on the batch it shares)."""
    assert len(got) == len(expected)
    for got_row, expected_row in zip(got, expected):
        if isinstance(expected_row, dict):
            got_row, expected_row = [got_row], [expected_row]
        assert [item.keys() for item in got_row] == [item.keys() for item in expected_row]
        for got_item, expected_item in zip(got_row, expected_row):
            assert got_item["label"] == expected_item["label"]
            assert got_item.get("error") == expected_item.get("error")
            if expected_item["score"] is None:
                assert got_item["score"] is None
            else:
                assert got_item["score"] == pytest.approx(expected_item["score"], abs=1e-5)


@needs_serve
def test_predictions_equal_predictor(client, predictor, texts):
    response = client.post("/predict", json={"texts": texts})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    predictions = response.json()["predictions"]
    assert_same(predictions, predictor.predict(texts))
    assert predictions[40] == {"label": None, "score": None, "error": "empty text"}
    assert all(isinstance(row, dict) for row in predictions)


@needs_serve
@pytest.mark.parametrize("top_k", [1, 3, 99])
def test_top_k_equals_predictor(client, predictor, texts, top_k):
    predictions = client.post("/predict", json={"texts": texts, "top_k": top_k}).json()[
        "predictions"]
    assert_same(predictions, predictor.predict(texts, top_k=top_k))
    assert len(predictions[0]) == min(top_k, len(predictor.classes_))
    assert predictions[40] == [{"label": None, "score": None, "error": "empty text"}]


@needs_serve
def test_long_text_chunk(client, predictor, texts):
    article = "".join(texts[:12])[:MAX_CHARS]
    assert len(article) > predictor.spec.max_len
    for mode in LONG_TEXT_MODES:
        predictions = client.post("/predict", json={"texts": [article, texts[0]], "top_k": 2,
                                                    "long_text": mode}).json()["predictions"]
        assert_same(predictions, predictor.predict([article, texts[0]], top_k=2, long_text=mode))


@needs_serve
@pytest.mark.parametrize("body, status, fragment", [
    ({"texts": []}, 422, "texts is empty"),
    ({"texts": ["a"] * (MAX_TEXTS + 1)}, 413, f"too many texts: {MAX_TEXTS + 1} in one request, "
                                              f"at most {MAX_TEXTS}"),
    ({"texts": ["a", "b" * (MAX_CHARS + 1)]}, 413, f"texts[1] has {MAX_CHARS + 1} characters, "
                                                   f"at most {MAX_CHARS}"),
    ({"texts": ["a", 5]}, 422, "texts[1] must be a string, not 5"),
    ({"texts": ["a", None]}, 422, "texts[1] must be a string, not null"),
    ({"texts": "a"}, 422, "texts must be a list of strings"),
    ({"texts": ["a"], "top_k": 0}, 422, "top_k must be a whole number of at least 1"),
    ({"texts": ["a"], "top_k": -2}, 422, "top_k must be a whole number of at least 1"),
    ({"texts": ["a"], "top_k": 2.5}, 422, "not 2.5"),
    ({"texts": ["a"], "top_k": True}, 422, "not true"),
    ({"texts": ["a"], "top_k": "3"}, 422, 'not "3"'),
    ({"texts": ["a"], "long_text": "all"}, 422, "long_text must be one of truncate, chunk"),
    ({"text": ["a"]}, 422, "unknown field 'text'"),
    ({}, 422, "texts is missing"),
    ([["a"]], 422, "the body must be a JSON object"),
])
def test_limits_and_bad_requests(client, body, status, fragment):
    response = client.post("/predict", json=body)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    assert fragment in detail, detail


@needs_serve
@pytest.mark.parametrize("content, headers, fragment", [
    (b'{"texts": ["a"', {"content-type": "application/json"}, "the body is not valid JSON"),
    (b'{"texts": ["a"]}', {"content-type": "application/x-www-form-urlencoded"},
     "Content-Type: application/json"),
    (b"", {}, "the body is missing"),
    ('{"texts": ["股市"]}'.encode("gbk"), {"content-type": "application/json"},
     "the body is not UTF-8 (byte 12 cannot be decoded)"),
    (b"[" * 100_000 + b"]" * 100_000, {"content-type": "application/json"},
     "nested too deep"),
])
def test_bodies_that_are_not_json(client, content, headers, fragment):
    response = client.post("/predict", content=content, headers=headers)
    assert response.status_code == 422, response.text
    assert fragment in response.json()["detail"]


@needs_serve
def test_other_http_errors_keep_their_status(client):
    assert client.get("/no-such-page").status_code == 404
    response = client.get("/predict")
    assert response.status_code == 405 and response.json() == {"detail": "Method Not Allowed"}


@needs_serve
def test_limits_allow_their_maximum(client):
    response = client.post("/predict", json={"texts": ["股市" * (MAX_CHARS // 2)] * MAX_TEXTS})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == MAX_TEXTS


@needs_serve
def test_health_info_and_docs(client, predictor, sample_model):
    import newsclf

    assert client.get("/health").json() == {"status": "ok", "model_loaded": True}
    info = client.get("/info").json()
    recorded = json.loads((sample_model / "metrics.json").read_text(encoding="utf-8"))
    assert info["classes"] == list(predictor.classes_)
    assert info["metrics"]["dev_accuracy"] == recorded["dev_accuracy"]
    assert info["metrics"]["dev_macro_f1"] == recorded["dev_macro_f1"]
    assert info["newsclf_version"] == newsclf.__version__
    assert info["backend"] == predictor.backend
    assert info["max_len"] == predictor.spec.max_len
    assert info["ensemble_size"] == predictor.spec.ensemble_size
    assert info["model_kind"] == "one encoder"  # as newsclf info says what it predicts with
    assert info["limits"] == {"max_texts": MAX_TEXTS, "max_chars": MAX_CHARS,
                              "max_windows": 20000}
    assert set(info["stats"]) == {"requests", "texts", "model_calls", "largest_batch"}
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/health", "/info"} <= set(schema["paths"])
    assert "PredictRequest" in schema["components"]["schemas"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert client.get("/nothing").status_code == 404


def _concurrently(server, requests):
    """Send each JSON body from its own thread, all at once; returns the responses' JSON."""
    import httpx

    barrier = threading.Barrier(len(requests))
    answers = [None] * len(requests)

    def send(i, body):
        with httpx.Client(base_url=server, timeout=60) as client:
            barrier.wait()
            response = client.post("/predict", json=body)
            answers[i] = (response.status_code, response.json())

    threads = [threading.Thread(target=send, args=item) for item in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@needs_serve
def test_concurrent_requests_answered_in_order(server, predictor, texts):
    requests = [{"texts": texts[i:i + 1 + i % 7], **({"top_k": 1 + i % 4} if i % 2 else {})}
                for i in range(20)]
    answers = _concurrently(server, requests)
    for body, (status, answer) in zip(requests, answers):
        assert status == 200, answer
        assert_same(answer["predictions"], predictor.predict(body["texts"],
                                                             top_k=body.get("top_k")))


@needs_serve
def test_concurrent_requests_share_model_calls(client, server, texts):
    before = client.get("/info").json()["stats"]
    answers = _concurrently(server, [{"texts": [text]} for text in texts[:30]])
    assert all(status == 200 for status, _ in answers)
    after = client.get("/info").json()["stats"]
    requests = after["requests"] - before["requests"]
    calls = after["model_calls"] - before["model_calls"]
    assert requests == 30 and after["texts"] - before["texts"] == 30
    assert calls < requests / 2, (calls, requests)
    assert after["largest_batch"] > 1


@needs_serve
@pytest.mark.parametrize("signum, status, said", [(signal.SIGINT, 130, "interrupted"),
                                                  (signal.SIGTERM, 143, "terminated")])
def test_stops_with_one_line(sample_model, signum, status, said):
    import httpx

    process, url = start_server("--model", sample_model)
    assert url.startswith("http://127.0.0.1:")
    assert httpx.get(url + "/health", timeout=30).status_code == 200
    assert stop(process, signum) == (status, f"newsclf serve: {said}\n")


@needs_serve
def test_uvicorn_factory(sample_model):
    """``create_app`` without arguments serves the directory named by NEWSCLF_MODEL."""
    import httpx

    env = {**os.environ, "NEWSCLF_MODEL": str(sample_model)}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "newsclf.serve:create_app",
         "--host", "127.0.0.1", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT, start_new_session=True, env=env)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr],
                     daemon=True).start()
    try:
        url = None
        while url is None:
            found = re.search(r"running on (http://\S+)", lines.get(timeout=60), re.IGNORECASE)
            url = found and found.group(1)
        answer = httpx.post(url + "/predict", json={"texts": ["沪指放量上涨"]}, timeout=30)
        assert answer.status_code == 200 and "label" in answer.json()["predictions"][0]
    finally:
        stop(process)


@needs_serve
def test_bad_model_is_one_line(tmp_path):
    assert_user_error(run_cli("serve", "--model", tmp_path / "missing"), "newsclf serve: error:",
                      "missing")


@needs_serve
def test_taken_port_is_one_line(sample_model):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert_user_error(run_cli("serve", "--model", sample_model, "--port", port,
                                  in_process=False),
                          f"cannot listen on 127.0.0.1:{port}", "choose another --port")


@needs_serve
@pytest.mark.parametrize("option, value, fragment", [
    ("--max-texts", "0", "--max-texts must be at least 1"),
    ("--max-chars", "-1", "--max-chars must be at least 1"),
    ("--port", "70000", "--port must be between 0 and 65535"),
    ("--threads", "0", "--threads must be at least 1"),
])
def test_bad_options_are_one_line(capsys, tmp_path, option, value, fragment):
    from newsclf.cli import main

    assert main(["serve", "--model", str(tmp_path), option, value]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and fragment in error, error


def test_missing_extra_says_what_to_install(monkeypatch, capsys, tmp_path):
    from newsclf.cli import main

    monkeypatch.setattr("newsclf.cli.serve.find_spec", lambda name: None)
    assert main(["serve", "--model", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ('newsclf serve: error: serve needs FastAPI and uvicorn: '
                                       'pip install "newsclf[serve]"\n')


def test_info_of_a_student_says_what_it_was_distilled_from(tmp_path, sample_model):
    import shutil

    from fastapi.testclient import TestClient

    from newsclf.serve import create_app

    model = tmp_path / "student"
    shutil.copytree(sample_model, model)
    record = json.loads((model / "metrics.json").read_text(encoding="utf-8"))
    record.update(predicts_with="student", members=[{"seed": 1}, {"seed": 2}])
    (model / "metrics.json").write_text(json.dumps(record), encoding="utf-8")
    with TestClient(create_app(model)) as client:
        info = client.get("/info").json()
    assert info["model_kind"] == "one student encoder distilled from an ensemble of 2"
    assert info["ensemble_size"] == 1  # the encoders it runs


@needs_serve
def test_a_model_directory_replaced_or_deleted_under_the_server_is_noticed(
        tmp_path, sample_model):
    import shutil
    import time

    import httpx

    served = tmp_path / "news"
    shutil.copytree(sample_model, served)
    process, url = start_server("--model", served)

    def until(answer, wanted):
        deadline = time.monotonic() + 30
        while answer().status_code != wanted and time.monotonic() < deadline:
            time.sleep(0.2)
        return answer()

    def health():
        return httpx.get(url + "/health", timeout=30)

    try:
        before = httpx.get(url + "/info", timeout=30).json()["metrics"]
        # a retrained model moved in where the old one was
        replacement = tmp_path / "retrained"
        shutil.copytree(sample_model, replacement)
        metrics = json.loads((replacement / "metrics.json").read_text(encoding="utf-8"))
        metrics["dev_accuracy"] = 0.125
        (replacement / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
        served.rename(tmp_path / "old")
        replacement.rename(served)
        deadline = time.monotonic() + 30
        while (httpx.get(url + "/info", timeout=30).json()["metrics"]["dev_accuracy"] != 0.125
               and time.monotonic() < deadline):
            time.sleep(0.2)
        assert httpx.get(url + "/info", timeout=30).json()["metrics"]["dev_accuracy"] == 0.125
        assert before["dev_accuracy"] != 0.125
        # deleted: no answer from a model that is gone
        shutil.rmtree(served)
        answer = until(health, 503)
        assert answer.status_code == 503 and answer.json()["status"] == "unavailable"
        assert "model directory not found" in answer.json()["detail"]
        refused = httpx.post(url + "/predict", json={"texts": ["沪指放量上涨"]}, timeout=30)
        assert refused.status_code == 503 and "does not load" in refused.json()["detail"]
        # back again: answered again
        (tmp_path / "old").rename(served)
        assert until(health, 200).status_code == 200
        answer = httpx.post(url + "/predict", json={"texts": ["沪指放量上涨"]}, timeout=30)
        assert answer.status_code == 200 and answer.json()["predictions"][0]["label"]
    finally:
        status, stderr = stop(process)
    assert "changed on disk; loaded again" in stderr
    assert "changed and does not load; answering 503" in stderr


def long_texts(count: int, length: int = 30000) -> list[str]:
    lines = (SAMPLE / "dev.tsv").read_text(encoding="utf-8").splitlines()
    text = "".join(line.split("\t")[0] for line in lines)
    return [(text * (length // len(text) + 1))[:length]] * count


@needs_serve
def test_a_request_beyond_the_window_budget_is_refused_up_front(sample_model):
    from fastapi.testclient import TestClient

    from newsclf.serve import create_app

    with TestClient(create_app(sample_model, max_windows=100)) as client:
        answer = client.post("/predict", json={"texts": long_texts(4, 3000),
                                               "long_text": "chunk"})
        assert answer.status_code == 413
        assert "up to 188 windows of 64 characters, at most 100" in answer.json()["detail"]
        assert client.get("/info").json()["stats"]["model_calls"] == 0
        # the same texts cut to max_len cost one window each
        answer = client.post("/predict", json={"texts": long_texts(4, 3000)})
        assert answer.status_code == 200


@needs_serve
def test_a_long_request_takes_turns_and_stops_when_its_client_leaves(sample_model):
    import time

    import httpx

    process, url = start_server("--model", sample_model, "--max-windows", 10**6)
    try:
        def heavy():  # about 140,000 windows: minutes of work, given up after 5 s
            try:
                httpx.post(url + "/predict", json={"texts": long_texts(300),
                                                   "long_text": "chunk"}, timeout=5)
            except httpx.TimeoutException:
                pass

        client = threading.Thread(target=heavy)
        client.start()
        time.sleep(2)
        started = time.monotonic()
        answer = httpx.post(url + "/predict", json={"texts": ["沪指放量上涨"]}, timeout=60)
        assert answer.status_code == 200 and time.monotonic() - started < 30
        client.join()

        def calls():
            return httpx.get(url + "/info", timeout=30).json()["stats"]["model_calls"]

        deadline, before = time.monotonic() + 60, calls()
        while time.monotonic() < deadline:  # the client's slices stop being read
            time.sleep(3)
            now = calls()
            if now == before:
                break
            before = now
        assert calls() == before
        assert httpx.get(url + "/info", timeout=30).json()["stats"]["texts"] < 300
    finally:
        stop(process, signal.SIGKILL)


@needs_serve
def test_a_server_busy_with_a_long_request_stops_at_once_with_one_line(sample_model):
    import time

    import httpx

    process, url = start_server("--model", sample_model, "--max-windows", 10**6)
    answers = []
    client = threading.Thread(target=lambda: answers.append(httpx.post(
        url + "/predict", json={"texts": long_texts(300), "long_text": "chunk"}, timeout=120)))
    client.start()
    time.sleep(3)
    started = time.monotonic()
    assert stop(process) == (143, "newsclf serve: terminated\n")
    # uvicorn would have waited 10 s for the request, then cancelled it with a traceback
    assert time.monotonic() - started < 9
    client.join()
    assert answers[0].status_code == 503 and "stopping" in answers[0].json()["detail"]


@needs_serve
def test_a_model_directory_moved_away_and_back_is_served_again(tmp_path, sample_model):
    import shutil
    import time

    from fastapi.testclient import TestClient

    from newsclf.serve import ServedModel, create_app

    served = tmp_path / "news"
    shutil.copytree(sample_model, served)
    with TestClient(create_app(served)) as client:
        served.rename(tmp_path / "away")
        time.sleep(ServedModel.CHECK_SECONDS + 0.1)
        assert client.get("/health").status_code == 503
        (tmp_path / "away").rename(served)  # the same files: nothing to load again
        time.sleep(ServedModel.CHECK_SECONDS + 0.1)
        assert client.get("/health").status_code == 200
        assert client.post("/predict", json={"texts": ["沪指放量上涨"]}).status_code == 200


@needs_serve
def test_a_request_waiting_when_another_model_takes_over_is_answered_by_its_own():
    import asyncio

    from newsclf.serve import MicroBatcher

    class Named:
        def __init__(self, name):
            self.name = name

        def predict(self, texts, top_k, long_text):
            return [[{"label": self.name}] * top_k for _ in texts]

    async def run():
        batcher = MicroBatcher(Named("old"), max_batch_windows=4)
        first = asyncio.ensure_future(batcher.predict(["长文"] * 12, None, "chunk", [1] * 12))
        await asyncio.sleep(0)
        batcher.predictor = Named("new")  # as ServedModel does once it has loaded another
        second = asyncio.ensure_future(batcher.predict(["短讯"], None, "chunk", [1]))
        answers = await first, await second
        await batcher.close()
        return answers

    first, second = asyncio.run(run())
    assert [row["label"] for row in first] == ["old"] * 12
    assert [row["label"] for row in second] == ["new"]
