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


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-roberta", "tiny-roberta-pad1"])
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


def _pooled(folder, rows):
    from newsclf.pretrained.encoder import PooledLayers, run_layers
    from newsclf.pretrained.hf import HFEncoder

    encoder = HFEncoder(folder)
    piece_lists = [encoder.piece_ids(row["text"]) for row in rows]
    network, row_of = encoder.network(piece_lists)
    return run_layers(PooledLayers(network), network, piece_lists, row_of,
                      encoder.sizes.hidden, engine="paddle")


def _save_bfloat16(source, target):
    """The float32 safetensors file ``source`` with every tensor rounded down to bfloat16."""
    from safetensors.numpy import load_file

    header, blobs, at = {}, [], 0
    for name, value in load_file(source).items():
        blob = (np.ascontiguousarray(value, np.float32).view(np.uint32) >> 16).astype(
            "<u2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(value.shape),
                        "data_offsets": [at, at + len(blob)]}
        blobs.append(blob)
        at += len(blob)
    text = json.dumps(header).encode()
    target.write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def test_a_padding_id_left_out_is_roberta_s_and_bfloat16_weights_are_read(tmp_path):
    rows = EXPECTED["tiny-roberta-pad1"]
    folder = _copy(tmp_path, "tiny-roberta-pad1")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    del config["pad_token_id"]  # transformers reads RoBERTa's default, 1
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    expected = np.array([row["pooled"] for row in rows])
    np.testing.assert_allclose(_pooled(folder, rows), expected, atol=2e-5)
    _save_bfloat16(folder / "model.safetensors", folder / "model.safetensors")
    # bfloat16 keeps 8 bits of each weight: close, not equal
    np.testing.assert_allclose(_pooled(folder, rows), expected, atol=2e-2)


def test_what_tells_a_checkpoint_apart_covers_its_weights_and_tokenizer(tmp_path):
    from safetensors.numpy import load_file, save_file

    from newsclf.pretrained.hf import HFEncoder

    folder = _copy(tmp_path)
    first = HFEncoder(folder).identity()
    weights = load_file(folder / "model.safetensors")
    save_file({name: value * 1.5 for name, value in weights.items()},
              folder / "model.safetensors")  # the same size: trained further
    scaled = HFEncoder(folder).identity()
    settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    settings["do_lower_case"] = False
    (folder / "tokenizer_config.json").write_text(json.dumps(settings), encoding="utf-8")
    assert len({first, scaled, HFEncoder(folder).identity()}) == 3


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


def _damaged_tokenizer(folder):
    (folder / "tokenizer.json").write_text('{"version": 1, x}', encoding="utf-8")


def _a_weight_missing(folder):
    from safetensors.numpy import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    del weights["encoder.layer.1.output.dense.weight"]
    save_file(weights, folder / "model.safetensors")


def _a_shard_missing(folder):
    (folder / "model.safetensors").rename(folder / "model-1.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-1.safetensors", "b": "model-2.safetensors"}}), encoding="utf-8")


@pytest.mark.parametrize("damage, fragments", [
    (_no_config, ["not a Hugging Face model directory (no config.json)"]),
    (lambda folder: _edit_config(folder, model_type="gpt2"),
     ["a gpt2 checkpoint; --teacher reads bert, roberta, xlm-roberta models"]),
    (lambda folder: _edit_config(folder, hidden_act="relu"), ["activation 'relu'"]),
    (lambda folder: _edit_config(folder, hidden_size=None), ["config.json: no usable"]),
    (_torch_weights_only, ["holds PyTorch weights only; save them as model.safetensors"]),
    (_no_tokenizer, ["no tokenizer (tokenizer.json or vocab.txt)"]),
    (_damaged_tokenizer, ["tokenizer.json: not a readable tokenizer file"]),
    (_damaged_weights, ["model.safetensors: not readable safetensors weights"]),
    (_a_weight_missing, ["the weights have no encoder.layer.1.output.dense.weight"]),
    (_a_shard_missing, ["model-2.safetensors: missing (the weights index names it)"]),
])
def test_a_directory_that_is_not_a_usable_model_is_refused_before_training(
        tmp_path, damage, fragments):
    teacher = _copy(tmp_path)
    damage(teacher)
    result = run_cli("train", "--train", sample_head(tmp_path, "train.tsv", 100), "--output",
                     tmp_path / "model", "--teacher", teacher, "--no-progress")
    assert_user_error(result, str(teacher), *fragments)
    assert not (tmp_path / "model").exists()


def test_a_missing_directory_is_one_line(tmp_path):
    missing = run_cli("train", "--train", sample_head(tmp_path, "train.tsv", 100), "--output",
                      tmp_path / "model", "--teacher", tmp_path / "nowhere", "--no-progress")
    assert_user_error(missing, "nowhere: no such directory (--teacher takes none, e5 or")


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
