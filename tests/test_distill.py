"""Distilling the ensemble into one student encoder: what the model directory predicts with,
what metrics.json and training.json record, the rule that keeps the ensemble when the student
falls behind, unlabelled texts, and --resume after a crash during the student's training.

Most runs go through ``newsclf train``'s own code in this process, so Paddle is loaded once."""

import csv
import dataclasses
import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from types import SimpleNamespace

import numpy as np
import pytest

from newsclf import Predictor, evaluate
from newsclf.config import TrainConfig
from newsclf.data import read_labelled
from newsclf.errors import NewsclfError
from newsclf.files import CRASH_ENV, CRASH_EXIT_STATUS
from newsclf.modeldir import load_model_dir
from newsclf.training import distill, student
from newsclf.training.loop import MemberResult

from conftest import ROOT, SAMPLE, assert_user_error, run_cli, sample_head

TINY = ["--d-model", "32", "--d-ff", "64", "--n-heads", "2", "--tokenizer", "char",
        "--min-freq", "1", "--batch-size", "16", "--no-progress", "--no-export"]


def train_here(*args):
    """``newsclf train ARGS`` run in this process; returns what it logged."""
    from newsclf.cli import build_parser
    from newsclf.cli.train import run

    log = io.StringIO()
    with redirect_stderr(log), redirect_stdout(io.StringIO()):
        run(build_parser().parse_args(["train", *map(str, args)]))
    return log.getvalue()


def read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def log_records(out):
    return [json.loads(line) for line in
            (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Data files: the sample's first 400 training headlines with its first 120 dev headlines
    appended (a model can then score about 1 on those dev headlines, ``dev``; the settings of
    :func:`distilled` were chosen on them), and dev texts without labels, as text and as CSV."""
    folder = tmp_path_factory.mktemp("data")
    dev = read_labelled(SAMPLE / "dev.tsv")
    head = sample_head(folder, "dev.tsv", 120)
    both = folder / "train_and_dev.tsv"
    both.write_text(sample_head(folder, "train.tsv", 400).read_text(encoding="utf-8")
                    + head.read_text(encoding="utf-8"), encoding="utf-8")
    text = folder / "unlabeled.txt"
    text.write_text("\n".join(dev.texts[:60]) + "\n\n   \n", encoding="utf-8")  # blank: skipped
    table = folder / "unlabeled.csv"
    with open(table, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([("id", "title", "source")]
                                     + [(i, t, "x") for i, t in enumerate(dev.texts[60:100])]
                                     + [(100, "", "x")])  # an empty text: skipped
    return {"both": both, "dev": head, "txt": text, "n_txt": 60, "csv": table, "n_csv": 40}


@pytest.fixture(scope="module")
def distilled(tmp_path_factory, data):
    """A distilled run whose dev texts are also training texts: the members and the
    student all fit them, so the student is within half a point of the ensemble and kept."""
    out = tmp_path_factory.mktemp("runs") / "distilled"
    log = train_here("--train", data["both"], "--dev", data["dev"], "--output", out,
                     *TINY, "--epochs", "12", "--lr", "0.01", "--seed", "7", "--workers", "1")
    return out, log


def test_the_directory_predicts_with_the_student(distilled, data):
    out, log = distilled
    files = load_model_dir(out)
    assert files.spec.ensemble_size == 1
    assert not any(name.startswith("members.") for name in files.weights)
    metrics = read_json(out / "metrics.json")
    student, teacher = metrics["student"], metrics["teacher"]
    assert metrics["predicts_with"] == "student" and "ensemble_size" not in metrics
    assert (metrics["dev_accuracy"], metrics["dev_macro_f1"]) == (student["dev_accuracy"],
                                                                  student["dev_macro_f1"])
    assert (metrics["best_epoch"], metrics["epochs_run"]) == (student["best_epoch"],
                                                              student["epochs_run"])
    assert len(metrics["members"]) == 2
    seeds = [member["seed"] for member in metrics["members"]] + [student["seed"]]
    assert len(set(seeds)) == 3  # the student has a seed of its own
    assert {"dev_accuracy", "dev_macro_f1"} <= set(teacher)
    assert read_json(out / "training.json")["distillation"] == {
        "members": 2, "alpha": 0.0, "temperature": 2.0, "splice": 0.5, "token_dropout": 0.2,
        "n_unlabeled": 0, "student_seed": student["seed"], "student_start": "random",
        "student_epochs": 12, "student_patience": 12, "rounds": 1, "kept_round": 1,
        "predicts_with": "student"}
    assert (f"student dev accuracy {student['dev_accuracy']:.4f} (ensemble "
            f"{teacher['dev_accuracy']:.4f}): the model predicts with the student") in log
    records = log_records(out)
    assert sum(1 for r in records if r.get("student")) == student["epochs_run"]
    assert {r.get("member") for r in records if not r.get("student")} == {1, 2}
    assert not (out / "checkpoint").exists()

    predictor = Predictor.from_dir(out)
    dev = read_labelled(data["dev"])
    assert predictor.spec.ensemble_size == 1
    assert evaluate(predictor, dev.texts, dev.labels).accuracy == metrics["dev_accuracy"]
    assert read_json(out / "eval_dev" / "metrics.json")["accuracy"] == metrics["dev_accuracy"]


def test_no_distill_keeps_the_ensemble(tmp_path):
    out = tmp_path / "m"
    log = train_here("--train", SAMPLE / "train.tsv", "--output", out, *TINY, "--epochs", "1",
                     "--workers", "1", "--no-distill")
    assert load_model_dir(out).spec.ensemble_size == 2
    metrics = read_json(out / "metrics.json")
    assert metrics["ensemble_size"] == 2 and len(metrics["members"]) == 2
    assert not {"student", "teacher", "predicts_with"} & set(metrics)
    assert "distillation" not in read_json(out / "training.json")
    assert not any(r.get("student") for r in log_records(out))
    assert "student" not in log
    assert Predictor.from_dir(out).spec.ensemble_size == 2


def test_a_student_too_far_behind_leaves_the_ensemble(tmp_path, data, monkeypatch):
    # the rule demanding more than any student can give: the ensemble must stay
    monkeypatch.setattr(distill, "MAX_ACCURACY_LOSS", -1.0)
    out = tmp_path / "m"
    log = train_here("--train", SAMPLE / "train.tsv", "--dev", SAMPLE / "dev.tsv", "--output",
                     out, *TINY, "--distill", "--epochs", "1", "--workers", "1", "--unlabeled", data["csv"],
                     "--unlabeled-text-column", "title")
    assert load_model_dir(out).spec.ensemble_size == 2
    metrics = read_json(out / "metrics.json")
    assert metrics["predicts_with"] == "ensemble" and metrics["ensemble_size"] == 2
    assert metrics["dev_accuracy"] == metrics["teacher"]["dev_accuracy"]
    assert metrics["student"]["epochs_run"] == 1 and "dev_accuracy" in metrics["student"]
    assert metrics["n_unlabeled"] == data["n_csv"]
    distillation = read_json(out / "training.json")["distillation"]
    assert distillation["predicts_with"] == "ensemble"
    assert distillation["n_unlabeled"] == data["n_csv"]
    assert [line for line in log.splitlines() if "the model predicts with" in line] == [
        f"student dev accuracy {metrics['student']['dev_accuracy']:.4f} (ensemble "
        f"{metrics['teacher']['dev_accuracy']:.4f}), more than -100 points below: the model "
        "predicts with the ensemble"]
    assert read_json(out / "eval_dev" / "metrics.json")["accuracy"] == metrics["dev_accuracy"]


def test_the_rule_allows_half_a_point_and_no_more():
    said = []
    assert distill.student_replaces_ensemble(0.905, 0.91, said.append)
    assert distill.student_replaces_ensemble(0.95, 0.91, said.append)
    assert not distill.student_replaces_ensemble(0.9049, 0.91, said.append)
    assert distill.student_replaces_ensemble(None, None, said.append)  # no dev data
    assert said[2].endswith("more than 0.5 points below: the model predicts with the ensemble")
    assert said[3].startswith("no dev data")


def batch_of(*lengths, width=None):
    """A padded batch of texts whose ids are 100 * (text number + 1) + position, 3 features."""
    width = width or max(lengths)
    ids = np.zeros((len(lengths), width, 3), dtype=np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = (100 * (row + 1) + np.arange(length))[:, None]
    return ids


def test_a_spliced_text_keeps_its_head_and_takes_another_texts_tail():
    others = [batch_of(30)[0] + 1000 * k for k in range(1, 4)]  # ids 1100.., 2100.., 3100..
    ids = batch_of(12, 7, 20, 1)
    original = ids.copy()
    spliced, whole_tokens = student.vary_batch(ids, others, np.random.RandomState(0),
                                               splice=1.0, token_dropout=0.0)
    assert spliced.tolist() == [True] * 4
    assert (whole_tokens == ids).all()
    for row, length in enumerate((12, 7, 20, 1)):
        kept = ids[row, :, 0] == original[row, :, 0]
        cut = int(np.argmin(kept)) if not kept.all() else length
        assert 1 <= cut <= max(1, length - 1)  # a real head stays
        tail = ids[row, cut:, 0]
        source = [o for o in others if (o[cut:cut + len(tail), 0] == tail).all()]
        assert source, (row, ids[row, :, 0])  # the other text's own positions, cut to width


def test_varying_a_batch_follows_its_rates_and_its_seed():
    texts = [batch_of(8)[0]]  # splices add at most 7 positions: rows keep some padding
    unchanged = batch_of(12, 7)
    assert not student.vary_batch(unchanged, texts, np.random.RandomState(0), 0.0, 0.0)[0].any()
    assert (unchanged == batch_of(12, 7)).all()
    lengths = [3 + i % 10 for i in range(400)]
    big = batch_of(*lengths, width=20)
    spliced, whole_tokens = student.vary_batch(big, texts, np.random.RandomState(1), 0.5, 0.25)
    assert 0.4 < spliced.mean() < 0.6
    real = big != 0
    assert 0.2 < (big[real] == 1).mean() < 0.3  # [UNK] on a quarter of the real tokens
    assert (big[:, 13:] == 0).all()  # padding stays padding: never [UNK], never filled
    assert not (whole_tokens == 1).any()  # the batch before the token dropout
    assert (whole_tokens[big != 1] == big[big != 1]).all()
    again = batch_of(*lengths, width=20)
    student.vary_batch(again, texts, np.random.RandomState(1), 0.5, 0.25)
    assert (again == big).all()


def test_the_teacher_scores_the_students_texts_before_their_token_dropout(tmp_path,
                                                                          monkeypatch):
    varied, scored = [], []
    original_vary, original_call = student.vary_batch, student.StudentObjective.__call__

    def vary(ids, *args):
        spliced, whole_tokens = original_vary(ids, *args)
        varied.append((ids.copy(), whole_tokens))
        return spliced, whole_tokens

    def recording(self, logits, teacher_ids, labels, whole, index):
        scored.append(teacher_ids.numpy().copy())
        return original_call(self, logits, teacher_ids, labels, whole, index)

    monkeypatch.setattr(student, "vary_batch", vary)
    monkeypatch.setattr(student.StudentObjective, "__call__", recording)
    train_here("--train", SAMPLE / "train.tsv", "--output", tmp_path / "m", *TINY,
               "--epochs", "1", "--workers", "1", "--distill-splice", "0.5",
               "--distill-token-dropout", "0.5")
    assert len(scored) == len(varied) > 0
    for (seen, whole_tokens), teacher_ids in zip(varied, scored):
        assert (teacher_ids == whole_tokens).all()
        assert ((seen == teacher_ids) | (seen == 1)).all()  # the student's: some [UNK] more
    real = np.concatenate([ids[ids != 0] for ids, _ in varied])
    teachers = np.concatenate([ids[ids != 0] for ids in scored])
    assert len(real) > 1000 and 0.45 < (real == 1).mean() < 0.55
    assert (teachers == 1).mean() < 0.1


@pytest.mark.parametrize("epochs, start", [(4, "member 1"), (5, "random")])
def test_the_student_starts_from_the_first_member_only_after_few_epochs(tmp_path, monkeypatch,
                                                                          epochs, start):
    import newsclf.training.distill

    seen = []
    original = newsclf.training.distill.train_student

    def recording(setup, members, *args):
        result = original(setup, members, *args)
        seen.append(([member.weights for member in members], result.weights))
        return result

    monkeypatch.setattr(newsclf.training.distill, "train_student", recording)
    # so small a learning rate that the student's weights stay where they started
    out = tmp_path / "m"
    train_here("--train", SAMPLE / "train.tsv", "--output", out, *TINY, "--epochs", epochs,
               "--workers", "1", "--lr", "1e-12")
    [(members, student_weights)] = seen
    assert student_weights.keys() == members[0].keys()

    def near(weights):
        return all(np.allclose(value, weights[name], rtol=0, atol=1e-6)
                   for name, value in student_weights.items())

    assert near(members[0]) == (start == "member 1")
    assert not near(members[1])
    assert read_json(out / "training.json")["distillation"]["student_start"] == start


def test_the_student_trains_on_two_threads_the_members_on_one_each(tmp_path, monkeypatch):
    import contextlib

    import newsclf.runtime

    threads = []
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(newsclf.runtime, "math_threads",
                        lambda count: threads.append(count) or contextlib.nullcontext())
    train_here("--train", SAMPLE / "train.tsv", "--output", tmp_path / "m", *TINY,
               "--epochs", "1", "--workers", "1")
    assert threads == [1, 1, 2]
    threads.clear()
    train_here("--train", SAMPLE / "train.tsv", "--output", tmp_path / "one", *TINY,
               "--epochs", "1", "--ensemble-size", "1")
    assert threads == [2]


def test_a_teacher_of_two_members_averages_their_probabilities():
    import types

    import paddle
    import paddle.nn.functional as F

    from newsclf.model.layers import build_network, weights_of

    config = TrainConfig(d_model=16, n_heads=2, d_ff=32, ensemble_size=2)
    spec = dataclasses.replace(config.model_spec(vocab_size=50, n_classes=3), ensemble_size=1)
    setup = types.SimpleNamespace(config=config, model_spec=lambda: spec, pretrained=None,
                                  train_ids=[], y_train=np.array([]))
    paddle.seed(1)
    members = [build_network(spec), build_network(spec)]
    for member in members:
        member.eval()
    objective = student.StudentObjective(setup, [weights_of(m) for m in members])
    ids = paddle.to_tensor(batch_of(5, 3, 4) % 48 + 2 * (batch_of(5, 3, 4) > 0))
    mean = np.mean([F.softmax(m(ids), axis=-1).numpy() for m in members], axis=0)
    np.testing.assert_allclose(F.softmax(objective.teacher(ids), axis=-1).numpy(), mean,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("setting, value, message", [
    ("distill_alpha", 1.5, r"distill_alpha must be in \[0, 1\]"),
    ("distill_splice", -0.1, r"distill_splice must be in \[0, 1\]"),
    ("distill_token_dropout", 1.0, r"distill_token_dropout must be in \[0, 1\)"),
    ("distill_temperature", 0.0, "distill_temperature must be positive"),
    ("distill_rounds", 0, "distill_rounds must be a whole number of at least 1, not 0")])
def test_distillation_settings_are_checked(setting, value, message):
    with pytest.raises(NewsclfError, match=message):
        TrainConfig(**{setting: value}).validate()


@pytest.mark.parametrize("extra", [["--no-distill"], ["--ensemble-size", "1"]],
                         ids=["no-distill", "one-encoder"])
def test_rounds_without_a_student_are_one_line_before_training(tmp_path, extra):
    out = tmp_path / "m"
    result = run_cli("train", "--train", SAMPLE / "train.tsv", "--output", out, *TINY,
                     "--distill-rounds", "2", *extra)
    assert_user_error(result, "distill_rounds 2 needs a distilled student",
                      "leave out --distill-rounds")
    assert not out.exists()
    assert TrainConfig(ensemble_size=1, distill_rounds=1).validate().distill_rounds == 1
    assert TrainConfig(distill=False).for_training_size(10, n_unlabeled=5).distill_rounds == 1


def test_the_unlabeled_file_has_its_own_sheet_and_encoding(tmp_path):
    import openpyxl

    from newsclf.cli import build_parser
    from newsclf.cli.train import read_unlabeled

    texts = ["央行宣布下调存款准备金率", "国足主场两球战胜对手"]
    workbook = openpyxl.Workbook()
    workbook.active.title = "说明"
    workbook.active.append(["这一页是说明", "不是新闻"])
    workbook.active.append(["第二行", "还是说明", "多一列"])
    news = workbook.create_sheet("news")
    for text in ["标题", *texts]:
        news.append([text])
    workbook.save(tmp_path / "book.xlsx")
    utf16 = tmp_path / "utf16.txt"
    utf16.write_text("\n".join(texts) + "\n", encoding="utf-16")

    def read(*flags):
        return read_unlabeled(build_parser().parse_args(
            ["train", "--train", str(SAMPLE / "train.tsv"), "--output", str(tmp_path / "m"),
             *map(str, flags)]))

    assert read("--unlabeled", tmp_path / "book.xlsx", "--unlabeled-sheet", "news") == texts
    # the training files stay UTF-8 (--encoding utf-16 would be theirs too)
    assert read("--unlabeled", utf16, "--unlabeled-encoding", "utf-16") == texts


@pytest.mark.parametrize("case", ["missing", "empty", "blank", "no-column", "named-row",
                                  "directory", "no-distill", "one-encoder", "utf-16",
                                  "sheet-of-text"])
def test_bad_unlabeled_input_is_one_line_before_training(tmp_path, data, case):
    empty, blank = tmp_path / "empty.txt", tmp_path / "blank.txt"
    empty.write_bytes(b"")
    blank.write_text("\n \n\t\n", encoding="utf-8")
    unnamed = tmp_path / "unnamed.csv"
    unnamed.write_text("编号,新闻正文,来源\n1,央行宣布下调存款准备金率,新华社\n", encoding="utf-8")
    named = tmp_path / "named.csv"
    named.write_text("news_summary\n央行宣布下调存款准备金率\n国足主场两球战胜对手\n",
                     encoding="utf-8")
    utf16 = tmp_path / "utf16.txt"
    utf16.write_text("央行宣布下调存款准备金率\n", encoding="utf-16")
    path, extra, fragments = {
        "missing": (tmp_path / "nope.txt", ["--distill"], ["nope.txt: file not found"]),
        "empty": (empty, ["--distill"], ["empty.txt: empty file; no texts in it"]),
        "blank": (blank, ["--distill"], ["blank.txt: the text of every row is blank (3 rows)"]),
        "no-column": (unnamed, ["--distill"], ["unnamed.csv: 3 columns and no header row",
                                               "--unlabeled-text-column N"]),
        "named-row": (named, ["--distill"], ["named.csv:1: the first row ('news_summary') "
                                             "looks like a column name: pass "
                                             "--unlabeled-header to read it as one, or "
                                             "--no-unlabeled-header"]),
        "directory": (tmp_path, ["--distill"], ["is a directory"]),
        "no-distill": (data["txt"], ["--no-distill"], ["leave out --no-distill"]),
        "one-encoder": (data["txt"], ["--ensemble-size", "1", "--distill"],
                        ["set --ensemble-size 2"]),
        "utf-16": (utf16, ["--distill"], ["contains NUL bytes",
                                          "pass --unlabeled-encoding utf-16"]),
        "sheet-of-text": (data["txt"], ["--distill", "--unlabeled-sheet", "2"],
                          ["--unlabeled-sheet:", "is not an Excel workbook (.xlsx); leave out "
                           "--unlabeled-sheet"]),
    }[case]
    out = tmp_path / "m"
    result = run_cli("train", "--train", SAMPLE / "train.tsv", "--output", out, *TINY,
                     "--unlabeled", path, *extra)
    assert_user_error(result, *fragments)
    assert not out.exists()


def test_unlabeled_json_lines_texts_are_read_as_text(tmp_path):
    from newsclf.cli import build_parser
    from newsclf.cli.train import read_unlabeled

    path = tmp_path / "unlabeled.jsonl"
    path.write_text('{"text": "央行宣布下调存款准备金率", "id": 1}\n{"text": 2024, "id": 2}\n'
                    '{"text": null, "id": 3}\n', encoding="utf-8")
    args = build_parser().parse_args(["train", "--train", str(SAMPLE / "train.tsv"), "--output",
                                      str(tmp_path / "m"), "--unlabeled", str(path)])
    assert read_unlabeled(args) == ["央行宣布下调存款准备金率", "2024"]


def test_resume_after_a_crash_during_the_student_ends_like_the_uninterrupted_run(tmp_path,
                                                                                 data):
    args = ["--train", SAMPLE / "train.tsv", "--unlabeled", data["txt"], *TINY, "--distill",
            "--epochs", "3"]
    reference = tmp_path / "reference"  # members in worker processes, the student here
    log = train_here(*args, "--output", reference)
    assert ("no dev data to compare the 2 rounds' students: the last round's is the student "
            "kept") in log and "did best on dev" not in log
    metrics = read_json(reference / "metrics.json")
    assert metrics["predicts_with"] == "student"  # no dev data: the student, always
    assert read_json(reference / "training.json")["distillation"]["n_unlabeled"] == data["n_txt"]
    assert load_model_dir(reference).spec.ensemble_size == 1

    # members one after another in one process: two writes (tensors, state) per epoch
    # checkpoint, theirs first; the crash comes at the student's second checkpoint
    member_epochs = sum(1 for record in log_records(reference) if not record.get("student"))
    out = tmp_path / "crashed"
    env = {**os.environ, CRASH_ENV: str(2 * member_epochs + 3)}
    crash = subprocess.run([sys.executable, "-m", "newsclf", "train", *map(str, args), "--output",
                            str(out), "--workers", "1"], capture_output=True, text=True, cwd=ROOT,
                           env=env, timeout=600)
    assert crash.returncode == CRASH_EXIT_STATUS, crash.stderr
    # (an epoch's log line comes before its checkpoint)
    assert "student epoch 2/3 " in crash.stderr and "student epoch 3/3 " not in crash.stderr
    assert read_json(out / "checkpoint" / "student" / "state.json")["epoch"] == 1
    assert all(read_json(out / "checkpoint" / f"member-{m}" / "state.json")["finished"]
               for m in (1, 2))
    assert not (out / "config.json").exists()

    log = train_here(*args, "--output", out, "--workers", "1", "--resume")
    assert "member 1 already finished" in log and "member 2 already finished" in log
    assert "student resuming after epoch 1 " in log
    for name in ("model.safetensors", "metrics.json"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert not (out / "checkpoint").exists()


def test_a_student_gets_epochs_for_all_the_texts_it_learns_from():
    run = TrainConfig(distill=True).for_training_size(5000)
    assert run.epochs == 36
    student = distill.student_config(run, ["epochs", "patience"], 5000 + 40000)
    # 360,000 texts' worth, and no early stopping
    assert (student.epochs, student.patience) == (8, 8)
    assert distill.student_config(run, [], 45000) == run  # given settings stay
    given = TrainConfig(distill=True, epochs=6).for_training_size(5000)
    assert distill.student_config(given, ["patience"], 45000).epochs == 6


def test_distillation_is_on_by_default_and_learns_unlabeled_texts(tmp_path, data):
    out = tmp_path / "m"
    log = train_here("--train", SAMPLE / "train.tsv", "--dev", SAMPLE / "dev.tsv", "--output", out,
                     *TINY, "--unlabeled", data["txt"], "--epochs", "2", "--workers", "1")
    assert "distilling the 2 members into one student encoder (round 1 of 2)" in log
    assert "distilling the round 1 student into one student encoder (round 2 of 2)" in log
    training = read_json(out / "training.json")
    assert training["settings"]["distill"] is True
    assert training["settings"]["distill_rounds"] == 2
    assert "distill_rounds" in training["automatic"]
    distillation = training["distillation"]
    assert distillation["n_unlabeled"] == data["n_txt"] and distillation["rounds"] == 2
    metrics = read_json(out / "metrics.json")
    rounds = metrics["student_rounds"]
    assert len(rounds) == 2 and rounds[0]["seed"] != rounds[1]["seed"]
    kept = 2 if rounds[1]["dev_macro_f1"] >= rounds[0]["dev_macro_f1"] else 1
    assert distillation["kept_round"] == metrics["kept_round"] == kept
    assert metrics["student"] == rounds[kept - 1]
    records = [json.loads(line) for line in
               (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["epoch"] for r in records if r.get("round") == 2] == [1, 2]  # --epochs 2
    assert TrainConfig().distill
    assert TrainConfig(distill=None).distill
    assert not TrainConfig(distill=False).distill
    with pytest.raises(NewsclfError, match="leave out --no-distill"):
        distill.check_unlabeled_allowed(TrainConfig(distill=False))


def test_unlabelled_texts_widen_the_vocabulary_and_the_members_read_their_entries_as_unk(
        tmp_path, monkeypatch):
    import newsclf.training.distill
    from newsclf.tokenize import Tokenizer

    seen = []
    original = newsclf.training.distill.train_student

    def recording(setup, members, *args):
        result = original(setup, members, *args)
        seen.append((setup, [member.weights for member in members], result.weights))
        return result

    monkeypatch.setattr(newsclf.training.distill, "train_student", recording)
    rare = "龘鱻靐齉"  # in no training or dev text
    unlabeled = tmp_path / "more.txt"
    unlabeled.write_text(f"{rare}\n" * 3 + "沪指放量上涨\n", encoding="utf-8")
    out = tmp_path / "m"
    train_here("--train", SAMPLE / "train.tsv", "--dev", SAMPLE / "dev.tsv", "--output", out,
               *TINY, "--unlabeled", unlabeled, "--epochs", "1", "--workers", "1")
    # two rounds (the default with unlabelled texts): the second student learns from the first
    [(setup, members, first_student), (_, second_teacher, _)] = seen
    assert len(second_teacher) == 1 and second_teacher[0] is first_student
    vocab = load_model_dir(out).vocab
    new_ids = [vocab.index[feature] for [feature] in Tokenizer("char").features(rare)]
    assert new_ids and all(setup.vocab.index[vocab.tokens[i]] == i for i in new_ids)
    for weights in members:
        embedding = weights["embedding.weight"]
        assert (embedding[new_ids] == embedding[1]).all()  # each reads them as [UNK]
        assert not (embedding[2] == embedding[1]).all()
    assert len(members) == 2



def test_each_round_learns_from_the_student_before_it_and_the_best_on_dev_is_kept(monkeypatch):
    members = [MemberResult(1, [], 0, {"w": 1}, None), MemberResult(2, [], 0, {"w": 2}, None)]
    macro_f1 = {1: 0.5, 2: 0.7, 3: 0.7}  # rounds 2 and 3 tie: the later is kept
    calls = []

    def fake_student(setup, teachers, unlabeled_ids, report, parallel, round_number):
        calls.append((teachers, round_number))
        history = [{"epoch": 1, "dev_macro_f1": macro_f1[round_number]}]
        return MemberResult(100 + round_number, history, 1, {"w": round_number}, None)

    monkeypatch.setattr(distill, "train_student", fake_student)
    setup = SimpleNamespace(student_settings=TrainConfig(distill_rounds=3))
    students = distill.train_students(setup, members, [], None, None)
    assert [round_number for _, round_number in calls] == [1, 2, 3]
    assert calls[0][0] is members
    assert calls[1][0] == [students[0]] and calls[2][0] == [students[1]]
    assert distill.best_round(students) is students[2]
    assert distill.best_round(students[:2]) is students[1]
    without_dev = [MemberResult(s.seed, [{"epoch": 1}], 1, s.weights, None) for s in students]
    assert distill.best_round(without_dev) is without_dev[-1]

def test_the_student_loss_is_the_kl_to_its_teacher_and_alpha_of_the_label():
    import types

    import paddle
    import paddle.nn.functional as F

    from newsclf.model.layers import build_network, weights_of

    config = TrainConfig(d_model=16, n_heads=2, d_ff=32, distill_alpha=0.0, ensemble_size=1)
    spec = config.model_spec(vocab_size=50, n_classes=3)
    setup = types.SimpleNamespace(config=config, model_spec=lambda: spec, pretrained=None,
                                  train_ids=[], y_train=np.array([]))
    paddle.seed(0)
    member = build_network(spec)
    member.eval()
    ids = paddle.to_tensor(batch_of(5, 3, 4) % 48 + 2 * (batch_of(5, 3, 4) > 0))
    labels, whole = np.array([0, 2, -1]), np.array([True, False, True])
    objective = student.StudentObjective(setup, [weights_of(member)])
    logits = member(ids)
    assert abs(float(objective(logits, ids, labels, whole))) < 1e-5  # a perfect student
    other = paddle.to_tensor(np.array([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0]], "float32"))
    kl = float(objective(other, ids, labels, whole))
    assert kl > 0.01
    # alpha 1: only the labelled text left whole (row 0) learns its label; the rest the teacher
    setup.config = objective.config = TrainConfig(distill_alpha=1.0)
    mixed = float(objective(other, ids, labels, whole))
    teacher = F.softmax(member(ids) / 2.0, axis=-1).numpy()
    student_t = F.softmax(other / 2.0, axis=-1).numpy()
    row_kl = 4.0 * (teacher * (np.log(teacher) - np.log(student_t))).sum(axis=1)
    np.testing.assert_allclose(row_kl.mean(), kl, rtol=1e-4)
    label_ce = float(F.cross_entropy(other[:1], paddle.to_tensor(np.array([0])),
                                     label_smoothing=0.1))
    np.testing.assert_allclose(mixed, (label_ce + row_kl[1] + row_kl[2]) / 3, rtol=1e-4)


def test_settings_files_of_earlier_versions_with_distill_null_still_load():
    config = TrainConfig.from_dict({"distill": None})
    assert config.distilling and config.distill is True
