"""Interrupted and concurrent runs: kill -9, Ctrl-C, --resume, locks, parallel predictions."""

import json
import signal
import subprocess
import sys
import time

import pytest

from newsclf import ModelDirError, Predictor

from conftest import ROOT, SAMPLE, run_cli

TINY = ["--ensemble-size", "1", "--d-model", "64", "--n-heads", "2", "--n-layers", "1", "--d-ff", "128",
        "--batch-size", "16", "--lr", "0.002", "--min-freq", "1", "--seed", "3",
        "--patience", "20", "--no-progress", "--no-export"]


def train_args(out, epochs, *extra):
    return ["train", "--train", SAMPLE / "train.tsv", "--dev", SAMPLE / "dev.tsv", "--output",
            out, "--epochs", str(epochs), *TINY, *extra]


def start(args):
    return subprocess.Popen([sys.executable, "-m", "newsclf", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_epoch(out, epoch, process, timeout=300, member=None):
    state = out / "checkpoint" / (f"member-{member}" if member else "") / "state.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if json.loads(state.read_text(encoding="utf-8"))["epoch"] >= epoch:
                return
        except (OSError, ValueError, KeyError):
            pass
        if process.poll() is not None:
            pytest.fail(f"training ended before epoch {epoch}: {process.stderr.read()}")
        time.sleep(0.01)
    pytest.fail("training too slow")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "whole"
    result = run_cli(*train_args(out, 8))
    assert result.returncode == 0, result.stderr
    assert not (out / "checkpoint").exists()
    return out


def test_kill_9_then_resume_ends_like_an_uninterrupted_run(tmp_path, uninterrupted):
    out = tmp_path / "killed"
    process = start(train_args(out, 8))
    wait_for_epoch(out, 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    Predictor.from_dir(out)  # the best epoch so far loads
    result = run_cli(*train_args(out, 8), "--resume")
    assert result.returncode == 0, result.stderr
    assert "resuming after epoch" in result.stderr
    assert (out / "metrics.json").read_bytes() == (uninterrupted / "metrics.json").read_bytes()
    assert (out / "model.safetensors").read_bytes() == \
        (uninterrupted / "model.safetensors").read_bytes()


def test_ctrl_c_exits_cleanly_and_resumes(tmp_path, uninterrupted):
    out = tmp_path / "interrupted"
    process = start(train_args(out, 8))
    wait_for_epoch(out, 2, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr
    result = run_cli(*train_args(out, 8), "--resume")
    assert result.returncode == 0, result.stderr
    assert (out / "metrics.json").read_bytes() == (uninterrupted / "metrics.json").read_bytes()


@pytest.mark.parametrize("delay", [0.5, 1.5, 3.0, 4.5])
def test_kill_9_at_any_moment_leaves_a_loadable_or_refused_directory(tmp_path, delay):
    out = tmp_path / "model"
    process = start(train_args(out, 30))
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    try:
        predictor = Predictor.from_dir(out)
    except ModelDirError:
        return  # refused with a clear error: acceptable
    assert len(predictor.predict(["股市大涨"])) == 1


def test_resume_with_other_settings_or_nothing_to_resume_is_refused(tmp_path, uninterrupted):
    result = run_cli(*train_args(uninterrupted, 8), "--resume")
    assert result.returncode == 2 and "no checkpoint to resume from" in result.stderr
    out = tmp_path / "m"
    process = start(train_args(out, 8))
    wait_for_epoch(out, 1, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    result = run_cli(*train_args(out, 8), "--resume", "--lr", "0.01")
    assert result.returncode == 2 and "checkpoint was made with other config" in result.stderr


def test_second_training_into_the_same_directory_is_refused(tmp_path):
    out = tmp_path / "m"
    first = start(train_args(out, 30))
    wait_for_epoch(out, 1, first)
    second = run_cli(*train_args(out, 2))
    first.kill()
    first.wait()
    assert second.returncode == 2
    assert "another 'newsclf train'" in second.stderr


def test_two_predictions_on_one_model_at_once(tmp_path, uninterrupted):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(["股市大涨", "球队夺冠", "房价回落"] * 200), encoding="utf-8")
    processes = [start(["predict", "--model", uninterrupted, "--input", source, "--output",
                        tmp_path / f"out{i}.csv", "--no-progress"]) for i in range(2)]
    for process in processes:
        process.wait(timeout=300)
        assert process.returncode == 0, process.stderr.read()
    assert (tmp_path / "out0.csv").read_bytes() == (tmp_path / "out1.csv").read_bytes()


def member_epochs(out):
    return [json.loads(path.read_text(encoding="utf-8"))["epoch"]
            for path in sorted((out / "checkpoint").glob("member-*/state.json"))]


def test_ensemble_stops_with_its_parent_and_resumes(tmp_path):
    ensemble = ("--ensemble-size", "2", "--workers", "2")
    whole = tmp_path / "whole"
    result = run_cli(*train_args(whole, 12, *ensemble))
    assert result.returncode == 0, result.stderr
    assert json.loads((whole / "metrics.json").read_text())["ensemble_size"] == 2

    out = tmp_path / "ctrl-c"
    process = start(train_args(out, 12, *ensemble))
    wait_for_epoch(out, 2, process, member=1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr
    stopped_at = member_epochs(out)
    time.sleep(3)
    assert member_epochs(out) == stopped_at  # no member process kept training

    process = start(train_args(out, 12, *ensemble, "--resume"))
    wait_for_epoch(out, stopped_at[0] + 1, process, member=1)
    process.send_signal(signal.SIGKILL)  # the parent only: its members must stop by themselves
    process.wait()
    time.sleep(3)
    stopped_at = member_epochs(out)
    time.sleep(3)
    assert member_epochs(out) == stopped_at

    result = run_cli(*train_args(out, 12, *ensemble, "--resume"))
    assert result.returncode == 0, result.stderr
    for name in ("metrics.json", "model.safetensors"):
        assert (out / name).read_bytes() == (whole / name).read_bytes()
