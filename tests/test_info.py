"""newsclf info and repr(Predictor): what a model directory is, without running it."""

import json
import subprocess
import sys

from conftest import FAST_BACKEND, assert_user_error, run_cli


def test_info_shows_classes_scores_settings_and_engines(sample_model):
    result = run_cli("info", sample_model)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((sample_model / "metrics.json").read_text(encoding="utf-8"))
    classes = json.loads((sample_model / "labels.json").read_text(encoding="utf-8"))
    out = result.stdout
    assert f"classes      {len(classes)}: {' '.join(classes)}" in out
    assert f"accuracy {metrics['dev_accuracy']:.4f}, macro-F1 {metrics['dev_macro_f1']:.4f}" in out
    assert "predicts     with one encoder" in out
    assert "model format 2" in out
    trained = next(line for line in out.split("\n") if line.startswith("  trained "))
    assert "ensemble_size 1" in trained and "distill" not in trained  # nothing was distilled
    assert f"(auto)     {FAST_BACKEND}" in out
    for engine in ("onnx", "inference", "dynamic"):
        assert f" {engine:<10} available" in out or f" {engine:<10} not available: " in out


def test_info_as_json_and_without_paddle(sample_model):
    described = json.loads(run_cli("info", sample_model, "--json").stdout)
    assert described["classes"] == json.loads((sample_model / "labels.json").read_text("utf-8"))
    assert described["model"]["tokenizer"] == "mixed"
    assert described["parameters"] > 0 and described["bytes"]["model"] > 0
    assert described["backend_auto"] == FAST_BACKEND
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from newsclf.info import model_info; "
         f"model_info({str(sample_model)!r}); print('paddle' in sys.modules)"],
        capture_output=True, text=True, timeout=120)
    assert probe.stdout.strip() == "False", probe.stderr


def test_info_refuses_what_is_not_a_model_in_one_line(tmp_path, sample_model):
    assert_user_error(run_cli("info", tmp_path), str(tmp_path))
    edited = tmp_path / "edited"
    edited.mkdir()
    for item in sample_model.iterdir():
        if item.is_file():
            (edited / item.name).write_bytes(item.read_bytes())
    (edited / "labels.json").write_text('["a"]', encoding="utf-8")
    assert_user_error(run_cli("info", edited), "labels.json: does not match config.json")


def test_predictor_repr_names_the_model_and_its_dev_accuracy(predictor, sample_model):
    metrics = json.loads((sample_model / "metrics.json").read_text(encoding="utf-8"))
    text = repr(predictor)
    assert text.startswith(f"Predictor({str(sample_model)!r}, classes=10, tokenizer='mixed'")
    assert f"backend={predictor.backend!r}" in text
    assert text.endswith(f"dev_accuracy={metrics['dev_accuracy']:.4f})")


def test_info_takes_the_model_as_the_other_commands_do(sample_model):
    positional = run_cli("info", sample_model)
    option = run_cli("info", "--model", sample_model)
    assert positional.returncode == option.returncode == 0, option.stderr
    assert option.stdout == positional.stdout
    assert_user_error(run_cli("info"), "give one model directory: newsclf info DIR")


def test_info_on_a_missing_or_edited_metrics_record(tmp_path, sample_model):
    import shutil

    from newsclf.info import format_info, model_info

    model = tmp_path / "model"
    shutil.copytree(sample_model, model)
    record = model / "metrics.json"
    for content, shown in ((None, "no dev scores (metrics.json is missing, unreadable or edited)"),
                           ("{bad", "no dev scores (metrics.json is missing, unreadable or edited)"),
                           ('{"dev_accuracy": 0.5}', "no dev scores (metrics.json is missing"),
                           ('{"dev_accuracy": "high", "dev_macro_f1": 0.5}', "no dev scores ("),
                           ('{"n_train": 400, "n_dev": 0}', "no dev scores (trained without --dev)"),
                           ('{"predicts_with": "student", "student_rounds": 3}',
                            "predicts     with one student encoder distilled from an ensemble\n")):
        record.unlink(missing_ok=True)
        if content is not None:
            record.write_text(content, encoding="utf-8")
        result = run_cli("info", model)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert shown in result.stdout
        assert shown in format_info(model_info(model))


def test_info_on_an_edited_training_record(tmp_path, sample_model):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(sample_model, model)
    for content, shown in (('{"settings": [1]}', None),
                           ('{"settings": {"ensemble_size": "2", "lr": 0.001}}',
                            "trained      lr 0.001, ensemble_size 2\n"),
                           ("[]", None), ("{bad", None)):
        (model / "training.json").write_text(content, encoding="utf-8")
        result = run_cli("info", model)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        if shown is None:  # nothing to show of the training settings
            assert "  trained " not in result.stdout
        else:
            assert shown in result.stdout


def test_a_directory_of_an_unfinished_run_is_named_as_training_names_it(tmp_path, monkeypatch):
    from conftest import sample_head
    from newsclf.files import CRASH_ENV

    train, dev = sample_head(tmp_path, "train.tsv", 200), sample_head(tmp_path, "dev.tsv", 40)
    settings = ["--d-model", "32", "--n-heads", "2", "--d-ff", "64", "--epochs", "2",
                "--min-freq", "1", "--no-export", "--no-progress"]
    # killed: an ensemble member after its first epoch's checkpoint (every process ends at its
    # third write), and one encoder at its first (the training log alone)
    for name, crash_at, members, said in (
            ("interrupted", 3, ["--ensemble-size", "2", "--no-distill", "--workers", "1"],
             "holds an interrupted run; continue it with --resume"),
            ("stopped", 1, ["--ensemble-size", "1"],
             "holds the files of a run stopped before its first epoch was saved")):
        out = tmp_path / name
        monkeypatch.setenv(CRASH_ENV, str(crash_at))
        run_cli("train", "--train", train, "--dev", dev, "--output", out, *members, *settings)
        monkeypatch.delenv(CRASH_ENV)
        assert not (out / "config.json").exists()
        assert_user_error(run_cli("train", "--train", train, "--output", out), said)
        assert_user_error(run_cli("info", out), f"{out}: no model to load yet: it {said}",
                          f"(newsclf train --output {out})")
        assert_user_error(run_cli("predict", "--model", out, "--text", "沪指放量上涨"), said)
