"""Data-parallel training through Paddle's own launcher (2 CPU processes, gloo), started by
hand or by ``newsclf train --nproc-per-node``, and each process's share of the batches."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from newsclf import Predictor, evaluate
from newsclf.data import read_labelled
from newsclf.training.distributed import rank_share
from newsclf.training.loop import epoch_seed, shuffled_batches

from conftest import ROOT, SAMPLE, assert_user_error, run_cli

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
    assert result.n == metrics["n_dev"] == 420
    assert abs(result.accuracy - metrics["dev_accuracy"]) < 1e-9


def _rank_batches(lengths, batch_size, seed, world, rank):
    """What process ``rank`` of ``world`` trains on in the first epoch, as the loop draws it."""
    rng = np.random.RandomState(epoch_seed(seed, 1))
    return [rank_share(batch, world, rank)
            for batch in shuffled_batches(lengths, batch_size * world, rng)]


def test_each_process_takes_its_share_of_the_seeded_length_bucketed_batches():
    lengths = np.random.RandomState(0).randint(1, 300, size=16 * 12 + 1)  # last batch: 1 text
    world, batch_size = 2, 8
    shares = [_rank_batches(lengths, batch_size, 1, world, rank) for rank in range(world)]
    global_batches = shuffled_batches(lengths, batch_size * world,
                                      np.random.RandomState(epoch_seed(1, 1)))
    # every process takes every step, with at least one text and at most batch_size
    assert len(shares[0]) == len(shares[1]) == len(global_batches) == 13
    assert all(1 <= len(batch) <= batch_size for share in shares for batch in share)
    # together they cover every text of every global batch, and the texts of no other
    for step, batch in enumerate(global_batches):
        assert set(np.concatenate([share[step] for share in shares])) == set(batch)
    # similar lengths stay together
    spread = np.mean([np.ptp(lengths[batch]) for batch in shares[0]])
    assert spread < 0.1 * np.ptp(lengths)
    # the seed decides the order: the same seed the same batches, another seed others
    again = _rank_batches(lengths, batch_size, 1, world, 0)
    other = _rank_batches(lengths, batch_size, 2, world, 0)
    assert all(np.array_equal(a, b) for a, b in zip(shares[0], again))
    assert not all(np.array_equal(a, b) for a, b in zip(shares[0], other))


def _train_two_processes(tmp_path, name, seed):
    out = tmp_path / name
    result = subprocess.run(
        [sys.executable, "-m", "newsclf", "train", "--train", str(SAMPLE / "train.tsv"),
         "--dev", str(SAMPLE / "dev.tsv"), "--output", str(out), "--nproc-per-node", "2",
         "--epochs", "2", "--ensemble-size", "1", "--d-model", "32", "--n-heads", "2",
         "--n-layers", "1", "--d-ff", "64", "--batch-size", "16", "--min-freq", "1",
         "--no-progress", "--no-export", "--seed", str(seed)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
        text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "data-parallel training on 2 processes" in result.stderr  # the first process's lines
    assert "epoch 2/2" in result.stderr
    # the closing lines on stdout, once, as a single process prints them
    assert result.stdout.splitlines() == [result.stdout.splitlines()[0], f"model written to {out}"]
    assert result.stdout.startswith("dev accuracy ")
    assert json.loads((out / "training.json").read_text(encoding="utf-8"))["world_size"] == 2
    history = [json.loads(line) for line in
               (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
    return json.loads((out / "metrics.json").read_text(encoding="utf-8")), history


def test_newsclf_train_nproc_per_node_starts_the_launcher_and_each_seed_trains_its_own_way(
        tmp_path):
    metrics, history = _train_two_processes(tmp_path, "seed-1", seed=1)
    metrics_again, history_again = _train_two_processes(tmp_path, "seed-1-again", seed=1)
    _, history_other = _train_two_processes(tmp_path, "seed-2", seed=2)
    assert metrics == metrics_again
    untimed = [{k: v for k, v in record.items() if k not in ("epoch_seconds", "texts_per_second")}
               for record in history + history_again]
    assert untimed[:2] == untimed[2:]
    assert history[0]["train_loss"] != history_other[0]["train_loss"]


def test_nproc_per_node_failures_and_mistakes_are_one_line(tmp_path):
    for bad in ("0", "-2"):
        assert_user_error(run_cli("train", "--train", SAMPLE / "train.tsv", "--output",
                                  tmp_path / "model", "--nproc-per-node", bad),
                          "--nproc-per-node must be at least 1")
    # a failing process: its own error, then the line naming its log; the exit code passes
    result = run_cli("train", "--train", tmp_path / "missing.tsv", "--output",
                     tmp_path / "model", "--nproc-per-node", "2", cwd=tmp_path, in_process=False)
    assert result.returncode == 2, result.stderr
    assert "missing.tsv: file not found" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "process 0 failed (exit code 2); its log: " in last
    log = Path(last.rsplit(": ", 1)[1])
    assert "file not found" in log.read_text(encoding="utf-8")
    shutil.rmtree(log.parent)
