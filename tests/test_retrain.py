"""Training into a directory that already holds something: refused unless asked for, a model
replaced only once its successor is complete, folders of other files never touched, and one
run at a time per directory (the lock also covers ``--overwrite`` runs)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from newsclf import NewsclfError, Predictor, TrainConfig
from newsclf.data import read_labelled
from newsclf.files import CRASH_ENV, CRASH_EXIT_STATUS
from newsclf.training import train

from conftest import ROOT, SAMPLE, assert_user_error, run_cli

TINY = ["--ensemble-size", "1", "--d-model", "32", "--n-heads", "2", "--d-ff", "32",
        "--min-freq", "1", "--no-progress"]
OLD = ["--epochs", "1", "--seed", "1", "--dev", SAMPLE / "dev.tsv"]  # with eval_dev/, inference/
NEW = ["--epochs", "2", "--seed", "2", "--no-export"]  # no dev set: no eval_dev/
TEXTS = ["沪指放量上涨 券商板块集体走强", "教育部发布高考报名新规", "主队加时赛绝杀晋级决赛"]
STAGING = ".m.newsclf-staging"


def train_cli(out, *extra):
    return run_cli("train", "--train", SAMPLE / "train.tsv", "--output", out, *TINY, *extra)


def snapshot(directory):
    """Every file under ``directory`` (hidden ones too), path -> bytes."""
    return {str(path.relative_to(directory)): path.read_bytes()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def model_files(directory):
    """``snapshot`` but the training log (it holds timings) and temporary files a killed write
    left behind."""
    return {name: blob for name, blob in snapshot(directory).items()
            if name != "train_log.jsonl" and not name.endswith(".tmp")}


def refusal(result):
    """The one line a refused run prints (exit 2, no traceback)."""
    assert_user_error(result)
    return [line for line in result.stderr.strip().splitlines() if ": read as " not in line][0]


def lock(directory):
    """The lock a training run into ``directory`` takes (imported here: the rest of this file
    runs against a newsclf without it)."""
    from newsclf.training.lock import OutputDirectory

    return OutputDirectory(directory, overwrite=True, resume=False).lock()


def probabilities(directory):
    return Predictor.from_dir(directory).predict_proba(TEXTS)


@pytest.fixture(scope="module")
def old_model(tmp_path_factory):
    """A model directory as a finished run with a dev set and the export leaves it."""
    out = tmp_path_factory.mktemp("old") / "m"
    result = train_cli(out, *OLD)
    assert result.returncode == 0, result.stderr
    assert (out / "eval_dev").is_dir() and (out / "inference").is_dir()
    return out


@pytest.fixture(scope="module")
def new_reference(tmp_path_factory):
    """The model the new settings give in an empty directory: what an overwrite must leave."""
    out = tmp_path_factory.mktemp("new") / "m"
    result = train_cli(out, *NEW)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def target(tmp_path, old_model):
    """A copy of the old model, alone in its parent folder."""
    out = tmp_path / "models" / "m"
    shutil.copytree(old_model, out)
    return out


def python_train(out, **options):
    return train(TrainConfig(ensemble_size=1, d_model=32, n_heads=2, d_ff=32, epochs=1),
                 read_labelled(SAMPLE / "train.tsv"), None, out, progress=False,
                 log=lambda message: None, export=False, **options)


def test_a_model_directory_is_kept_unless_overwrite_is_given(target):
    before = snapshot(target)
    line = refusal(train_cli(target, *NEW))
    assert line == (f"newsclf train: error: {target}: already holds a model; pass --overwrite "
                    "to replace it (it keeps loading until the new one is complete), or choose "
                    "another --output")
    line = refusal(train_cli(target, *NEW, "--resume"))
    assert line == (f"newsclf train: error: {target}: no checkpoint to resume from: its model "
                    "is finished; pass --overwrite without --resume to replace it")
    with pytest.raises(NewsclfError, match="already holds a model; pass --overwrite"):
        python_train(target)
    assert snapshot(target) == before
    assert os.listdir(target.parent) == ["m"]  # no lock or staging directory left beside it


def test_a_folder_of_other_files_is_never_written_even_with_overwrite(tmp_path):
    notes = tmp_path / "notes"
    (notes / "drafts").mkdir(parents=True)
    (notes / "todo.txt").write_text("keep me", encoding="utf-8")
    (notes / "drafts" / "a.md").write_text("# a", encoding="utf-8")
    # another tool's model: a config.json that is not newsclf's, next to names newsclf uses
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (other / "vocab.json").write_text("{}", encoding="utf-8")
    before = {folder: snapshot(folder) for folder in (notes, other)}
    for flags in ([], ["--overwrite"], ["--resume"], ["--overwrite", "--resume"]):
        line = refusal(train_cli(notes, *NEW, *flags))
        prefix = "no checkpoint to resume from: it " if "--resume" in flags else ""
        assert line == (f"newsclf train: error: {notes}: {prefix}holds files that are not a "
                        "newsclf model (drafts, todo.txt); training never writes into or "
                        "replaces such a folder: choose another --output"), flags
    # files named as newsclf names its own, in a folder that holds no model nor checkpoint
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("vocab.json", "metrics.json"):
        (mine / name).write_text("[]", encoding="utf-8")
    # a folder named as newsclf's checkpoints, holding something else
    started = tmp_path / "started"
    (started / "checkpoint").mkdir(parents=True)
    (started / "checkpoint" / "notes.txt").write_text("keep me", encoding="utf-8")
    before.update({folder: snapshot(folder) for folder in (mine, started)})
    assert "holds files that are not a newsclf model (config.json, vocab.json)" in refusal(
        train_cli(other, *NEW, "--overwrite"))
    for flags in ([], ["--overwrite"]):
        assert "holds files that are not a newsclf model (metrics.json, vocab.json)" in refusal(
            train_cli(mine, *NEW, *flags))
        assert "holds files that are not a newsclf model (checkpoint/notes.txt)" in refusal(
            train_cli(started, *NEW, *flags))
    with pytest.raises(NewsclfError, match="holds files that are not a newsclf model"):
        python_train(notes, overwrite=True)
    assert {folder: snapshot(folder) for folder in before} == before
    assert sorted(os.listdir(tmp_path)) == ["mine", "notes", "other", "started"]


def test_overwrite_leaves_exactly_the_new_model(target, new_reference):
    result = train_cli(target, *NEW, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert f"the new model replaced the old one in {target}" in result.stderr
    # as trained in an empty directory: no stale eval_dev/ or inference/, no checkpoint
    assert sorted(snapshot(target)) == sorted(snapshot(new_reference))
    assert model_files(target) == model_files(new_reference)
    assert os.listdir(target.parent) == ["m"]
    np.testing.assert_array_equal(probabilities(target), probabilities(new_reference))


def test_an_interrupted_overwrite_keeps_the_old_model_and_resumes(target, old_model,
                                                                  new_reference, monkeypatch):
    before = snapshot(target)
    monkeypatch.setenv(CRASH_ENV, "8")  # the first write after epoch 1's checkpoint
    crashed = train_cli(target, *NEW, "--overwrite")
    monkeypatch.delenv(CRASH_ENV)
    assert crashed.returncode == CRASH_EXIT_STATUS, crashed.stderr
    staging = target.parent / STAGING
    assert json.loads((staging / "checkpoint" / "state.json").read_text())["epoch"] == 1
    # the target is the old model, untouched, and predicts as it did
    assert snapshot(target) == before
    np.testing.assert_array_equal(probabilities(target), probabilities(old_model))

    line = refusal(train_cli(target, *NEW))
    assert line.endswith("or choose another --output; its interrupted --overwrite run "
                         "continues with --overwrite --resume")
    line = refusal(train_cli(target, *NEW, "--resume"))
    assert line == (f"newsclf train: error: {target}: its interrupted run is an --overwrite "
                    "run; continue it with --overwrite --resume")
    assert snapshot(target) == before

    resumed = train_cli(target, *NEW, "--overwrite", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 1 " in resumed.stderr
    assert model_files(target) == model_files(new_reference)  # as the uninterrupted run
    assert os.listdir(target.parent) == ["m"]


def test_a_running_overwrite_holds_the_lock_while_the_old_model_serves(target, old_model):
    before = snapshot(target)
    state = target.parent / STAGING / "checkpoint" / "state.json"
    first = subprocess.Popen(
        [sys.executable, "-m", "newsclf", "train", "--train", SAMPLE / "train.tsv", "--output",
         target, *TINY, "--epochs", "50", "--seed", "3", "--no-export", "--overwrite"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not state.exists():
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        first.send_signal(signal.SIGSTOP)  # mid-run, holding the lock, until killed
        assert snapshot(target) == before
        np.testing.assert_array_equal(probabilities(target), probabilities(old_model))
        others = [subprocess.Popen(
            [sys.executable, "-m", "newsclf", "train", "--train", SAMPLE / "train.tsv",
             "--output", target, *TINY, *flags], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
            for flags in ([], ["--overwrite"], ["--resume"], ["--overwrite", "--resume"])]
        for other in others:
            _, stderr = other.communicate(timeout=120)
            assert other.returncode == 2, stderr
            assert (f"{target}: another 'newsclf train' (pid {first.pid}) is writing this "
                    "directory; wait for it or choose another --output") in stderr
    finally:
        first.kill()  # like a kill -9 mid-run
        first.communicate()
    assert snapshot(target) == before  # neither the refused runs nor the killed one changed it
    with lock(target):
        pass  # the killed run's lock went with it


def test_the_lock_refuses_every_run_into_a_locked_directory(target, tmp_path):
    before = snapshot(target)
    owner = f"another 'newsclf train' (pid {os.getpid()}) is writing this directory"
    with lock(target):
        assert owner in train_cli(target, *NEW, "--overwrite").stderr
        fresh = tmp_path / "models" / "fresh"
        with lock(fresh):
            with pytest.raises(NewsclfError, match=re.escape(f"{fresh}: {owner}")):
                python_train(fresh)
        assert not fresh.exists()
    assert snapshot(target) == before
    assert os.listdir(target.parent) == ["m"]


def test_an_interrupted_run_without_a_model_needs_resume_or_overwrite(tmp_path, monkeypatch):
    out = tmp_path / "models" / "m"
    ensemble = ["--ensemble-size", "2", "--workers", "1", "--epochs", "2", "--no-export"]
    monkeypatch.setenv(CRASH_ENV, "7")  # member 2's second epoch: member 1 finished
    assert train_cli(out, *ensemble).returncode == CRASH_EXIT_STATUS
    monkeypatch.delenv(CRASH_ENV)
    assert not (out / "config.json").exists() and (out / "checkpoint").is_dir()
    before = snapshot(out)
    line = refusal(train_cli(out, *ensemble))
    assert line == (f"newsclf train: error: {out}: holds an interrupted run; continue it with "
                    "--resume, or pass --overwrite to discard it and start afresh")
    with pytest.raises(NewsclfError, match="holds an interrupted run"):
        python_train(out)
    assert snapshot(out) == before
    resumed = train_cli(out, *ensemble, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "member 2 resuming after epoch 1 " in resumed.stderr
    assert not (out / "checkpoint").exists()
    Predictor.from_dir(out)


def test_overwrite_never_deletes_a_file_newsclf_did_not_write(target, new_reference):
    # the reports of newsclf evaluate on the old model (by default inside it) go with it
    evaluated = run_cli("evaluate", "--model", target, "--data", SAMPLE / "dev.tsv")
    assert evaluated.returncode == 0, evaluated.stderr
    assert (target / "eval-dev" / "metrics.json").is_file()
    (target / "notes.txt").write_text("mine", encoding="utf-8")
    (target / "analysis").mkdir()
    (target / "analysis" / "errors.csv").write_text("text,label\n", encoding="utf-8")
    before = snapshot(target)
    for flags in (["--overwrite"], ["--overwrite", "--resume"]):
        assert refusal(train_cli(target, *NEW, *flags)) == (
            f"newsclf train: error: {target}: holds files newsclf did not write (analysis, "
            "notes.txt), and --overwrite replaces the whole directory: move them out first, "
            "or choose another output directory"), flags
    with pytest.raises(NewsclfError, match="holds files newsclf did not write"):
        python_train(target, overwrite=True)
    assert snapshot(target) == before

    (target / "notes.txt").unlink()
    shutil.rmtree(target / "analysis")
    (target / ".DS_Store").write_bytes(b"\0")  # a file browser's, not the user's work
    result = train_cli(target, *NEW, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert model_files(target) == model_files(new_reference)


def test_a_run_stopped_before_its_first_checkpoint_is_discarded_by_overwrite(tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    # what a run killed between its first epoch's log line and its checkpoint leaves
    (out / "train_log.jsonl").write_text('{"member": 1, "epoch": 1, "loss": 1.9}\n',
                                         encoding="utf-8")
    (out / "vocab.json").write_text('{"tokens": ["[PAD]", "[UNK]"]}', encoding="utf-8")
    assert refusal(train_cli(out, *NEW)) == (
        f"newsclf train: error: {out}: holds the files of a run stopped before its first epoch "
        "was saved; pass --overwrite to discard them, or choose another --output")
    result = train_cli(out, *NEW, "--overwrite")
    assert result.returncode == 0, result.stderr
    Predictor.from_dir(out)


def test_overwrite_looks_inside_the_folders_newsclf_writes(target):
    evaluated = run_cli("evaluate", "--model", target, "--data", SAMPLE / "dev.tsv")
    assert evaluated.returncode == 0, evaluated.stderr
    # each a file of the user's where newsclf keeps its own, or named like newsclf's
    for path, shown in (("eval-dev/my_findings.md", "eval-dev/my_findings.md"),
                        ("eval_dev/notes.txt", "eval_dev/notes.txt"),
                        ("inference/mine.txt", "inference/mine.txt"),
                        ("eval-notes.txt", "eval-notes.txt"),
                        (".inference-backup/model.json", ".inference-backup")):
        (target / path).parent.mkdir(exist_ok=True)
        (target / path).write_text("keep me", encoding="utf-8")
        before = snapshot(target)
        assert refusal(train_cli(target, *NEW, "--overwrite")) == (
            f"newsclf train: error: {target}: holds files newsclf did not write ({shown}), and "
            "--overwrite replaces the whole directory: move them out first, or choose another "
            "output directory"), path
        assert snapshot(target) == before
        (target / path).unlink()
    shutil.rmtree(target / ".inference-backup")
    assert train_cli(target, *NEW, "--overwrite").returncode == 0


def test_a_killed_runs_temporary_files_neither_block_the_next_run_nor_stay(tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    # what a run killed while writing leaves: a file being written, the members' setup
    stray = [".weights.safetensors.4242-0a1b2c3d.tmp", ".members-setup-k2j4x_9q.tmp"]
    for name in stray:
        (out / name).write_bytes(b"partial")
    (out / ".DS_Store").write_bytes(b"\0")  # a file browser's: kept, and no obstacle either
    result = train_cli(out, "--no-export")
    assert result.returncode == 0, result.stderr
    assert not set(stray) & set(os.listdir(out)) and (out / ".DS_Store").is_file()
    Predictor.from_dir(out)
    # a hidden file of the user's is not newsclf's: a folder holding one is refused
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / ".draft.tmp").write_text("keep me", encoding="utf-8")
    for flags in ([], ["--overwrite"]):
        assert "holds files that are not a newsclf model (.draft.tmp)" in refusal(
            train_cli(notes, *flags))
    assert os.listdir(notes) == [".draft.tmp"]


def test_a_crash_during_the_swap_is_completed_by_the_next_run(tmp_path, old_model,
                                                             new_reference):
    models = tmp_path / "models"
    models.mkdir()
    # stopped between the two renames: the old model aside, the new one still staged
    shutil.copytree(old_model, models / ".m.newsclf-replaced")
    shutil.copytree(new_reference, models / STAGING)
    with pytest.raises(NewsclfError, match="already holds a model"):
        python_train(models / "m")
    assert snapshot(models / "m") == snapshot(new_reference)
    assert os.listdir(models) == ["m"]
    # stopped while deleting the old model: the next run that writes finishes the deletion
    shutil.copytree(old_model, models / ".m.newsclf-replaced")
    python_train(models / "m", overwrite=True)
    assert os.listdir(models) == ["m"]
    training = json.loads((models / "m" / "training.json").read_text(encoding="utf-8"))
    assert training["settings"]["epochs"] == 1  # the model of that run


def test_overwrite_refuses_to_replace_the_current_folder(target):
    before = snapshot(target)
    for output, cwd in ((".", target), (target, target / "inference")):
        result = run_cli("train", "--train", SAMPLE / "train.tsv", "--output", output, *TINY,
                         *NEW, "--overwrite", cwd=cwd)
        assert refusal(result) == (
            f"newsclf train: error: {output}: --overwrite replaces this directory, and the "
            "current folder is inside it; run from another folder")
    assert snapshot(target) == before


def test_overwrite_refuses_a_mount_point_before_training(tmp_path, old_model):
    source, point = tmp_path / "source", tmp_path / "mounted model"
    shutil.copytree(old_model, source)
    point.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(source), str(point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("a bind mount needs mount privileges this machine does not give")
    try:
        before = snapshot(point)
        assert refusal(train_cli(point, *NEW, "--overwrite")) == (
            f"newsclf train: error: {point}: is a mount point, which --overwrite cannot "
            "replace (it renames the directory); train into a new folder instead")
        assert snapshot(point) == before
    finally:
        subprocess.run(["umount", str(point)], check=True)
    assert sorted(os.listdir(tmp_path)) == ["mounted model", "source"]


def test_resume_refuses_other_training_or_dev_data_of_the_same_size(tmp_path, monkeypatch):
    lines = (SAMPLE / "train.tsv").read_text(encoding="utf-8").splitlines()
    dev_lines = (SAMPLE / "dev.tsv").read_text(encoding="utf-8").splitlines()

    def write(name, rows):
        (tmp_path / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
        return tmp_path / name

    def run(train_file, dev_file, *extra):
        return run_cli("train", "--train", train_file, "--dev", dev_file, "--output", out, *TINY,
                       *NEW, *extra)

    train_file, dev_file = write("train.tsv", lines), write("dev.tsv", dev_lines)
    # the same texts with two labels swapped, and the dev rows in another order: the same
    # sizes, classes and vocabulary
    other = next(i for i, line in enumerate(lines) if line.split("\t")[1] != lines[0].split("\t")[1])
    swapped = list(lines)
    swapped[0] = f"{lines[0].split(chr(9))[0]}\t{lines[other].split(chr(9))[1]}"
    swapped[other] = f"{lines[other].split(chr(9))[0]}\t{lines[0].split(chr(9))[1]}"
    relabelled, reordered = write("relabelled.tsv", swapped), write("reordered.tsv", dev_lines[::-1])
    out = tmp_path / "m"
    monkeypatch.setenv(CRASH_ENV, "8")  # the first write after epoch 1's checkpoint
    assert run(train_file, dev_file).returncode == CRASH_EXIT_STATUS
    monkeypatch.delenv(CRASH_ENV)
    assert json.loads((out / "checkpoint" / "state.json").read_text())["epoch"] == 1
    before = snapshot(out)

    def refused_after_reading(result):  # the data is read (and said so) before the checkpoint
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        return result.stderr.strip().splitlines()[-1]

    line = refused_after_reading(run(relabelled, dev_file, "--resume"))
    assert line == (f"newsclf train: error: {out}: the checkpoint was made with other training "
                    "texts or labels; resume with the same data and settings, or train without "
                    "--resume")
    line = refused_after_reading(run(train_file, reordered, "--resume"))
    assert "the checkpoint was made with other dev texts or labels;" in line
    assert snapshot(out) == before
    resumed = run(train_file, dev_file, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 1 " in resumed.stderr


def test_resume_refuses_another_user_dictionary_or_one_an_earlier_release_read(
        tmp_path, monkeypatch):
    dictionary = tmp_path / "dict.txt"
    dictionary.write_text("券商板块 100 n\n", encoding="utf-8")
    out = tmp_path / "m"

    def run(*extra):
        return run_cli("train", "--train", SAMPLE / "train.tsv", "--output", out, *TINY, *NEW,
                       "--user-dict", dictionary, *extra)

    monkeypatch.setenv(CRASH_ENV, "9")  # the first write after epoch 1's checkpoint
    assert run().returncode == CRASH_EXIT_STATUS
    monkeypatch.delenv(CRASH_ENV)
    assert json.loads((out / "checkpoint" / "state.json").read_text())["epoch"] == 1
    dictionary.write_text("券商板块 100 n\n集体走强 50\n", encoding="utf-8")
    refused = run("--resume")
    assert refused.returncode == 2, refused.stderr
    assert "the checkpoint was made with other user dictionary" in refused.stderr
    # a checkpoint of an earlier release has no record of it: it segmented with the file as it
    # was, which this release cleans, so it is refused too
    dictionary.write_text("券商板块 100 n\n", encoding="utf-8")
    state_path = out / "checkpoint" / "state.json"
    state = json.loads(state_path.read_text(encoding="utf-8"))
    del state["run"]["user_dict_sha256"]
    state_path.write_text(json.dumps(state), encoding="utf-8")
    refused = run("--resume")
    assert refused.returncode == 2 and "or one read as it was, by an earlier release" in \
        refused.stderr, refused.stderr
