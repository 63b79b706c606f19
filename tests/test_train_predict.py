import json
import re

import numpy as np
import pytest

from newsclf import ModelDirError, Predictor, modeldir
from newsclf.data import read_labelled
from newsclf.errors import DataError
from newsclf.training import train

from conftest import FAST_BACKEND, SAMPLE


def test_model_directory_holds_every_file(sample_model):
    names = {p.name for p in sample_model.iterdir()}
    assert {"config.json", "vocab.json", "labels.json", "model.safetensors", "metrics.json",
            "train_log.jsonl", "training.json"} <= names
    config = json.loads((sample_model / "config.json").read_text(encoding="utf-8"))
    assert config["model"]["d_model"] == 64 and config["newsclf_version"]
    assert config["libraries"]["paddlepaddle"]
    metrics = json.loads((sample_model / "metrics.json").read_text(encoding="utf-8"))
    log = [json.loads(line) for line in (sample_model / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == metrics["epochs_run"]
    best = log[metrics["best_epoch"] - 1]
    assert metrics["dev_macro_f1"] == best["dev_macro_f1"] == max(r["dev_macro_f1"] for r in log)


def test_predict_returns_label_and_score_in_input_order(predictor):
    texts = ["沪深两市成交额突破万亿 券商股集体涨停", "", "高考志愿填报指南发布"]
    results = predictor.predict(texts)
    probabilities = predictor.predict_proba(texts)
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    for result, row in zip(results[::2], probabilities[::2]):
        assert result["label"] == predictor.classes_[row.argmax()]
        assert result["score"] == pytest.approx(row.max())
    assert results[1] == {"label": None, "score": None, "error": "empty text"}
    np.testing.assert_allclose(probabilities[1], 0.1, rtol=1e-6)
    assert list(predictor.classes_) == sorted(set(read_labelled(SAMPLE / "train.tsv").labels))


def test_top_k_is_sorted_and_consistent(predictor):
    [ranked] = predictor.predict(["国足备战世预赛"], top_k=3)
    assert len(ranked) == 3
    assert ranked[0]["score"] >= ranked[1]["score"] >= ranked[2]["score"]
    assert ranked[0] == predictor.predict(["国足备战世预赛"])[0]


def test_model_learned_something(sample_model):
    metrics = json.loads((sample_model / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["dev_accuracy"] > 0.25  # 10 classes: chance is 0.1


def test_same_seed_gives_identical_metrics(tmp_path, tiny_config, sample_model):
    data = read_labelled(SAMPLE / "train.tsv"), read_labelled(SAMPLE / "dev.tsv")
    train(tiny_config, *data, tmp_path / "again", progress=False, log=lambda m: None,
          export=False)
    assert (tmp_path / "again" / "metrics.json").read_bytes() == \
        (sample_model / "metrics.json").read_bytes()
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == \
        (sample_model / "model.safetensors").read_bytes()


def test_damaged_model_directories_are_refused(tmp_path, sample_model):
    import shutil

    def copy(name):
        target = tmp_path / name
        shutil.copytree(sample_model, target)
        return target

    with pytest.raises(ModelDirError, match="not found"):
        Predictor.from_dir(tmp_path / "absent")
    broken = copy("no_vocab")
    (broken / "vocab.json").unlink()
    with pytest.raises(ModelDirError, match="vocab.json: missing"):
        Predictor.from_dir(broken)
    truncated = copy("truncated")
    weights = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ModelDirError, match="model.safetensors: does not match"):
        Predictor.from_dir(truncated)
    edited = copy("edited")
    config = json.loads((edited / "config.json").read_text(encoding="utf-8"))
    config["model"]["d_model"] = 128
    (edited / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelDirError, match="config.json: edited after training"):
        Predictor.from_dir(edited)
    consistent = copy("consistent")  # edited with its checksum recomputed: the shapes disagree
    config["checksum"] = modeldir._checksum(config)
    (consistent / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelDirError, match="weights do not fit"):
        Predictor.from_dir(consistent)
    newer = copy("newer")
    config["model"]["d_model"] = 64
    config["format_version"] = 99
    (newer / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelDirError, match="newer"):
        Predictor.from_dir(newer)


def test_dev_class_unseen_in_training_is_refused(tmp_path, tiny_config):
    train_path = tmp_path / "train.tsv"
    train_path.write_text("股市大涨\t股票\n球队夺冠\t体育\n", encoding="utf-8")
    dev_path = tmp_path / "dev.tsv"
    dev_path.write_text("房价回稳\t房产\n", encoding="utf-8")
    with pytest.raises(DataError, match="房产 never occur in the training data"):
        train(tiny_config, read_labelled(train_path), read_labelled(dev_path), tmp_path / "m",
              progress=False, log=lambda m: None)
    one_class = tmp_path / "one.tsv"
    one_class.write_text("股市大涨\t股票\n股市大跌\t股票\n", encoding="utf-8")
    with pytest.raises(DataError, match="only one class"):
        train(tiny_config, read_labelled(one_class), None, tmp_path / "m",
              progress=False, log=lambda m: None)


def test_a_listed_class_no_training_text_has_is_refused(tmp_path, tiny_config):
    from newsclf.data import read_class_names

    train_path = tmp_path / "train.tsv"
    train_path.write_text("股市大涨\t股票\n球队夺冠\t体育\n", encoding="utf-8")
    with pytest.raises(DataError) as refused:
        train(tiny_config, read_labelled(train_path), None, tmp_path / "m", ["股票", "房产", "体育"],
              progress=False, log=lambda m: None)
    assert str(refused.value) == (
        f"class_names: no training text in {train_path} is labelled with class(es) '房产', so "
        "the model could not learn them; remove them from class_names or add training texts "
        "labelled with them")
    classes = tmp_path / "class.txt"
    classes.write_text("股票\n房产\n体育\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{re.escape(str(classes))}:2: no training text in "
                                        r".* class\(es\) '房产' \(line 2, id 1\).* \(if the "
                                        r"labels are class ids, removing a line changes the ids "
                                        r"of the lines below it\)$"):
        train(tiny_config, read_labelled(train_path), None, tmp_path / "m",
              read_class_names(classes), progress=False, log=lambda m: None)
    assert not (tmp_path / "m").exists()


def test_inference_export_is_used_and_matches_the_dynamic_graph(sample_model, predictor):
    assert predictor.backend == FAST_BACKEND
    dynamic = Predictor.from_dir(sample_model, backend="dynamic")
    assert dynamic.backend == "dynamic"
    texts = read_labelled(SAMPLE / "dev.tsv").texts + ["", "足球" * 200]
    np.testing.assert_allclose(predictor.predict_proba(texts), dynamic.predict_proba(texts),
                               atol=1e-4)


def test_stale_or_missing_export_falls_back_or_is_refused(tmp_path, sample_model):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(sample_model, copy)
    info_path = copy / "inference" / "export.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["model_fingerprint"] = "0" * 64
    info_path.write_text(json.dumps(info), encoding="utf-8")
    assert Predictor.from_dir(copy).backend == "dynamic"
    with pytest.raises(ModelDirError, match="stale"):
        Predictor.from_dir(copy, backend="inference")
    shutil.rmtree(copy / "inference")
    with pytest.raises(ModelDirError, match="no inference export"):
        Predictor.from_dir(copy, backend="inference")
    from newsclf.model.export import export_model

    export_model(copy)
    assert Predictor.from_dir(copy, backend="inference").backend == "inference"


def test_ensemble_trains_resumes_exports_and_explains(tmp_path, tiny_config):
    from newsclf.config import TrainConfig
    from newsclf.explain import explain
    from newsclf.modeldir import load_model_dir

    config = TrainConfig.from_dict({**tiny_config.to_dict(), "ensemble_size": 2, "epochs": 3,
                                    "distill": False})
    train_data, dev_data = read_labelled(SAMPLE / "train.tsv"), read_labelled(SAMPLE / "dev.tsv")
    full = train(config, train_data, dev_data, tmp_path / "full", progress=False,
                 log=lambda m: None).output_dir

    def interrupt_in_epoch_2(message):
        if message.startswith("epoch 2/3 "):  # once member 2 has finished its epoch 2
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, train_data, dev_data, tmp_path / "resumed", progress=False,
              log=interrupt_in_epoch_2, workers=1)
    resumed = train(config, train_data, dev_data, tmp_path / "resumed", progress=False,
                    log=lambda m: None, resume=True).output_dir
    for name in ("metrics.json", "model.safetensors"):
        assert (full / name).read_bytes() == (resumed / name).read_bytes()

    files = load_model_dir(full)
    assert files.spec.ensemble_size == 2
    assert {name.split(".")[1] for name in files.weights} == {"0", "1"}
    predictor = Predictor.from_dir(full)
    assert predictor.backend == FAST_BACKEND
    texts = dev_data.texts[:50]
    proba = predictor.predict_proba(texts)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(proba, Predictor.from_dir(full, backend="dynamic").predict_proba(texts),
                               atol=1e-4)
    explanation = explain(predictor, texts[0])
    assert explanation.attentions.shape[:2] == (config.n_layers, 2 * config.n_heads)
    assert explanation.label == predictor.predict([texts[0]])[0]["label"]
    metrics = json.loads((full / "metrics.json").read_text(encoding="utf-8"))
    assert [m["epochs_run"] for m in metrics["members"]] == [3, 3]
    assert len({m["seed"] for m in metrics["members"]}) == 2
    predicted = [p["label"] for p in predictor.predict(dev_data.texts)]
    accuracy = np.mean([p == t for p, t in zip(predicted, dev_data.labels)])
    assert accuracy == pytest.approx(metrics["dev_accuracy"])


@pytest.mark.parametrize("position", ["rotary", "relative"])
def test_relative_position_models_train_resume_export_and_explain(tmp_path, tiny_config, position):
    from newsclf.config import TrainConfig
    from newsclf.explain import explain

    config = TrainConfig.from_dict({**tiny_config.to_dict(), "position": position, "epochs": 3})
    train_data, dev_data = read_labelled(SAMPLE / "train.tsv"), read_labelled(SAMPLE / "dev.tsv")
    full = train(config, train_data, dev_data, tmp_path / "full", progress=False,
                 log=lambda m: None).output_dir

    def interrupt_in_epoch_2(message):
        if message.startswith("epoch 2/3 "):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, train_data, dev_data, tmp_path / "resumed", progress=False,
              log=interrupt_in_epoch_2)
    assert (tmp_path / "resumed" / "checkpoint").is_dir()
    resumed = train(config, train_data, dev_data, tmp_path / "resumed", progress=False,
                    log=lambda m: None, resume=True).output_dir
    for name in ("metrics.json", "model.safetensors"):
        assert (full / name).read_bytes() == (resumed / name).read_bytes()

    predictor = Predictor.from_dir(full)
    assert predictor.backend == FAST_BACKEND and predictor.spec.position == position
    texts = dev_data.texts[:50]
    np.testing.assert_allclose(predictor.predict_proba(texts),
                               Predictor.from_dir(full, backend="dynamic").predict_proba(texts),
                               atol=1e-4)
    explanation = explain(predictor, texts[0])
    assert explanation.attentions.shape[:2] == (config.n_layers, config.n_heads)
    assert explanation.label == predictor.predict([texts[0]])[0]["label"]


def test_worker_processes_do_not_rerun_a_script_without_main_guard(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    script = tmp_path / "unguarded.py"
    script.write_text(f"""
from newsclf import TrainConfig
from newsclf.data import read_labelled
from newsclf.predict import predict_file
from newsclf.training import train

print("script body ran", flush=True)
train(TrainConfig(d_model=32, n_heads=2, d_ff=64, epochs=1, min_freq=1, ensemble_size=2),
      read_labelled({str(SAMPLE / 'train.tsv')!r}), None, {str(tmp_path / 'm')!r},
      progress=False, export=False, workers=2)
predict_file({str(tmp_path / 'm')!r}, {str(SAMPLE / 'dev.tsv')!r}, {str(tmp_path / 'out.csv')!r},
             fmt="txt", workers=2, chunk_size=50, progress=False)
""", encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("script body ran") == 1
    n_dev = len((SAMPLE / "dev.tsv").read_text(encoding="utf-8").splitlines())
    assert len((tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()) == n_dev + 1


def test_a_run_interrupted_with_other_epochs_resumes_with_them(tmp_path, tiny_config):
    """A checkpoint made when epochs and patience were fixed settings (or given) resumes with
    the values it was started with, not with those the data size would choose now."""
    from newsclf.config import TrainConfig

    started_with = TrainConfig.from_dict({**tiny_config.to_dict(), "epochs": 2, "patience": 3})
    automatic = TrainConfig.from_dict({**tiny_config.to_dict(), "epochs": None})
    train_data, dev_data = read_labelled(SAMPLE / "train.tsv"), read_labelled(SAMPLE / "dev.tsv")
    assert automatic.for_training_size(len(train_data)).epochs != 2
    full = train(started_with, train_data, dev_data, tmp_path / "full", progress=False,
                 log=lambda m: None, export=False).output_dir

    def interrupt_in_epoch_2(message):
        if message.startswith("epoch 2/2 "):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(started_with, train_data, dev_data, tmp_path / "resumed", progress=False,
              log=interrupt_in_epoch_2, export=False)
    said = []
    resumed = train(automatic, train_data, dev_data, tmp_path / "resumed", progress=False,
                    log=said.append, resume=True, export=False).output_dir
    assert "epochs 2, patience 3 (as the interrupted run had them)" in said
    for name in ("metrics.json", "model.safetensors"):
        assert (full / name).read_bytes() == (resumed / name).read_bytes()


def _tiny_settings(**settings):
    from newsclf.config import TrainConfig

    return TrainConfig.from_dict({"d_model": 16, "n_heads": 2, "d_ff": 32, "batch_size": 16,
                                  "min_freq": 1, "seed": 7, "ensemble_size": 1, "epochs": 1,
                                  **settings})


@pytest.mark.parametrize("ensemble, whose", [([], ""),
                                              (["--ensemble-size", "2", "--workers", "2"],
                                               " of member [12]")])
def test_a_run_whose_loss_becomes_nan_stops_at_once_and_writes_no_model(tmp_path, ensemble,
                                                                        whose):
    """The loss read at every step stops the run the step it is not a finite number: one line,
    exit 2, nothing left of a run that saved no epoch. Members training in worker processes
    stop it the same way."""
    from conftest import run_cli, sample_head

    settings = tmp_path / "settings.json"
    settings.write_text('{"lr": 1e30}', encoding="utf-8")
    out = tmp_path / "model"
    result = run_cli("train", "--train", sample_head(tmp_path, "train.tsv", 60), "--dev",
                     sample_head(tmp_path, "dev.tsv", 120), "--output", out, "--config", settings,
                     "--epochs", "1", "--d-model", "16", "--n-heads", "2", "--d-ff", "32",
                     "--batch-size", "16", "--min-freq", "1", "--ensemble-size", "1", *ensemble)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert re.fullmatch(rf"newsclf train: error: training diverged: the loss{whose} became nan "
                        r"at epoch 1 \(step [23]\); lower --lr \(now 1e\+30\), then train again",
                        result.stderr.strip().splitlines()[-1]), result.stderr
    assert "epoch 1/1" not in result.stderr and "model written" not in result.stdout
    assert not out.exists()


def test_a_diverged_run_keeps_its_finished_epochs_and_says_how_to_train_again(tmp_path):
    """A run that diverges after a saved epoch keeps it, as an interrupted run would (the model
    of the epoch before predicts finite numbers); --resume would repeat the settings, so the
    message says to lower the learning rate and train again with --overwrite."""
    from newsclf.errors import NewsclfError, TrainingDiverged

    from conftest import sample_head

    train_data = read_labelled(sample_head(tmp_path, "train.tsv", 60))
    dev_data = read_labelled(sample_head(tmp_path, "dev.tsv", 120))
    out = tmp_path / "model"
    # warmed up over most of the steps: the learning rate reaches what blows up in epoch 2
    diverging = _tiny_settings(lr=1e4, warmup=0.9, epochs=3)
    with pytest.raises(TrainingDiverged) as diverged:
        train(diverging, train_data, dev_data, out, progress=False, log=lambda m: None)
    assert re.fullmatch(
        r"training diverged: the loss became nan at epoch 2 \(step [1-4]\); lower --lr \(now "
        rf"10000\), then train again with --overwrite \({re.escape(str(out))} keeps the "
        r"checkpoint of the epochs that finished, but --resume would continue with these "
        r"settings\)", str(diverged.value)), diverged.value
    assert (out / "checkpoint").is_dir() and not (out / "metrics.json").exists()
    assert [json.loads(line)["epoch"] for line in
            (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()] == [1]
    assert np.isfinite(Predictor.from_dir(out).predict_proba(dev_data.texts[:20])).all()

    lower = _tiny_settings(lr=2e-3, warmup=0.9, epochs=3)
    with pytest.raises(NewsclfError, match="holds an interrupted run"):
        train(lower, train_data, dev_data, out, progress=False, log=lambda m: None)
    with pytest.raises(NewsclfError, match=r"other settings \(lr 10000.0, now 0.002\)"):
        train(lower, train_data, dev_data, out, progress=False, log=lambda m: None, resume=True)
    train(lower, train_data, dev_data, out, progress=False, log=lambda m: None, overwrite=True,
          export=False)
    metrics = (out / "metrics.json").read_bytes()
    assert not (out / "checkpoint").exists()

    # an --overwrite run that diverges leaves the model it was to replace as it was
    with pytest.raises(TrainingDiverged, match=re.escape(
            f"then train again with --overwrite ({out} keeps its old model)")):
        train(_tiny_settings(lr=1e30), train_data, dev_data, out, progress=False,
              log=lambda m: None, overwrite=True)
    assert (out / "metrics.json").read_bytes() == metrics
    assert not (tmp_path / ".model.newsclf-staging").exists()


@pytest.mark.parametrize("with_dev", [True, False])
def test_weights_blown_up_by_an_epochs_last_step_are_never_saved(tmp_path, with_dev):
    """The last step of an epoch can blow the weights up after its loss was read: the
    predictions after the epoch (on the dev texts, else on a batch of training texts) stop the
    run before the epoch is saved; without clipping the message suggests it."""
    from newsclf.errors import TrainingDiverged

    from conftest import sample_head

    dev_data = read_labelled(sample_head(tmp_path, "dev.tsv", 120)) if with_dev else None
    with pytest.raises(TrainingDiverged) as diverged:
        train(_tiny_settings(lr=1e5, warmup=0.9, epochs=2, clip_norm=0.0),
              read_labelled(sample_head(tmp_path, "train.tsv", 60)), dev_data,
              tmp_path / "model", progress=False, log=lambda m: None)
    assert str(diverged.value) == (
        "training diverged: the predictions became nan after epoch 1; lower --lr (now 100000) "
        "or turn gradient clipping on (--clip-norm 1), then train again")
    assert not (tmp_path / "model").exists()


def test_a_student_whose_loss_becomes_nan_stops_the_run_and_the_members_are_kept(tmp_path):
    """The student's loss is checked where the members' is; its temperature scales it."""
    from newsclf.errors import TrainingDiverged

    from conftest import sample_head

    out = tmp_path / "model"
    with pytest.raises(TrainingDiverged) as diverged:
        train(_tiny_settings(ensemble_size=2, distill_temperature=1e30),
              read_labelled(sample_head(tmp_path, "train.tsv", 60)),
              read_labelled(sample_head(tmp_path, "dev.tsv", 120)), out, progress=False,
              log=lambda m: None, workers=1)
    assert re.fullmatch(
        r"training diverged: the loss of the student became nan at epoch 1 \(step \d\); lower "
        r"--lr \(now 0.001\) or --distill-temperature \(now 1e\+30\), then train again with "
        rf"--overwrite \({re.escape(str(out))} keeps the checkpoint of the epochs that "
        r"finished, but --resume would continue with these settings\)", str(diverged.value))
    assert sorted(p.name for p in (out / "checkpoint").iterdir()) == ["member-1", "member-2"]
    assert not (out / "config.json").exists()
