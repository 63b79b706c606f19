"""The model directory format: directories written by earlier releases keep loading and predicting
the same; loading never depends on the training settings; edits and newer formats are refused."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from newsclf import ModelDirError, Predictor, TrainConfig
from newsclf.modeldir import FORMAT_VERSION, load_model_dir

from conftest import FAST_BACKEND, run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "models"
FORMAT_1 = ["v1-single", "v1-ensemble"]  # written by newsclf 0.1.0 (format version 1)


def expected(name):
    return json.loads((FIXTURES / f"{name}.expected.json").read_text(encoding="utf-8"))


@pytest.fixture
def copy_of(tmp_path):
    def make(name):
        target = tmp_path / name
        shutil.copytree(FIXTURES / name, target)
        return target
    return make


@pytest.mark.parametrize("name", FORMAT_1)
def test_format_1_directories_predict_as_when_they_were_written(name):
    recorded = expected(name)
    texts = recorded["texts"]
    dynamic = Predictor.from_dir(FIXTURES / name, backend="dynamic")
    assert list(dynamic.classes_) == recorded["classes"]
    probabilities, problems = dynamic.classify(texts)
    # since 0.2 a text with nothing to classify gets no label and equal probabilities
    unlabelled = [i for i, problem in enumerate(problems) if problem]
    assert [texts[i] for i in unlabelled] == ["", "🙂"]
    labelled = [i for i, problem in enumerate(problems) if not problem]
    np.testing.assert_allclose(probabilities[labelled],
                               np.array(recorded["dynamic"])[labelled], atol=1e-6)
    np.testing.assert_allclose(probabilities[unlabelled], 0.1, rtol=1e-6)
    fast = Predictor.from_dir(FIXTURES / name)
    assert fast.backend == "inference"  # the export written by that release is still used
    np.testing.assert_allclose(fast.predict_proba(texts)[labelled],
                               np.array(recorded["inference"])[labelled], atol=1e-5)


@pytest.mark.parametrize("name", FORMAT_1)
def test_format_1_is_migrated_in_memory_only(name):
    before = {p.name: p.read_bytes() for p in (FIXTURES / name).iterdir() if p.is_file()}
    files = load_model_dir(FIXTURES / name)
    assert files.format_version == 1 and files.info["format_version"] == FORMAT_VERSION
    assert files.training["settings"]["patience"] == 3  # the old settings, kept as a record
    assert {p.name: p.read_bytes() for p in (FIXTURES / name).iterdir() if p.is_file()} == before


def test_format_1_ensemble_and_options_are_read_from_the_old_settings():
    spec = load_model_dir(FIXTURES / "v1-ensemble").spec
    assert (spec.ensemble_size, spec.pooling, spec.position, spec.pre_ln, spec.tokenizer) == \
        (2, "cls", "learned", True, "char")
    single = load_model_dir(FIXTURES / "v1-single")
    assert single.spec.ensemble_size == 1 and single.spec.user_dict == "user_dict.txt"
    assert Path(single.user_dict).read_text(encoding="utf-8").startswith("准备金率")


def test_loading_never_reads_the_training_settings(monkeypatch, sample_model):
    """A later release may rename or drop any training setting: loading must not care."""
    def refuse(*args, **kwargs):
        raise AssertionError("loading a model built TrainConfig")

    monkeypatch.setattr(TrainConfig, "from_dict", refuse)
    monkeypatch.setattr(TrainConfig, "__init__", refuse)
    for path in [sample_model] + [FIXTURES / name for name in FORMAT_1]:
        Predictor.from_dir(path).predict(["央行宣布下调存款准备金率"])


def test_current_format_keeps_settings_apart_from_the_model(sample_model):
    config = json.loads((sample_model / "config.json").read_text(encoding="utf-8"))
    assert config["format_version"] == FORMAT_VERSION
    assert "patience" not in json.dumps(config["model"])
    training = json.loads((sample_model / "training.json").read_text(encoding="utf-8"))
    # the fixture gives epochs, not patience: training.json has the patience used, named
    assert training["settings"]["patience"] == TrainConfig(epochs=6).for_training_size(1000).patience
    assert training["automatic"] == ["patience"]


@pytest.mark.parametrize("edit", [
    lambda model: model.update(pooling="max"),
    lambda model: model.update(n_heads=model["n_heads"] * 2, d_model=model["d_model"]),
    lambda model: model.update(max_len=model["max_len"] + 1),
])
def test_a_hand_edited_config_is_refused(tmp_path, sample_model, edit):
    target = tmp_path / "edited"
    shutil.copytree(sample_model, target)
    config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    edit(config["model"])
    (target / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelDirError, match="config.json: edited after training"):
        Predictor.from_dir(target)
    result = run_cli("predict", "--model", target, "--text", "央行宣布下调存款准备金率")
    assert result.returncode == 2 and "edited after training" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_newer_format_is_refused_with_upgrade_advice(copy_of):
    target = copy_of("v1-single")
    config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    config["format_version"] = FORMAT_VERSION + 1
    (target / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelDirError, match="newer than this newsclf.*upgrade newsclf"):
        load_model_dir(target)


def test_a_format_1_directory_with_damaged_weights_is_refused(copy_of):
    target = copy_of("v1-ensemble")
    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ModelDirError, match="model.safetensors: does not match"):
        load_model_dir(target)


def test_an_export_of_other_weights_is_not_used(tmp_path, sample_model, copy_of):
    target = copy_of("v1-single")
    shutil.rmtree(target / "inference")
    shutil.copytree(sample_model / "inference", target / "inference")
    assert Predictor.from_dir(target).backend == "dynamic"
    with pytest.raises(ModelDirError, match="stale"):
        Predictor.from_dir(target, backend="inference")


def test_re_exporting_a_format_1_directory(copy_of):
    target = copy_of("v1-single")
    shutil.rmtree(target / "inference")
    result = run_cli("export", "--model", target)
    assert result.returncode == 0, result.stderr
    recorded = expected("v1-single")
    predictor = Predictor.from_dir(target)
    assert predictor.backend == FAST_BACKEND
    texts = recorded["texts"][7:]  # the headlines
    np.testing.assert_allclose(predictor.predict_proba(texts), recorded["dynamic"][7:],
                               atol=1e-5)
