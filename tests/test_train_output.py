"""What ``newsclf train`` prints while it trains: one line per epoch for the whole ensemble
(members side by side, the same whether they train one after another or in worker processes),
the student's lines after them, and an early-stop line only when a model stopped before the last
epoch, saying which and after which epoch."""

import json
import os
import re
import subprocess
import sys

from newsclf.files import CRASH_ENV, CRASH_EXIT_STATUS

import pytest

from conftest import ROOT, sample_head

SMALL = ["--d-model", "32", "--ensemble-size", "2", "--no-export", "--no-progress"]
EPOCH_LINE = re.compile(r"^(student )?epoch +(\d+)/(\d+)  (.*)$")
FIELD = re.compile(r"(loss|dev acc|macro-F1) +([\d.-]+(?: \| +[\d.-]+)*)")
STOPPED = "-"


@pytest.fixture(scope="module")
def train_cli(tmp_path_factory):
    """``train_cli(out, *args, crash_at=None)``: ``newsclf train`` on the sample's first 400
    training and 120 dev headlines in a subprocess writing ``out``; returns its
    CompletedProcess."""
    folder = tmp_path_factory.mktemp("data")
    data = ["--train", sample_head(folder, "train.tsv", 400),
            "--dev", sample_head(folder, "dev.tsv", 120)]

    def run(out, *args, crash_at=None):
        env = {key: value for key, value in os.environ.items() if key != CRASH_ENV}
        if crash_at is not None:
            env[CRASH_ENV] = str(crash_at)
        result = subprocess.run([sys.executable, "-m", "newsclf", "train", *map(str, data + SMALL),
                                 "--output", str(out), *map(str, args)],
                                capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
        if crash_at is None:
            assert result.returncode == 0, result.stderr
        return result
    return run


def epoch_lines(stderr, student=False):
    """``(epoch, max epochs, {"loss": [...], "dev acc": [...], "macro-F1": [...]})`` for each
    epoch line (the student's with ``student``), a column per model."""
    lines = []
    for line in stderr.splitlines():
        match = EPOCH_LINE.match(line)
        if match and bool(match[1]) == student:
            lines.append((int(match[2]), int(match[3]),
                          {name: [value.strip() for value in values.split("|")]
                           for name, values in FIELD.findall(match[4])}))
    return lines


def shown_scores(record):
    return {"loss": f"{record['train_loss']:.3f}", "dev acc": f"{record['dev_accuracy']:.4f}",
            "macro-F1": f"{record['dev_macro_f1']:.4f}"}


def log_records(out):
    return [json.loads(line) for line in
            (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]


def without_timing(stderr):
    return [re.sub(r"  \(\d+s\)$", "", line) for line in stderr.splitlines()
            if EPOCH_LINE.match(line) or "stopped early" in line]


def test_one_line_per_epoch_with_the_members_side_by_side_whatever_the_workers(tmp_path,
                                                                              train_cli):
    runs = {workers: train_cli(tmp_path / f"workers-{workers}", "--epochs", 3, "--distill",
                               "--workers", workers) for workers in (1, 2)}
    stderr = runs[1].stderr
    lines = epoch_lines(stderr)
    assert [(epoch, epochs) for epoch, epochs, _ in lines] == [(1, 3), (2, 3), (3, 3)], stderr
    records = log_records(tmp_path / "workers-1")
    for epoch, _, shown in lines:
        members = [next(r for r in records if r.get("member") == m and r["epoch"] == epoch)
                   for m in (1, 2)]
        assert shown == {name: [shown_scores(r)[name] for r in members]
                         for name in ("loss", "dev acc", "macro-F1")}, stderr
    student = epoch_lines(stderr, student=True)
    assert [epoch for epoch, _, shown in student] == [1, 2, 3]
    assert all(len(shown["loss"]) == 1 for _, _, shown in student)
    # the student's lines come after all of the members'
    numbered = [line for line in stderr.splitlines() if EPOCH_LINE.match(line)]
    assert [line.startswith("student") for line in numbered] == [False] * 3 + [True] * 3
    assert "stopped early" not in stderr and "stopping early" not in stderr
    assert without_timing(runs[2].stderr) == without_timing(stderr)


def test_no_early_stop_line_when_patience_runs_out_at_the_last_epoch(tmp_path, train_cli):
    out = tmp_path / "m"
    stderr = train_cli(out, "--epochs", 2, "--patience", 1).stderr
    records = log_records(out)
    # the case this checks: a member's last epoch brought no gain, using up its patience
    assert any(second["dev_macro_f1"] <= first["dev_macro_f1"]
               for first, second in (sorted((r for r in records if r.get("member") == m),
                                            key=lambda r: r["epoch"]) for m in (1, 2)))
    assert [epoch for epoch, _, _ in epoch_lines(stderr)] == [1, 2], stderr
    assert "stopped early" not in stderr and "stopping early" not in stderr


def test_an_early_stop_says_which_member_and_after_which_epoch(tmp_path, train_cli):
    out, epochs = tmp_path / "m", 8
    stderr = train_cli(out, "--epochs", epochs, "--patience", 1).stderr
    members = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["members"]
    last_epochs = [member["epochs_run"] for member in members]
    assert min(last_epochs) < epochs, stderr  # the settings make a member stop early
    lines = stderr.splitlines()
    for number, last in enumerate(last_epochs, start=1):
        notes = [i for i, line in enumerate(lines) if line.startswith(f"member {number} stopped")]
        if last == epochs:
            assert notes == []
            continue
        assert [lines[i] for i in notes] == [f"member {number} stopped early after epoch {last} "
                                             "(no dev macro-F1 gain for 1 epoch)"], stderr
        assert lines[notes[0] - 1].startswith(f"epoch {last}/{epochs} "), stderr
    shown = epoch_lines(stderr)
    assert [epoch for epoch, _, _ in shown] == list(range(1, max(last_epochs) + 1)), stderr
    for epoch, _, columns in shown:
        for name, values in columns.items():
            assert [value == STOPPED for value in values] == [epoch > last
                                                              for last in last_epochs], stderr


def test_one_encoder_has_one_column(tmp_path, train_cli):
    stderr = train_cli(tmp_path / "m", "--epochs", 2, "--ensemble-size", 1).stderr
    lines = epoch_lines(stderr)
    assert [epoch for epoch, _, _ in lines] == [1, 2], stderr
    assert all(len(values) == 1 for _, _, shown in lines for values in shown.values())
    assert "|" not in stderr


def test_after_a_resume_the_lines_start_at_the_resumed_epoch(tmp_path, train_cli):
    out = tmp_path / "m"
    # members one after another, two writes (tensors, state) per epoch checkpoint: the crash
    # comes at member 2's second checkpoint, member 1 having finished
    crashed = train_cli(out, "--epochs", 3, "--workers", 1, crash_at=9)
    assert crashed.returncode == CRASH_EXIT_STATUS, crashed.stderr
    earlier = log_records(out)
    resumed = train_cli(out, "--epochs", 3, "--workers", 1, "--resume").stderr
    assert "member 1 already finished" in resumed and "member 2 resuming after epoch 1 " in resumed
    lines = epoch_lines(resumed)
    assert [epoch for epoch, _, _ in lines] == [2, 3], resumed
    # member 1's column comes from its checkpoint: what the interrupted run trained
    for epoch, _, shown in lines:
        record = next(r for r in earlier if r["member"] == 1 and r["epoch"] == epoch)
        assert {name: values[0] for name, values in shown.items()} == shown_scores(record)
