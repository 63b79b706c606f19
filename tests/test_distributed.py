"""Data-parallel training through Paddle's own launcher (2 CPU processes, gloo)."""

import json
import os
import subprocess
import sys

import pytest

from newsclf import Predictor, evaluate
from newsclf.data import read_labelled

from conftest import ROOT, SAMPLE

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("ensemble_size", [1, 2])
def test_two_process_training_through_paddle_distributed_launch(tmp_path, ensemble_size):
    entry = tmp_path / "newsclf_entry.py"  # the launcher runs a script; this is `newsclf`
    entry.write_text("import sys\nfrom newsclf.cli import main\nsys.exit(main())\n")
    out = tmp_path / "model"
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
               "--log_dir", str(tmp_path / "logs"), "--", str(entry), "train",
               "--train", str(SAMPLE / "train.tsv"), "--dev", str(SAMPLE / "dev.tsv"),
               "--output", str(out), "--epochs", "4", "--d-model", "64", "--n-heads", "2",
               "--n-layers", "1", "--d-ff", "128", "--batch-size", "16", "--lr", "0.002",
               "--min-freq", "1", "--no-progress", "--no-export",
               "--ensemble-size", str(ensemble_size), "--distill"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=900)
    logs = "\n".join(p.read_text(errors="replace") for p in sorted((tmp_path / "logs").glob("workerlog.*")))
    assert result.returncode == 0, logs[-3000:]
    training = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert training["world_size"] == 2
    assert "data-parallel training on 2 processes" in logs
    log_lines = (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    members = metrics.get("members", [metrics])
    assert len(members) == ensemble_size
    # an ensemble is distilled into a student, data-parallel too, after its members
    assert ("student" in metrics) == (ensemble_size > 1)
    encoders = members + ([metrics["student"]] if ensemble_size > 1 else [])
    assert len(log_lines) == sum(encoder["epochs_run"] for encoder in encoders)

    # the dev scores gathered across ranks are those of the saved model on the whole dev set
    dev = read_labelled(SAMPLE / "dev.tsv")
    result = evaluate(Predictor.from_dir(out), dev.texts, dev.labels)
    assert result.n == metrics["n_dev"] == 120
    assert abs(result.accuracy - metrics["dev_accuracy"]) < 1e-9
