"""A Hugging Face BERT-family directory as the teacher (``--teacher DIR``): the encoder newsclf
builds from it computes what transformers computes, a bad directory is refused in one line, and
a student taught by it trains and predicts. The models are tiny ones of random weights
(tests/fixtures/make_tiny_hf_models.py wrote them and transformers' outputs)."""

import json
import shutil

import numpy as np
import pytest

from conftest import ROOT, assert_user_error, run_cli, sample_head

pytest.importorskip("tokenizers", reason="the pretrained extra is not installed")

MODELS = ROOT / "tests" / "fixtures" / "hf-models"
EXPECTED = json.loads((MODELS / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-roberta"])
@pytest.mark.parametrize("engine", ["paddle", "auto"])
def test_the_encoder_of_a_directory_computes_what_transformers_computes(name, engine):
    from newsclf.pretrained.encoder import PooledLayers, run_layers
    from newsclf.pretrained.hf import HFEncoder

    encoder = HFEncoder(MODELS / name)
    rows = EXPECTED[name]
    piece_lists = [encoder.piece_ids(row["text"]) for row in rows]
    assert piece_lists == [row["ids"] for row in rows]  # the 200-character text cut at 64
    network, row_of = encoder.network(piece_lists)
    pooled = run_layers(PooledLayers(network), network, piece_lists, row_of,
                        encoder.sizes.hidden, batch_size=8, engine=engine)
    np.testing.assert_allclose(pooled, np.array([row["pooled"] for row in rows]), atol=2e-5)


def test_a_vocabulary_file_alone_tokenizes_as_the_tokenizer_file(tmp_path):
    from newsclf.pretrained.hf import HFEncoder

    shutil.copytree(MODELS / "tiny-bert", tmp_path / "old")
    (tmp_path / "old" / "tokenizer.json").unlink()  # as bert-base-chinese is published
    encoder = HFEncoder(tmp_path / "old")
    assert [encoder.piece_ids(row["text"]) for row in EXPECTED["tiny-bert"]] == [
        row["ids"] for row in EXPECTED["tiny-bert"]]


def _copy(tmp_path, name="tiny-bert"):
    target = tmp_path / name
    shutil.copytree(MODELS / name, target)
    return target


def _edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")


def _no_config(folder):
    (folder / "config.json").unlink()


def _torch_weights_only(folder):
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")


def _no_tokenizer(folder):
    (folder / "tokenizer.json").unlink()
    (folder / "vocab.txt").unlink()


def _damaged_weights(folder):
    (folder / "model.safetensors").write_bytes(b"not weights")


@pytest.mark.parametrize("damage, fragments", [
    (_no_config, ["not a Hugging Face model directory (no config.json)"]),
    (lambda folder: _edit_config(folder, model_type="gpt2"),
     ["a gpt2 checkpoint; --teacher reads bert, roberta, xlm-roberta models"]),
    (lambda folder: _edit_config(folder, hidden_act="relu"), ["activation 'relu'"]),
    (lambda folder: _edit_config(folder, hidden_size=None), ["config.json: no usable"]),
    (_torch_weights_only, ["holds PyTorch weights only; save them as model.safetensors"]),
    (_no_tokenizer, ["no tokenizer (tokenizer.json or vocab.txt)"]),
])
def test_a_directory_that_is_not_a_usable_model_is_refused_before_training(
        tmp_path, damage, fragments):
    teacher = _copy(tmp_path)
    damage(teacher)
    result = run_cli("train", "--train", sample_head(tmp_path, "train.tsv", 100), "--output",
                     tmp_path / "model", "--teacher", teacher, "--no-progress")
    assert_user_error(result, str(teacher), *fragments)
    assert not (tmp_path / "model").exists()


def test_a_missing_directory_and_damaged_weights_are_one_line(tmp_path):
    missing = run_cli("train", "--train", sample_head(tmp_path, "train.tsv", 100), "--output",
                      tmp_path / "model", "--teacher", tmp_path / "nowhere", "--no-progress")
    assert_user_error(missing, "nowhere: no such directory (--teacher takes none, e5 or")
    from newsclf.errors import NewsclfError
    from newsclf.pretrained.hf import HFEncoder

    teacher = _copy(tmp_path)
    _damaged_weights(teacher)
    with pytest.raises(NewsclfError, match="model.safetensors: not readable safetensors"):
        HFEncoder(teacher).network([[2, 3]])


def test_a_student_taught_by_a_model_directory_records_it_and_predicts(tmp_path):
    train = sample_head(tmp_path, "train.tsv", 400)
    dev = sample_head(tmp_path, "dev.tsv", 120)
    model = tmp_path / "model"
    result = run_cli("train", "--train", train, "--dev", dev, "--output", model, "--teacher",
                     MODELS / "tiny-bert", "--pretrained-embeddings", "--epochs", "5",
                     "--d-model", "32", "--n-heads", "2", "--d-ff", "64", "--min-freq", "1",
                     "--no-progress", "--no-export")
    assert result.returncode == 0, result.stderr
    assert "fine-tuning the top 2 layers, epoch 8/8" in result.stderr  # all of its 2 layers
    assert "embeddings start from tiny-bert's input embeddings" in result.stderr  # a student of 5 epochs starts anew
    metrics = json.loads((model / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["pretrained_teacher"]["name"] == "tiny-bert, top layers fine-tuned"
    assert metrics["pretrained_teacher"]["tuned_layers"] == 2
    recorded = json.loads((model / "training.json").read_text(encoding="utf-8"))
    assert recorded["settings"]["teacher"] == str(MODELS / "tiny-bert")
    shown = run_cli("predict", "--model", model, "--text", "沪指放量上涨")
    assert shown.returncode == 0, shown.stderr
