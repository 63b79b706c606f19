import json
import subprocess
import sys

import pytest

from conftest import SAMPLE, assert_user_error, run_cli


def test_help_is_fast_and_does_not_import_paddle():
    code = ("import sys; from newsclf.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('paddle' in sys.modules, 'pandas' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "train" in result.stdout and "predict" in result.stdout
    assert result.stdout.strip().endswith("False False")


def test_train_and_predict_end_to_end(tmp_path):
    out = tmp_path / "model"
    result = run_cli("train", "--train", SAMPLE / "train.tsv", "--dev", SAMPLE / "dev.tsv",
                     "--output", out, "--epochs", "2", "--d-model", "32", "--n-heads", "2",
                     "--d-ff", "64", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "dev accuracy" in result.stdout
    assert ("patience 3, distill_rounds 1 (chosen for 1000 training texts; give --patience / "
            "--distill-rounds to set them)") in result.stderr
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["model"]["d_model"] == 32
    training = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert training["settings"]["epochs"] == 2 and training["settings"]["d_model"] == 32
    result = run_cli("predict", "--model", out, "--text", "国足公布集训名单", "--text", "央行降息",
                     "--top-k", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().split("\n")
    assert len(lines) == 2 and lines[0].endswith("\t国足公布集训名单")


def test_config_file_and_flag_override(tmp_path):
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({"epochs": 1, "d_model": 16, "n_heads": 2, "d_ff": 32,
                                       "tokenizer": "char"}), encoding="utf-8")
    out = tmp_path / "model"
    result = run_cli("train", "--train", SAMPLE / "train.tsv", "--output", out, "--config",
                     config_path, "--tokenizer", "word", "--no-progress")
    assert result.returncode == 0, result.stderr
    saved = json.loads((out / "training.json").read_text(encoding="utf-8"))["settings"]
    assert saved["tokenizer"] == "word" and saved["d_model"] == 16 and saved["epochs"] == 1


def test_boolean_flags_are_real_switches(tmp_path):
    from newsclf.cli import build_parser
    from newsclf.cli.train import train_config

    parse = build_parser().parse_args
    base = ["train", "--train", "x", "--output", "y"]
    assert train_config(parse(base + ["--pre-ln"])).pre_ln is True
    assert train_config(parse(base + ["--no-pre-ln"])).pre_ln is False


def one_line_error(result):
    assert_user_error(result)
    return [line for line in result.stderr.strip().split("\n") if ": read as " not in line][0]


def test_user_errors_exit_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("好新闻\t财经\n没有标签的一行\n", encoding="utf-8")
    line = one_line_error(run_cli("train", "--train", bad, "--output", tmp_path / "m"))
    assert "bad.tsv:2: no tab" in line
    line = one_line_error(run_cli("train", "--train", tmp_path / "nope.tsv", "--output", tmp_path / "m"))
    assert "nope.tsv: file not found" in line
    line = one_line_error(run_cli("train", "--train", SAMPLE / "train.tsv", "--output",
                                  tmp_path / "m", "--d-model", "30", "--n-heads", "4"))
    assert "multiple of n_heads" in line
    line = one_line_error(run_cli("predict", "--model", tmp_path / "nomodel", "--text", "x"))
    assert "model directory not found" in line
    line = one_line_error(run_cli("info", bad))
    assert f"{bad}: is a file, not a model directory" in line
    config_path = tmp_path / "c.json"
    config_path.write_text('{"epoch": 3}', encoding="utf-8")
    line = one_line_error(run_cli("train", "--train", SAMPLE / "train.tsv", "--output",
                                  tmp_path / "m", "--config", config_path))
    assert "unknown setting(s) epoch" in line


def test_evaluate_writes_reports_that_agree(tmp_path, sample_model):
    import pandas as pd

    out = tmp_path / "eval"
    result = run_cli("evaluate", "--model", sample_model, "--data", SAMPLE / "dev.tsv",
                     "--output", out)
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    matrix = pd.read_csv(out / "confusion_matrix.csv", index_col=0, encoding="utf-8-sig")
    wrong = pd.read_csv(out / "misclassified.csv", encoding="utf-8-sig")
    assert matrix.values.sum() == metrics["n"] == 420
    assert abs(matrix.values.trace() / matrix.values.sum() - metrics["accuracy"]) < 1e-12
    assert len(wrong) == metrics["n"] - matrix.values.trace()
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_on_labels_the_model_does_not_know(tmp_path, sample_model):
    data = tmp_path / "other.tsv"
    data.write_text("新车上市引发关注\t汽车\n", encoding="utf-8")
    line = one_line_error(run_cli("evaluate", "--model", sample_model, "--data", data,
                                  "--output", tmp_path / "eval"))
    assert "'汽车'" in line and "not classes of the model" in line
    assert not (tmp_path / "eval").exists()


def test_training_saves_dev_evaluation_in_the_model_directory(sample_model):
    metrics = json.loads((sample_model / "metrics.json").read_text(encoding="utf-8"))
    dev = json.loads((sample_model / "eval_dev" / "metrics.json").read_text(encoding="utf-8"))
    assert dev["accuracy"] == metrics["dev_accuracy"] and dev["n"] == 420
    assert (sample_model / "eval_dev" / "confusion_matrix.png").is_file()


def test_baseline_command_scores_both_baselines():
    result = run_cli("baseline", "--train", SAMPLE / "train.tsv", "--dev", SAMPLE / "dev.tsv")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.strip().split("\n")[1:]}
    assert set(rows) == {"tfidf-char-svm", "tfidf-word-svm"}
    assert 0.3 < float(rows["tfidf-char-svm"][1]) <= 1.0


def test_baseline_macro_f1_averages_over_the_training_classes():
    from sklearn.metrics import f1_score

    from newsclf.baseline import make_baseline, run_baseline
    from newsclf.data import read_labelled

    train, dev = read_labelled(SAMPLE / "train.tsv"), read_labelled(SAMPLE / "dev.tsv")
    three = sorted(set(dev.labels))[:3]
    rows = [i for i, label in enumerate(dev.labels) if label in three]
    texts, labels = [dev.texts[i] for i in rows], [dev.labels[i] for i in rows]
    result = run_baseline("tfidf-char-svm", train.texts, train.labels, texts, labels)
    predicted = make_baseline("tfidf-char-svm").fit(train.texts, train.labels).predict(texts)
    classes = sorted(set(train.labels))
    assert len(classes) == 10
    assert result.macro_f1 == pytest.approx(f1_score(labels, predicted, labels=classes,
                                                     average="macro", zero_division=0))


def test_baseline_on_texts_with_nothing_to_learn_is_a_user_error(tmp_path):
    data = tmp_path / "blank.tsv"
    data.write_text("".join(f"\u200b\u200d\ufeff\t{'体育' if i % 2 else '娱乐'}\n"
                            for i in range(20)), encoding="utf-8")
    for model in ("tfidf-char-svm", "tfidf-word-svm"):
        result = run_cli("baseline", "--train", data, "--dev", data, "--label-column", "2",
                         "--model", model)
        assert_user_error(result, "have no", "left once normalized", model)


def test_explain_command_prints_prediction_and_writes_html(tmp_path, sample_model):
    page = tmp_path / "explain.html"
    result = run_cli("explain", "--model", sample_model, "--text", "主队加时赛绝杀晋级决赛",
                     "--html", page, "--no-color")
    assert result.returncode == 0, result.stderr
    assert "赛" in result.stdout
    assert "<html" in page.read_text(encoding="utf-8")


def test_damaged_model_directory_is_exit_2_on_every_command(tmp_path, sample_model):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(sample_model, broken)
    weights = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(weights[:100])
    for args in (["predict", "--model", broken, "--text", "股市"],
                 ["evaluate", "--model", broken, "--data", SAMPLE / "dev.tsv"],
                 ["explain", "--model", broken, "--text", "股市"],
                 ["export", "--model", broken]):
        line = one_line_error(run_cli(*args))
        assert "model.safetensors: does not match config.json" in line


def test_usage_errors_are_one_line_naming_the_command(tmp_path):
    unknown = run_cli("predict", "--model", tmp_path, "--text", "股市", "--bogus")
    assert_user_error(unknown, "newsclf predict: error: unrecognized arguments: --bogus "
                               "(see 'newsclf predict --help')")
    bad_value = run_cli("train", "--train", SAMPLE / "train.tsv", "--output", tmp_path / "m",
                        "--epochs", "many")
    assert_user_error(bad_value, "newsclf train: error: argument --epochs: invalid int value")
    assert not (tmp_path / "m").exists()
    before_the_command = run_cli("--bogus", "info", tmp_path)
    assert_user_error(before_the_command, "newsclf: error: unrecognized arguments: --bogus "
                                          "(see 'newsclf --help')")
    no_command = run_cli("predic")
    assert_user_error(no_command, "newsclf: error: argument COMMAND: invalid choice: 'predic'")


@pytest.mark.parametrize("arguments, message", [
    (["predict", "--text", "股市", "--top-k", "0"], "argument --top-k: must be a whole number of "
                                                     "at least 1, not '0'"),
    (["predict", "--text", "股市", "--batch-size", "-5"], "argument --batch-size: must be"),
    (["predict", "--input", "in.csv", "--output", "out.csv", "--workers", "0"],
     "argument --workers: must be"),
    (["evaluate", "--data", "dev.tsv", "--batch-size", "0"], "argument --batch-size: must be"),
    (["predict", "--text", "股市", "--excel"], "--excel goes with --input/--output"),
    (["predict", "--text", "股市", "--probabilities"],
     "--probabilities goes with --input/--output"),
    (["predict", "--text", "股市", "--text-column", "2", "--skip-rows", "1"],
     "--text-column, --skip-rows tell how to read an --input file"),
    (["predict", "--input", "news/*.csv", "--output", "out.csv"],
     "news/*.csv: file not found; newsclf reads one file here and does not expand * or ?"),
])
def test_counts_and_options_that_cannot_apply_are_refused_before_anything_loads(
        tmp_path, sample_model, arguments, message):
    # before: evaluate read the data, then said "batch_size must be ..." (the API's name), and
    # predict --text ignored --excel
    result = run_cli(arguments[0], "--model", sample_model, *arguments[1:])
    assert_user_error(result, message)


@pytest.mark.parametrize("device, fragment", [
    ("tpu", "device must be cpu, gpu or gpu:N (N from 0), not 'tpu'"),
    ("gpu:99", "--device gpu:99: this"),  # the CPU build, or fewer GPUs
])
def test_a_device_paddle_cannot_compute_on_is_refused_before_training(tmp_path, device,
                                                                      fragment):
    result = run_cli("train", "--train", SAMPLE / "train.tsv", "--output", tmp_path / "m",
                     "--device", device, "--no-progress")
    assert_user_error(result, fragment)
    assert not (tmp_path / "m").exists()


def test_a_model_trained_on_a_gpu_predicts_on_any_machine(tmp_path):
    from newsclf.runtime import configure_paddle

    paddle = configure_paddle()
    if not paddle.device.is_compiled_with_cuda() or paddle.device.cuda.device_count() == 0:
        pytest.skip("no GPU here: training on one needs paddlepaddle-gpu and a GPU")
    out = tmp_path / "model"
    result = run_cli("train", "--train", SAMPLE / "train.tsv", "--dev", SAMPLE / "dev.tsv",
                     "--output", out, "--epochs", "2", "--d-model", "32", "--n-heads", "2",
                     "--d-ff", "64", "--no-progress", "--device", "gpu")
    assert result.returncode == 0, result.stderr
    shown = run_cli("predict", "--model", out, "--text", "国足公布集训名单", "--backend", "onnx")
    assert shown.returncode == 0, shown.stderr
