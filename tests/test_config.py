import math

import pytest

from newsclf.config import TrainConfig
from newsclf.errors import NewsclfError

from conftest import assert_user_error, run_cli


def test_defaults_validate_and_round_trip():
    config = TrainConfig()
    assert config.validate() is config
    assert TrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("values, message", [
    ({"epoch": 3}, "unknown setting"),
    ({"epochs": "3"}, "epochs must be int"),
    ({"lr": True}, "lr must be float"),
    ({"tokenizer": "bpe"}, "tokenizer must be one of"),
    ({"d_model": 100, "n_heads": 3}, "multiple of n_heads"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ({"epochs": 0}, "epochs must be a whole number of at least 1, not 0"),
    ({"patience": 0}, "patience must be a whole number of at least 1, not 0"),
    ({"patience": 2.5}, "patience must be int"),
    ({"d_model": None}, "d_model must be int, got None"),
    ({"lr": None}, "lr must be float, got None"),
    ({"pre_ln": None}, "pre_ln must be bool, got None"),
    ({"lr": 0}, "lr must be positive"),
    ({"clip_norm": -1.0}, r"clip_norm must be 0 or more \(0: none\), got -1.0"),
    ({"weight_decay": -0.01}, "weight_decay must be 0 or more"),
    ({"max_len": 100_000_000}, r"max_len must be at most 4096, got 100000000 \(longer texts"),
    ({"seed": -1}, "seed must be a whole number from 0 to 4294967295, got -1"),
    ({"seed": 2 ** 64}, "seed must be a whole number from 0 to 4294967295"),
    ({"position": "rotary", "d_model": 12, "n_heads": 4},
     r"^rotary positions need an even head size: d_model / n_heads is 3; make d_model a "
     r"multiple of 2 x n_heads \(8\), or choose another position$"),
    ({"position": "rotary", "d_model": 7, "n_heads": 1}, "d_model / n_heads is 7;"),
    # one feature: layer normalization outputs its bias whatever the text (every text 0.100)
    ({"d_model": 1, "n_heads": 1}, "^d_model must be at least 2: layer normalization over one "
                                   "feature gives every text the same output$"),
])
def test_bad_settings_are_named(values, message):
    with pytest.raises(NewsclfError, match=message):
        TrainConfig.from_dict(values)


FLOAT_SETTINGS = [name for name, value in TrainConfig().to_dict().items()
                  if isinstance(value, float)]


@pytest.mark.parametrize("name", FLOAT_SETTINGS)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_every_float_setting_must_be_finite(name, value):
    with pytest.raises(NewsclfError) as refused:
        TrainConfig.from_dict({name: value})
    assert str(refused.value) == f"{name} must be a finite number, got {value}"


def test_a_whole_number_too_large_for_a_float_is_not_a_finite_setting():
    with pytest.raises(NewsclfError, match=r"^lr must be a finite number, got 1000"):
        TrainConfig.from_dict({"lr": 10 ** 400})


def test_rotary_positions_with_even_head_sizes_validate():
    for d_model, n_heads in ((8, 4), (12, 2), (128, 4)):
        TrainConfig(position="rotary", d_model=d_model, n_heads=n_heads).validate()
    TrainConfig(position="relative", d_model=12, n_heads=4).validate()  # rotary only


def test_non_finite_settings_and_odd_rotary_heads_are_refused_by_the_command(tmp_path):
    """Python's json reads NaN and Infinity; both, and an odd rotary head size, are one-line
    errors before anything is trained."""
    train_path = tmp_path / "train.tsv"
    train_path.write_text("股市大涨\t股票\n球队夺冠\t体育\n", encoding="utf-8")
    common = ("train", "--train", train_path, "--output", tmp_path / "m")
    for name, value, shown in (("lr", "Infinity", "inf"), ("clip_norm", "Infinity", "inf"),
                               ("weight_decay", "NaN", "nan")):
        settings = tmp_path / "settings.json"
        settings.write_text(f'{{"{name}": {value}}}', encoding="utf-8")
        assert_user_error(run_cli(*common, "--config", settings),
                          f"newsclf train: error: {name} must be a finite number, got {shown}")
    assert_user_error(run_cli(*common, "--lr", "inf"),
                      "newsclf train: error: lr must be a finite number, got inf")
    assert_user_error(run_cli(*common, "--position", "rotary", "--d-model", "12",
                              "--n-heads", "4"),
                      "rotary positions need an even head size: d_model / n_heads is 3;")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("n_train, epochs, patience", [
    (45000, 4, 3),     # THUCNews: the measured 4 epochs
    (60000, 4, 3),     # more data never fewer than 4 epochs
    (15000, 12, 3),
    (5000, 36, 4),
    (1000, 100, 10),   # capped: about 180,000 texts would take 180 epochs
    (400, 100, 10),
    (0, 100, 10),
])
def test_epochs_and_patience_follow_the_training_size(n_train, epochs, patience):
    chosen = TrainConfig().for_training_size(n_train)
    assert (chosen.epochs, chosen.patience) == (epochs, patience)
    assert chosen.automatic() == []
    assert TrainConfig().automatic() == ["epochs", "patience", "distill_rounds"]


def test_two_distillation_rounds_with_unlabelled_texts_one_without_unless_given():
    assert TrainConfig().for_training_size(1000).distill_rounds == 1
    assert TrainConfig().for_training_size(1000, n_unlabeled=1).distill_rounds == 2
    assert TrainConfig(distill_rounds=3).for_training_size(1000).distill_rounds == 3
    assert TrainConfig(distill_rounds=1).for_training_size(10, n_unlabeled=9).distill_rounds == 1


def test_settings_given_are_never_chosen_for_the_data():
    given = TrainConfig(epochs=7, patience=2).for_training_size(400)
    assert (given.epochs, given.patience) == (7, 2)
    assert TrainConfig(epochs=50).for_training_size(45000).patience == 5


def test_config_files(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"epochs": 2, "lr": 0.002}', encoding="utf-8")
    assert TrainConfig.from_file(good).epochs == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{epochs: 2}", encoding="utf-8")
    with pytest.raises(NewsclfError, match="not a valid JSON config"):
        TrainConfig.from_file(bad)
    bad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(NewsclfError, match="one JSON object"):
        TrainConfig.from_file(bad)
    with pytest.raises(NewsclfError, match="config file not found"):
        TrainConfig.from_file(tmp_path / "missing.json")
    with pytest.raises(NewsclfError, match="cannot read the config file .*give a JSON file"):
        TrainConfig.from_file(tmp_path)
