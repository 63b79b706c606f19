"""Checks on the real THUCNews headlines (skipped where the data set is not beside the project)."""

import json

import pytest

from newsclf import Predictor, TrainConfig
from newsclf.data import LabelledData, read_class_names, read_labelled
from newsclf.training import train

from conftest import THUCNEWS, needs_thucnews

pytestmark = [needs_thucnews, pytest.mark.slow]


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


def test_real_headlines_plus_hostile_rows_survive_every_encoding(thucnews, tmp_path):
    import pandas as pd

    from newsclf.predict import predict_file

    classes, train_data, dev_data = thucnews
    small = LabelledData(train_data.texts[:3000], train_data.labels[:3000], train_data.source)
    config = TrainConfig(epochs=1, d_model=32, n_heads=2, d_ff=64, n_layers=1)
    train(config, small, None, tmp_path / "m", classes, progress=False, log=lambda m: None)
    predictor = Predictor.from_dir(tmp_path / "m")
    hostile = ["", "   ", "😀🎉", "足球" * 10000, '带,逗号和"引号"的\n多行标题', "\u200b"]
    texts = dev_data.texts[:3000] + hostile
    frame = pd.DataFrame({"id": [str(i) for i in range(len(texts))], "text": texts})
    outputs = []
    for encoding in ("utf-8", "utf-8-sig", "gb18030"):
        source = tmp_path / f"in-{encoding}.csv"
        source.write_bytes(frame.to_csv(index=False).encode(encoding))
        out = tmp_path / f"out-{encoding}.csv"
        summary = predict_file(predictor, str(source), str(out), progress=False, chunk_size=1000)
        assert summary["rows"] == len(texts)
        result = pd.read_csv(out, dtype=str, keep_default_na=False)
        pd.testing.assert_frame_equal(result[["id", "text"]], frame)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
