"""Config loading, validation messages and dotted overrides."""

from __future__ import annotations

import pytest

from cnnlab.config import RECIPES_DIR, ExperimentConfig, apply_override, load_config
from cnnlab.errors import ConfigError


def test_defaults_are_the_main_job():
    cfg = load_config()
    assert cfg.model.arch == "lenet5" and cfg.data.source == "mnist"
    assert cfg.data.val_size == 10_000  # the Theano tutorial's validation split


def test_recipe_by_name_equals_defaults():
    assert load_config("lenet5-mnist").to_dict() == ExperimentConfig().to_dict()


@pytest.mark.parametrize("recipe", sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
def test_every_bundled_recipe_validates_and_is_named_after_its_file(recipe):
    cfg = load_config(recipe)
    assert cfg.name == recipe


def test_dotted_overrides_parse_yaml_values():
    cfg = load_config(None, ["optim.lr=0.01", "train.epochs=3", "data.download=false", "name=x"])
    assert cfg.optim.lr == 0.01 and cfg.train.epochs == 3 and cfg.data.download is False
    assert cfg.name == "x"


def test_section_shorthand_and_nested_override_on_shorthand():
    data = {"model": "lenet5"}
    apply_override(data, "optim=sgd")
    apply_override(data, "optim.lr=0.2")
    assert data == {"model": "lenet5", "optim": {"name": "sgd", "lr": 0.2}}


def test_unknown_key_names_it_and_suggests_closest():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["optim.lrr=0.1"])
    assert "unknown key 'optim.lrr'" in str(err.value)
    assert "Did you mean 'optim.lr'" in str(err.value)


def test_unknown_top_level_key_in_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trian:\n  epochs: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(path) in str(err.value) and "Did you mean 'train'" in str(err.value)


@pytest.mark.parametrize("override, expected", [
    ("train.epochs=0", "greater than or equal to 1"),
    ("optim.lr=-1", "greater than 0"),
    ("train.batch_size=abc", "valid integer"),
])
def test_wrong_type_or_range_says_what_is_expected(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    key = override.split("=")[0]
    assert key in str(err.value) and expected in str(err.value)


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="no such config file or recipe"):
        load_config(str(tmp_path / "missing.yaml"))


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["optim.lr"])


def test_resolved_config_round_trips_through_yaml(tmp_path):
    cfg = load_config(None, ["optim.lr=0.02"])
    path = tmp_path / "resolved.yaml"
    path.write_text(cfg.to_yaml())
    assert load_config(str(path)).to_dict() == cfg.to_dict()
