import json
import os
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from newsclf.data import read_labelled
from newsclf.errors import NewsclfError
from newsclf.evaluation import EvaluationResult, MissingFontWarning, evaluate, fonts
from newsclf.evaluation import plot as evaluation_plot
from newsclf.evaluation.metrics import accuracy_and_macro_f1

from conftest import SAMPLE, assert_user_error, run_cli

CLASSES = ["体育", "财经", "科技"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def one_hot(ids, n_classes, score=1.0):
    probabilities = np.full((len(ids), n_classes), (1.0 - score) / max(1, n_classes - 1))
    probabilities[np.arange(len(ids)), ids] = score
    return probabilities


def read_matrix(path):
    return pd.read_csv(path, index_col=0, encoding="utf-8-sig")


def test_perfect_classifier():
    ids = [0, 1, 2, 0, 1, 2, 2]
    labels = [CLASSES[i] for i in ids]
    result = EvaluationResult.from_predictions(CLASSES, [f"text {i}" for i in range(7)], labels,
                                               one_hot(ids, 3))
    assert result.accuracy == 1.0 and result.macro_f1 == 1.0 and result.weighted_f1 == 1.0
    assert result.n == 7 and result.classes == CLASSES
    matrix = result.confusion_matrix
    assert list(matrix.index) == CLASSES and list(matrix.columns) == CLASSES
    np.testing.assert_array_equal(matrix.to_numpy(), np.diag([2, 2, 3]))
    np.testing.assert_array_equal(result.confusion_matrix_normalized.to_numpy(), np.eye(3))
    assert result.misclassified.empty
    assert list(result.misclassified.columns) == ["text", "true_label", "pred_label", "pred_score"]
    assert result.per_class["科技"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 3}
    assert "no errors" in result.summary()


def test_always_wrong_classifier_lists_every_row_most_confident_first():
    true_ids = np.array([0, 1, 2, 0, 1, 2])
    scores = np.array([0.5, 0.9, 0.7, 0.9, 0.6, 0.5])  # ties keep input order
    probabilities = one_hot((true_ids + 1) % 3, 3) * scores[:, None]
    probabilities[np.arange(6), true_ids] = 0.01
    texts = [f"text {i}" for i in range(6)]
    result = EvaluationResult.from_predictions(CLASSES, texts, [CLASSES[i] for i in true_ids],
                                               probabilities)
    assert result.accuracy == 0.0 and result.macro_f1 == 0.0
    assert np.trace(result.confusion_matrix.to_numpy()) == 0
    wrong = result.misclassified
    assert len(wrong) == 6
    assert list(wrong["text"]) == ["text 1", "text 3", "text 2", "text 4", "text 0", "text 5"]
    assert list(wrong["pred_score"]) == sorted(wrong["pred_score"], reverse=True)
    assert (wrong["true_label"] != wrong["pred_label"]).all()
    assert wrong.iloc[0].to_dict() == {"text": "text 1", "true_label": "财经",
                                       "pred_label": "科技", "pred_score": 0.9}
    summary = result.summary(top=2)
    assert "accuracy 0.0000" in summary and "→" in summary


def test_class_absent_from_the_data_keeps_its_row_and_column(tmp_path):
    classes = CLASSES + ["房产"]
    ids = [0, 1, 2, 0, 1]
    predicted = [0, 1, 3, 0, 2]  # one text is wrongly predicted as the absent class
    result = EvaluationResult.from_predictions(classes, ["a", "b", "c", "d", "e"],
                                               [classes[i] for i in ids], one_hot(predicted, 4, 0.7))
    assert result.per_class["房产"]["support"] == 0
    assert result.confusion_matrix.loc["科技", "房产"] == 1
    assert list(result.confusion_matrix_normalized.loc["房产"]) == [0.0, 0.0, 0.0, 0.0]
    assert not result.confusion_matrix_normalized.isna().any().any()
    assert "房产" in result.report()

    result.save(tmp_path)
    for name in ("confusion_matrix.csv", "confusion_matrix_normalized.csv", "misclassified.csv"):
        text = (tmp_path / name).read_text(encoding="utf-8-sig")
        assert "nan" not in text.lower(), name
    metrics_text = (tmp_path / "metrics.json").read_text(encoding="utf-8")
    assert "NaN" not in metrics_text and "Infinity" not in metrics_text
    matrix = read_matrix(tmp_path / "confusion_matrix.csv")
    assert list(matrix.index) == classes and list(matrix.columns) == classes
    assert list(read_matrix(tmp_path / "confusion_matrix_normalized.csv").loc["房产"]) == [0] * 4


def test_accuracy_and_macro_f1_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    accuracy, macro_f1 = accuracy_and_macro_f1(y_true, y_pred, 4)
    assert accuracy == pytest.approx(4 / 6)
    # F1 per class: 0 -> P 1, R 2/3: 0.8; 1 -> P 1/2, R 1/2: 0.5; 2 -> P 1/2, R 1: 2/3;
    # 3 is in neither array and still counts, as 0
    assert macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3 + 0.0) / 4)
    assert isinstance(accuracy, float) and isinstance(macro_f1, float)
    assert accuracy_and_macro_f1(y_true, y_true, 3) == (1.0, 1.0)
    assert accuracy_and_macro_f1(y_true, y_true, 4) == (1.0, 0.75)


def test_accuracy_and_macro_f1_equal_the_evaluation_result():
    rng = np.random.default_rng(3)
    for n_classes, n in [(2, 5), (3, 40), (8, 300), (14, 1000)]:
        present = rng.integers(1, n_classes + 1)  # the classes from `present` on are absent
        y_true = rng.integers(0, present, n)
        probabilities = rng.random((n, n_classes))
        classes = [f"class {i}" for i in range(n_classes)]
        result = EvaluationResult.from_predictions(classes, None, [classes[i] for i in y_true],
                                                   probabilities)
        scores = accuracy_and_macro_f1(y_true, probabilities.argmax(axis=1), n_classes)
        assert scores == (result.accuracy, result.macro_f1)  # the same floats, not just close


def test_importing_the_package_loads_no_heavy_library():
    code = ("import sys, newsclf.evaluation; "
            "print(sorted({'pandas', 'matplotlib', 'paddle', 'sklearn'} & set(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"


def test_unknown_labels_are_named(predictor):
    with pytest.raises(NewsclfError) as error:
        evaluate(predictor, ["今天天气很好", "新车上市", "又一款新车"], ["体育", "汽车", "汽车"])
    message = str(error.value)
    assert "'汽车'" in message and "2 of 3" in message
    assert "体育" in message and "财经" in message  # the model's classes are listed
    assert "\n" not in message


def test_empty_input_is_refused(predictor):
    with pytest.raises(NewsclfError, match="nothing to evaluate"):
        evaluate(predictor, [], [])
    with pytest.raises(NewsclfError, match="nothing to evaluate"):
        EvaluationResult.from_predictions(CLASSES, [], [], np.zeros((0, 3)))


def test_many_unknown_labels_are_summarised():
    labels = [f"x{i:02d}" for i in range(15)]
    with pytest.raises(NewsclfError, match="and 5 more") as error:
        EvaluationResult.from_predictions(CLASSES, None, labels, np.zeros((15, 3)))
    assert "'x00'" in str(error.value) and "'x14'" not in str(error.value)


def test_probabilities_are_computed_once_with_the_batch_size():
    class FakePredictor:
        classes_ = np.array(CLASSES, dtype=object)
        calls = []

        def classify(self, texts, batch_size=256):
            self.calls.append((list(texts), batch_size))
            return one_hot([0] * len(texts), 3), [None] * len(texts)

    fake = FakePredictor()
    result = evaluate(fake, ["甲", "乙"], ["体育", "科技"], batch_size=7)
    assert fake.calls == [(["甲", "乙"], 7)]
    assert result.accuracy == 0.5


def test_sample_model_scores_are_consistent_and_saved(predictor, tmp_path):
    dev = read_labelled(SAMPLE / "dev.tsv")
    result = evaluate(predictor, dev.texts, dev.labels)
    counts = result.confusion_matrix.to_numpy()
    trace = int(np.trace(counts))
    assert counts.sum() == result.n == len(dev)
    assert trace / counts.sum() == pytest.approx(result.accuracy)
    assert len(result.misclassified) == result.n - trace
    assert result.classes == list(predictor.classes_)
    assert sum(v["support"] for v in result.per_class.values()) == result.n
    assert counts.sum(axis=1).tolist() == [result.per_class[c]["support"] for c in result.classes]
    np.testing.assert_allclose(result.confusion_matrix_normalized.sum(axis=1), 1.0)
    train_metrics = json.loads((predictor.files.path / "metrics.json").read_text("utf-8"))
    assert result.macro_f1 == pytest.approx(train_metrics["dev_macro_f1"])  # same model, same data

    out = result.save(tmp_path / "eval_dev")
    names = {p.name for p in out.iterdir()}
    assert names == {"metrics.json", "classification_report.txt", "confusion_matrix.csv",
                     "confusion_matrix_normalized.csv", "misclassified.csv",
                     "confusion_matrix.png"}
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics == result.to_dict()
    assert metrics["accuracy"] == result.accuracy and metrics["n"] == len(dev)
    assert list(metrics["per_class"]) == result.classes

    assert (out / "confusion_matrix.csv").read_bytes().startswith(b"\xef\xbb\xbftrue\\predicted,")
    matrix = read_matrix(out / "confusion_matrix.csv")
    pd.testing.assert_frame_equal(matrix, result.confusion_matrix, check_names=False)
    normalized = read_matrix(out / "confusion_matrix_normalized.csv")
    np.testing.assert_allclose(normalized.to_numpy(),
                               result.confusion_matrix_normalized.to_numpy(), atol=1e-6)

    wrong = pd.read_csv(out / "misclassified.csv", encoding="utf-8-sig", dtype={"text": str})
    assert list(wrong.columns) == ["text", "true_label", "pred_label", "pred_score"]
    assert len(wrong) == result.n - trace
    assert list(wrong["text"]) == list(result.misclassified["text"])
    np.testing.assert_allclose(wrong["pred_score"], result.misclassified["pred_score"])
    pairs = wrong.groupby(["true_label", "pred_label"]).size()
    for (true, pred), count in pairs.items():
        assert matrix.loc[true, pred] == count

    report = (out / "classification_report.txt").read_text(encoding="utf-8")
    assert all(name in report for name in result.classes)
    assert f"{result.accuracy:.4f}" in report


def test_texts_without_a_prediction_count_as_errors_in_their_own_column(tmp_path):
    ids = [0, 1, 2, 0, 1]
    probabilities = one_hot(ids, 3, score=0.8)
    probabilities[3:] = 1 / 3  # what the predictor gives a text it cannot classify
    texts = ["甲", "乙", "丙", "😀😀", ""]
    result = EvaluationResult.from_predictions(CLASSES, texts, [CLASSES[i] for i in ids],
                                               probabilities, no_label=[0, 0, 0, 1, 1])
    assert result.accuracy == pytest.approx(3 / 5) and result.no_label == 2
    assert result.per_class["体育"]["recall"] == 0.5 and result.per_class["体育"]["precision"] == 1
    matrix = result.confusion_matrix
    assert list(matrix.columns) == CLASSES + ["(no label)"]
    assert matrix["(no label)"].tolist() == [1, 1, 0]
    assert matrix.to_numpy().sum(axis=1).tolist() == [2, 2, 1]  # every text in its true row
    np.testing.assert_allclose(result.confusion_matrix_normalized.sum(axis=1), 1.0)
    wrong = result.misclassified
    assert wrong["pred_label"].tolist() == ["(no label)", "(no label)"]
    assert wrong["text"].tolist() == ["😀😀", ""] and wrong["pred_score"].isna().all()
    assert "no label: 2 text(s)" in result.summary()
    assert "most confused (true → predicted): none between classes" in result.summary()
    assert "2 of 5 texts got no label (counted as errors): accuracy 0.6000" in result.report()
    every_one = EvaluationResult.from_predictions(CLASSES, None, CLASSES, np.full((3, 3), 1 / 3),
                                                  no_label=[1, 1, 1])
    assert every_one.accuracy == 0 and "no errors" not in every_one.summary()
    assert result.to_dict()["no_label"] == 2
    out = result.save(tmp_path / "report")
    saved = read_matrix(out / "confusion_matrix.csv")
    assert list(saved.columns) == CLASSES + ["(no label)"]
    assert (out / "confusion_matrix.png").read_bytes().startswith(PNG_SIGNATURE)


def test_evaluate_gives_no_label_where_predict_does(predictor, tmp_path):
    label = str(predictor.classes_[0])
    texts = ["😀😀😀", "🎉", "。。。", "股市今日大涨"]
    result = evaluate(predictor, texts, [label] * 4)
    labels = [best["label"] for best in predictor.predict(texts)]
    assert labels[:3] == [None, None, None]
    assert result.no_label == 3
    assert result.accuracy == (0.25 if labels[3] == label else 0.0)
    data = tmp_path / "odd.tsv"
    data.write_text("".join(f"{text}\t{label}\n" for text in texts), encoding="utf-8")
    run = run_cli("evaluate", "--model", predictor.files.path, "--data", data,
                  "--output", tmp_path / "report")
    assert run.returncode == 0, run.stderr
    assert "no label: 3 text(s)" in run.stdout + run.stderr
    wrong = pd.read_csv(tmp_path / "report" / "misclassified.csv", encoding="utf-8-sig")
    assert (wrong["pred_label"] == "(no label)").sum() == 3


def test_training_scores_dev_texts_without_a_prediction_as_evaluate_does(tmp_path, tiny_config):
    import dataclasses

    from newsclf import Predictor
    from newsclf.training import train

    dev = tmp_path / "dev.tsv"
    dev.write_text("".join((SAMPLE / "dev.tsv").read_text(encoding="utf-8")
                           .splitlines(keepends=True)[:40])
                   + "".join(f"😀🎉 {i}\t体育\n🚀🔥\t财经\n" for i in range(5)),
                   encoding="utf-8")
    model = tmp_path / "model"
    train(dataclasses.replace(tiny_config, epochs=1), read_labelled(SAMPLE / "train.tsv"),
          read_labelled(dev), model, progress=False, log=lambda message: None)
    metrics = json.loads((model / "metrics.json").read_text(encoding="utf-8"))
    saved = json.loads((model / "eval_dev" / "metrics.json").read_text(encoding="utf-8"))
    data = read_labelled(dev)
    # the network itself, as training scores it (an export differs in the last digits)
    again = evaluate(Predictor.from_dir(model, backend="dynamic"), data.texts, data.labels)
    assert saved["no_label"] == again.no_label == 5  # "😀🎉 0" has a known token: 0
    assert metrics["dev_accuracy"] == saved["accuracy"] == again.accuracy
    assert metrics["dev_macro_f1"] == pytest.approx(again.macro_f1)


def test_png_is_written(tmp_path):
    from PIL import Image

    ids = [0, 1, 2, 2, 1, 0, 0]
    result = EvaluationResult.from_predictions(CLASSES, None, [CLASSES[i] for i in ids],
                                               one_hot([0, 1, 2, 1, 1, 2, 0], 3, 0.8))
    result.save(tmp_path)
    data = (tmp_path / "confusion_matrix.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    with Image.open(tmp_path / "confusion_matrix.png") as image:
        width, height = image.size
    assert 400 <= width <= 4000 and 400 <= height <= 4000


def test_without_a_cjk_font_labels_become_class_numbers_and_one_warning(monkeypatch, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setattr(evaluation_plot, "find_cjk_font", lambda: None)
    monkeypatch.setattr(evaluation_plot, "_warned_missing_font", False)
    result = EvaluationResult.from_predictions(CLASSES, None, CLASSES, one_hot([0, 1, 2], 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ax = result.plot()
        result.plot()
        result.save(tmp_path)
    plt.close("all")
    font_warnings = [w for w in caught if issubclass(w.category, MissingFontWarning)]
    assert len(font_warnings) == 1
    message = str(font_warnings[0].message)
    assert "no CJK font" in message and "fonts-noto-cjk" in message
    assert "confusion_matrix.csv" in message
    assert [t.get_text() for t in ax.get_xticklabels()] == ["class 0", "class 1", "class 2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["class 0", "class 1", "class 2"]
    assert (tmp_path / "confusion_matrix.png").read_bytes().startswith(PNG_SIGNATURE)


def test_plot_uses_class_names_when_a_font_draws_them():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if evaluation_plot.find_cjk_font() is None:
        pytest.skip("no CJK font installed")
    result = EvaluationResult.from_predictions(CLASSES, None, CLASSES, one_hot([0, 1, 2], 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing-glyph warnings from matplotlib either
        ax = result.plot()
        ax.figure.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert "accuracy 1.0000" in ax.get_title()
    plt.close("all")


def test_ascii_class_names_need_no_cjk_font(monkeypatch):
    monkeypatch.setattr(evaluation_plot, "find_cjk_font", lambda: None)
    monkeypatch.setattr(evaluation_plot, "_warned_missing_font", False)
    classes = ["sports", "finance"]
    result = EvaluationResult.from_predictions(classes, None, classes, one_hot([0, 1], 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = result.plot_png()
    assert png.startswith(PNG_SIGNATURE)


def _stale_matplotlib_cache(monkeypatch, system_fonts, chars):
    """matplotlib's font cache as it was before the fonts with glyphs for ``chars`` were
    installed: they are only in the system font directories (``system_fonts``)."""
    from matplotlib import font_manager

    monkeypatch.setattr(font_manager.fontManager, "ttflist",
                        [entry for entry in font_manager.fontManager.ttflist
                         if not fonts.has_glyphs(entry.fname, chars)])
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *args, **kwargs: system_fonts)
    fonts.find_system_cjk_font.cache_clear()


def test_system_font_lookup_finds_a_font_matplotlibs_cache_does_not_list(monkeypatch, tmp_path):
    import shutil

    import matplotlib

    # a CJK font installed after matplotlib built its cache (a copy of the shipped font), and
    # a font without Chinese whose file name suggests CJK: it is tried first and rejected
    directory = tmp_path / "fonts"
    directory.mkdir()
    installed = directory / "NewlyInstalled-Regular.otf"
    shutil.copyfile(fonts.BUNDLED_FONT, installed)
    misnamed = directory / "wqy-latin-only.ttf"
    shutil.copyfile(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf"),
                    misnamed)
    try:
        _stale_matplotlib_cache(monkeypatch, [str(misnamed), str(installed)], "财经")
        assert fonts.find_system_cjk_font("财经") == str(installed)
    finally:
        fonts.find_system_cjk_font.cache_clear()


def test_system_font_for_characters_beyond_the_shipped_font_survives_a_stale_cache(monkeypatch):
    from matplotlib import font_manager

    beyond = "龘"  # not in GB2312, so not in the shipped font
    assert not fonts.has_glyphs(fonts.BUNDLED_FONT, beyond)
    system_fonts = font_manager.findSystemFonts()
    drawing = {os.path.realpath(path) for path in system_fonts if fonts.has_glyphs(path, beyond)}
    if not drawing:
        pytest.skip(f"no system font draws {beyond}")
    try:
        _stale_matplotlib_cache(monkeypatch, system_fonts, beyond)
        found = fonts.find_system_cjk_font(beyond)
        assert found is not None and os.path.realpath(found) in drawing
    finally:
        fonts.find_system_cjk_font.cache_clear()


def test_reports_are_never_written_over_a_model(tmp_path, sample_model, predictor):
    model = tmp_path / "model"
    shutil.copytree(sample_model, model)
    before = {path: path.read_bytes() for path in model.rglob("*") if path.is_file()}
    result = run_cli("evaluate", "--model", model, "--data", SAMPLE / "dev.tsv",
                     "--output", model)
    assert_user_error(result, f"{model}: is a newsclf model directory, and the reports would "
                              "replace its own metrics.json")
    with pytest.raises(NewsclfError, match="is a newsclf model directory"):
        evaluate(predictor, ["股市大涨"], [predictor.classes_[0]]).save(model)
    for inside in (model / "inference", model / "inference" / "reports"):
        result = run_cli("evaluate", "--model", model, "--data", SAMPLE / "dev.tsv",
                         "--output", inside)
        assert_user_error(result, f"{inside}: is inside the inference folder of the model in "
                                  f"{model.resolve()}, which newsclf replaces whole")
    assert {path: path.read_bytes() for path in model.rglob("*") if path.is_file()} == before
    assert not (model / "inference" / "reports").exists()


def test_reports_never_replace_the_users_files(tmp_path, sample_model, predictor):
    data = tmp_path / "d30.tsv"
    data.write_text("".join((SAMPLE / "dev.tsv").read_text(encoding="utf-8")
                            .splitlines(keepends=True)[:30]), encoding="utf-8")
    mine = tmp_path / "proj"
    mine.mkdir()
    (mine / "metrics.json").write_text('{"my": "results"}', encoding="utf-8")
    (mine / "classification_report.txt").write_text("notes", encoding="utf-8")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("x", encoding="utf-8")
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "misclassified.csv").write_text(
        "text,label\n" + data.read_text(encoding="utf-8").replace("\t", ","), encoding="utf-8")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    for output, data_file, fragment in (
            (mine, data, "but no metrics.json of an evaluation report"),
            (notes, data, "holds files that are not an evaluation report (todo.txt)"),
            (copy, copy / "misclassified.csv", "would replace the data being evaluated"),
            (data, data, "is a file; give a folder")):
        result = run_cli("evaluate", "--model", sample_model, "--data", data_file,
                         "--output", output)
        assert_user_error(result, f"{output}: ", fragment)
        refused = re.escape(fragment) if output is not copy else "but no metrics.json"
        with pytest.raises(NewsclfError, match=refused):
            evaluate(predictor, ["股市大涨"], [predictor.classes_[0]]).save(output)
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


def test_an_earlier_report_is_replaced(tmp_path, sample_model):
    data = tmp_path / "d30.tsv"
    lines = (SAMPLE / "dev.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    data.write_text("".join(lines[:30]), encoding="utf-8")
    output = tmp_path / "report"
    for rows in (30, 60):
        data.write_text("".join(lines[:rows]), encoding="utf-8")
        result = run_cli("evaluate", "--model", sample_model, "--data", data, "--output", output)
        assert result.returncode == 0, result.stderr
        assert json.loads((output / "metrics.json").read_text(encoding="utf-8"))["n"] == rows
        # what a report write killed midway leaves, or a file browser, is not foreign
        (output / ".metrics.json.123-0a1b2c3d.tmp").write_text("{", encoding="utf-8")
        (output / ".DS_Store").write_bytes(b"\0")


def test_labels_that_are_numbers_match_classes_named_by_them():
    class NumberedPredictor:
        classes_ = np.array([0, 10, 20])

        def classify(self, texts, batch_size=256):
            return one_hot([0, 1, 2], 3), [None] * 3

    result = evaluate(NumberedPredictor(), ["甲", "乙", "丙"], np.array([0, 10, 10]))
    assert result.accuracy == pytest.approx(2 / 3) and result.classes == ["0", "10", "20"]
    with pytest.raises(NewsclfError, match="label\\(s\\) '30' in 1 of 3"):
        evaluate(NumberedPredictor(), ["甲", "乙", "丙"], [0, 10, 30])


def test_evaluating_a_model_named_by_numbers_does_not_ask_for_class_names(tmp_path, tiny_config):
    import dataclasses

    from newsclf.training import train

    names = sorted(set(read_labelled(SAMPLE / "dev.tsv").labels))
    for name in ("train.tsv", "dev.tsv"):
        rows = read_labelled(SAMPLE / name)
        (tmp_path / name).write_text("".join(
            f"{text}\t{names.index(label)}\n" for text, label in zip(rows.texts, rows.labels)),
            encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(dataclasses.replace(tiny_config, epochs=1), read_labelled(tmp_path / "train.tsv"),
              None, tmp_path / "model", progress=False, log=lambda message: None)
    result = run_cli("evaluate", "--model", tmp_path / "model", "--data", tmp_path / "dev.tsv",
                     "--output", tmp_path / "report")
    assert result.returncode == 0, result.stderr
    assert "whole number" not in result.stderr and "accuracy" in result.stdout
