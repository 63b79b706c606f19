"""newsclf.train: training from Python in one call, as ``newsclf train`` trains."""

import json

import pytest

import newsclf
from conftest import SAMPLE, sample_head

TINY = dict(d_model=32, n_heads=2, d_ff=64, epochs=2, batch_size=32, min_freq=1, ensemble_size=1)


def test_train_returns_the_predictor_of_the_directory_it_wrote(tmp_path, capsys):
    train = sample_head(tmp_path, "train.tsv", 200)
    model = newsclf.train(str(train), dev=SAMPLE / "dev.tsv", output=tmp_path / "model",
                          seed=3, **TINY)
    assert isinstance(model, newsclf.Predictor)
    assert model.files.path.resolve() == (tmp_path / "model").resolve()
    assert model.training_settings["d_model"] == 32 and model.training_settings["seed"] == 3
    assert set(model.classes_) == set(newsclf.read_labelled(train).labels)
    assert len(model.predict(["城市业余足球联赛火爆"])) == 1
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text(encoding="utf-8"))
    assert "dev_accuracy" in metrics
    err = capsys.readouterr().err
    assert "200 examples" in err  # the layout said, as the command says it


def test_settings_of_a_config_file_are_overridden_by_keywords(tmp_path, capsys):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({**TINY, "epochs": 1, "seed": 11}), encoding="utf-8")
    data = newsclf.read_labelled(sample_head(tmp_path, "train.tsv", 120))
    model = newsclf.train(data, output=tmp_path / "m", config=config, seed=12, verbose=False)
    assert model.training_settings["seed"] == 12 and model.training_settings["epochs"] == 1
    assert capsys.readouterr().err == ""  # verbose=False prints nothing


def test_an_unknown_setting_is_refused_before_anything_is_read(tmp_path):
    with pytest.raises(newsclf.NewsclfError, match="unknown setting.*epoch\\b"):
        newsclf.train(tmp_path / "absent.tsv", output=tmp_path / "m", epoch=3)
    assert not (tmp_path / "m").exists()


def test_texts_in_memory_are_pointed_to_the_estimator(tmp_path):
    with pytest.raises(newsclf.NewsclfError, match="TextClassifier"):
        newsclf.train(["沪指收涨"], output=tmp_path / "m")


def test_a_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(newsclf.NewsclfError, match="absent.tsv"):
        newsclf.train(tmp_path / "absent.tsv", output=tmp_path / "m", **TINY)


def test_data_and_classes_given_in_python_are_checked_like_files(tmp_path):
    from newsclf.datafiles import LabelledData

    train = sample_head(tmp_path, "train.tsv", 50)
    with pytest.raises(newsclf.NewsclfError, match=r"classes\[2\]: class 'a' is listed twice"):
        newsclf.train(train, output=tmp_path / "m", classes=["a", "b", "a"], **TINY)
    with pytest.raises(newsclf.NewsclfError, match="labels must be class names"):
        newsclf.train(LabelledData(["沪指收涨", "主队绝杀"], [1, 2], "memory"),
                      output=tmp_path / "m", **TINY)
    with pytest.raises(newsclf.NewsclfError, match="output must be the path"):
        newsclf.train(train, output=None, **TINY)
    assert not (tmp_path / "m").exists()
