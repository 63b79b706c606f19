"""Checks on the real THUCNews headlines (skipped where the data set is not beside the project)."""

import json

import pytest

from newsclf import Predictor, TrainConfig
from newsclf.data import LabelledData, read_class_names, read_labelled
from newsclf.train import train

from conftest import THUCNEWS, needs_thucnews

pytestmark = needs_thucnews


@pytest.fixture(scope="module")
def thucnews():
    classes = read_class_names(THUCNEWS / "class.txt")
    return (classes, read_labelled(THUCNEWS / "train.txt", classes),
            read_labelled(THUCNEWS / "dev.txt", classes))


def test_reads_the_thucnews_layout(thucnews):
    classes, train_data, dev_data = thucnews
    assert len(classes) == 10 and "体育" in classes
    assert len(train_data) == 45000 and len(dev_data) == 10000
    assert set(train_data.labels) == set(classes)


def test_short_training_on_real_headlines_learns(thucnews, tmp_path):
    classes, train_data, dev_data = thucnews
    train_data = LabelledData(train_data.texts[:6000], train_data.labels[:6000], train_data.source)
    dev_data = LabelledData(dev_data.texts[:2000], dev_data.labels[:2000], dev_data.source)
    config = TrainConfig(epochs=3, d_model=64, n_heads=2, d_ff=128, n_layers=1, lr=2e-3)
    result = train(config, train_data, dev_data, tmp_path / "m", classes, progress=False,
                   log=lambda m: None)
    assert result.metrics["dev_accuracy"] > 0.7
    predictor = Predictor.from_dir(tmp_path / "m")
    assert list(predictor.classes_) == classes
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["n_train"] == 6000
