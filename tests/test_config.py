import pytest

from newsclf.config import TrainConfig
from newsclf.errors import NewsclfError


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
    ({"epochs": 0}, "epochs must be at least 1"),
    ({"lr": 0}, "lr must be positive"),
])
def test_bad_settings_are_named(values, message):
    with pytest.raises(NewsclfError, match=message):
        TrainConfig.from_dict(values)


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
