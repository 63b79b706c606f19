"""The ONNX Runtime engine: exported with the model, checked against the network, chosen
automatically, refused clearly when it cannot run, and predicting without importing Paddle."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SAMPLE, assert_user_error, run_cli
from newsclf import Predictor
from newsclf.data import read_labelled
from newsclf.errors import ModelDirError, NewsclfError

pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
pytest.importorskip("paddle2onnx", reason="paddle2onnx is not installed")


@pytest.fixture
def model_copy(tmp_path, sample_model):
    target = tmp_path / "model"
    shutil.copytree(sample_model, target)
    return target


def test_training_exports_an_onnx_graph_that_predicts_like_the_network(sample_model):
    info = json.loads((sample_model / "inference" / "export.json").read_text(encoding="utf-8"))
    assert info["onnx_skipped"] is None
    assert info["onnx_max_abs_logit_difference"] <= 1e-3
    assert "model.onnx" in info["files"]
    fast = Predictor.from_dir(sample_model)
    assert fast.backend == "onnx"
    texts = read_labelled(SAMPLE / "dev.tsv").texts + ["", "足球" * 200, "🙂"]
    dynamic = Predictor.from_dir(sample_model, backend="dynamic")
    np.testing.assert_allclose(fast.predict_proba(texts), dynamic.predict_proba(texts), atol=1e-4)
    assert [r["label"] for r in fast.predict(texts)] == [r["label"] for r in dynamic.predict(texts)]
    inference = Predictor.from_dir(sample_model, backend="inference")
    assert inference.backend == "inference"
    np.testing.assert_allclose(inference.predict_proba(texts), dynamic.predict_proba(texts),
                               atol=1e-4)


def test_prediction_on_onnx_never_imports_paddle(sample_model, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text('text\n央行宣布下调存款准备金率\n""\n主队加时赛绝杀晋级决赛\n', encoding="utf-8")
    script = f"""
import sys
from newsclf.cli import main
from newsclf import Predictor
for argv in (["predict", "--model", {str(sample_model)!r}, "--text", "股市大涨"],
             ["predict", "--model", {str(sample_model)!r}, "--input", {str(rows)!r},
              "--output", {str(tmp_path / "out.csv")!r}, "--no-progress"]):
    try:
        main(argv)
    except SystemExit as stop:
        assert not stop.code, stop.code
predictor = Predictor.from_dir({str(sample_model)!r})
predictor.predict_proba(["球队夺冠"])
assert predictor.backend == "onnx", predictor.backend
print("paddle imported:", "paddle" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "paddle imported: False" in result.stdout
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").count("\n") == 4
    assert "empty text" in (tmp_path / "out.csv").read_text(encoding="utf-8")


def test_the_network_is_still_there_when_asked_for(sample_model):
    predictor = Predictor.from_dir(sample_model)
    assert predictor.backend == "onnx"
    explanation = predictor.explain("主队加时赛绝杀晋级决赛")  # needs the network's attention
    assert explanation.label == predictor.predict(["主队加时赛绝杀晋级决赛"])[0]["label"]


def test_without_onnx_runtime_the_export_and_prediction_use_paddle_inference(
        model_copy, monkeypatch):
    import newsclf.model.inference as inference
    from newsclf.model.export import export_model

    monkeypatch.setattr(inference, "onnx_runtime_installed", lambda: False)
    info = export_model(model_copy)
    assert "ONNX Runtime is not installed" in info["onnx_skipped"]
    assert "pip install onnxruntime" in info["onnx_skipped"]
    assert not (model_copy / "inference" / "model.onnx").exists()
    assert Predictor.from_dir(model_copy).backend == "inference"
    with pytest.raises(ModelDirError, match=r'ONNX Runtime is not installed; pip install'):
        Predictor.from_dir(model_copy, backend="onnx")
    monkeypatch.undo()
    with pytest.raises(ModelDirError, match="has no ONNX graph.*newsclf export --model"):
        Predictor.from_dir(model_copy, backend="onnx")
    assert Predictor.from_dir(model_copy).backend == "inference"
    # a process of its own: the converter writes to the file descriptors, not sys.stdout
    result = run_cli("export", "--model", model_copy, in_process=False)
    assert result.returncode == 0, result.stderr
    assert "ONNX graph (max score difference" in result.stdout
    assert "Paddle2ONNX" not in result.stdout + result.stderr  # the converter's chatter is kept in
    assert Predictor.from_dir(model_copy).backend == "onnx"


def test_a_changed_or_stale_onnx_graph_is_never_used(model_copy, sample_model):
    onnx_file = model_copy / "inference" / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:-100])
    assert Predictor.from_dir(model_copy).backend == "inference"  # its graph is intact
    with pytest.raises(ModelDirError, match="model.onnx is missing or damaged"):
        Predictor.from_dir(model_copy, backend="onnx")
    result = run_cli("predict", "--model", model_copy, "--text", "股市大涨")
    assert result.returncode == 0, result.stderr  # on Paddle Inference, the same answer
    expected = Predictor.from_dir(sample_model).predict(["股市大涨"])[0]["label"]
    assert result.stdout.startswith(expected)


def test_an_onnx_graph_that_does_not_match_the_network_is_left_out(model_copy, monkeypatch):
    import newsclf.model.inference as inference
    from newsclf.model.export import export_model

    class Shifted(inference.OnnxEngine):
        def __call__(self, ids):
            return super().__call__(ids) + 0.01

    monkeypatch.setattr(inference, "OnnxEngine", Shifted)
    info = export_model(model_copy)
    assert "the ONNX graph's scores differ from the model's by 0.01" in info["onnx_skipped"]
    assert not (model_copy / "inference" / "model.onnx").exists()
    monkeypatch.undo()
    assert Predictor.from_dir(model_copy).backend == "inference"


def test_backend_onnx_on_the_command_line_errors_cleanly(model_copy):
    (model_copy / "inference" / "model.onnx").unlink()
    result = run_cli("predict", "--model", model_copy, "--backend", "onnx", "--text", "股市大涨")
    assert_user_error(result, "cannot run on ONNX Runtime", "newsclf export --model")



def test_an_export_removed_while_its_engine_starts_is_looked_at_again(model_copy, sample_model,
                                                                      monkeypatch):
    import newsclf.model.inference as inference

    export = model_copy / "inference"

    class RemovedMeanwhile(inference.OnnxEngine):
        def __init__(self, path, threads=1):
            shutil.rmtree(export, ignore_errors=True)  # after the checks, before the loading
            super().__init__(path, threads)

    monkeypatch.setattr(inference, "OnnxEngine", RemovedMeanwhile)
    predictor = Predictor.from_dir(model_copy)
    assert predictor.backend == "dynamic"
    texts = ["股市大涨", "球队夺冠"]
    expected = Predictor.from_dir(sample_model, backend="dynamic").predict_proba(texts)
    np.testing.assert_allclose(predictor.predict_proba(texts), expected, atol=1e-6)
    shutil.copytree(sample_model / "inference", export)
    with pytest.raises(ModelDirError, match="cannot run on ONNX Runtime: it has no inference "
                                            "export; run 'newsclf export --model"):
        Predictor.from_dir(model_copy, backend="onnx")


def test_exporting_again_replaces_the_export_whole(model_copy):
    from newsclf.model.export import export_model

    before = sorted(path.name for path in model_copy.iterdir())
    export_model(model_copy)
    assert sorted(path.name for path in model_copy.iterdir()) == before
    assert Predictor.from_dir(model_copy).backend == "onnx"


def test_an_export_folder_replaced_by_a_file_is_no_export_and_is_not_replaced(model_copy):
    from newsclf.model.export import export_model

    before = sorted(path.name for path in model_copy.iterdir())
    shutil.rmtree(model_copy / "inference")
    (model_copy / "inference").write_text("x", encoding="utf-8")
    assert Predictor.from_dir(model_copy).backend == "dynamic"
    result = run_cli("info", model_copy)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    # the file is not newsclf's: exporting would delete it (the library as the command)
    with pytest.raises(NewsclfError, match=r"holds files newsclf did not write \(inference\)"):
        export_model(model_copy)
    assert (model_copy / "inference").read_text(encoding="utf-8") == "x"
    (model_copy / "inference").unlink()
    export_model(model_copy)
    assert sorted(path.name for path in model_copy.iterdir()) == before
    assert Predictor.from_dir(model_copy).backend == "onnx"


def test_the_export_command_refuses_to_replace_a_file_or_link_of_the_users_named_inference(
        model_copy, tmp_path):
    shutil.rmtree(model_copy / "inference")
    (model_copy / "inference").write_text("mine", encoding="utf-8")
    assert_user_error(run_cli("export", "--model", model_copy),
                      "holds files newsclf did not write (inference)", "move them out first")
    assert (model_copy / "inference").read_text(encoding="utf-8") == "mine"
    (model_copy / "inference").unlink()
    (tmp_path / "elsewhere").mkdir()
    (model_copy / "inference").symlink_to(tmp_path / "elsewhere")
    assert_user_error(run_cli("export", "--model", model_copy),
                      "holds files newsclf did not write (inference)")
    assert (model_copy / "inference").is_symlink()


def test_exporting_again_refuses_to_delete_files_of_the_users_in_the_export_folder(model_copy):
    export = model_copy / "inference"
    before = {path.name: path.read_bytes() for path in export.iterdir()}
    (export / "notes.txt").write_text("my notes", encoding="utf-8")
    (export / "old").mkdir()
    result = run_cli("export", "--model", model_copy)
    assert_user_error(result, "holds files newsclf did not write (inference/notes.txt, "
                              "inference/old)", "move them out first")
    assert (export / "notes.txt").read_text(encoding="utf-8") == "my notes"
    assert {path.name: path.read_bytes() for path in export.iterdir()
            if path.name not in ("notes.txt", "old")} == before
    assert not [path for path in model_copy.iterdir() if path.name.startswith(".")]
