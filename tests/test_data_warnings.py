"""Training warns, before it starts, when its dev scores would mislead: dev texts that are
training texts, classes dev lacks, classes with very few training texts."""

import newsclf
from conftest import SAMPLE, run_cli, sample_head

TINY = dict(d_model=32, n_heads=2, d_ff=64, epochs=1, batch_size=32, min_freq=1, ensemble_size=1)
TINY_FLAGS = ["--d-model", 32, "--n-heads", 2, "--d-ff", 64, "--epochs", 1, "--batch-size", 32,
              "--min-freq", 1, "--ensemble-size", 1]


def test_dev_texts_that_are_training_texts_are_named_with_their_share(tmp_path):
    train = sample_head(tmp_path, "train.tsv", 150)
    done = run_cli("train", "--train", train, "--dev", train, "--output", tmp_path / "m",
                   "--no-progress", *TINY_FLAGS)
    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if "also in the training data" in line]
    assert len(warning) == 1 and "150 of its 150 texts (100%)" in warning[0], done.stderr


def test_a_rare_class_and_a_class_dev_lacks_are_named(tmp_path, capsys):
    rows = (SAMPLE / "train.tsv").read_text(encoding="utf-8").splitlines()[:150]
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    train.write_text("\n".join(rows + ["一则孤零零的天气预报\t天气"]) + "\n", encoding="utf-8")
    dev_rows = (SAMPLE / "dev.tsv").read_text(encoding="utf-8").splitlines()[:60]
    dev.write_text("\n".join(dev_rows) + "\n", encoding="utf-8")
    newsclf.train(train, dev=dev, output=tmp_path / "m", **TINY)
    err = capsys.readouterr().err
    assert "fewer than 5 training texts: '天气' (1)" in err, err
    assert "no dev text of class(es) '天气'" in err and "F1 0" in err, err


def test_the_sample_trains_without_a_warning(tmp_path, capsys):
    newsclf.train(SAMPLE / "train.tsv", dev=SAMPLE / "dev.tsv", output=tmp_path / "m", **TINY)
    assert "warning" not in capsys.readouterr().err
