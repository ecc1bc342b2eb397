"""Config loading, validation messages and dotted overrides."""

from __future__ import annotations

import pytest

from cnnlab.config import RECIPES_DIR, ExperimentConfig, apply_override, load_config
from cnnlab.errors import ConfigError


def test_defaults_are_the_main_job():
    cfg = load_config()
    assert cfg.model.arch == "lenet5" and cfg.data.source == "mnist"
    assert cfg.data.val_size == 10_000  # the Theano tutorial's validation split


def test_no_recipe_is_the_main_job_recipe():
    assert load_config().to_dict() == load_config("lenet5-mnist").to_dict()
    assert load_config().optim.l2 == 0.0005 and load_config().schedule.name == "linear"


def test_lr_override_keeps_the_main_jobs_weight_decay():
    """Regression (issue 12): `optim.lr=0.05` used to replace the whole optim section (l2 -> 0)."""
    for overrides in (["optim.lr=0.05"], ["train.epochs=3"], ["optim.lr=0.1", "seed=3"]):
        assert load_config(None, overrides).optim.l2 == 0.0005, overrides


def test_switching_the_rule_resets_its_own_keys_and_keeps_the_common_ones():
    base = load_config(None, ["optim.l2=0.001", "optim.label_smoothing=0.1", "optim.clip_grad_norm=5"])
    for switch in (["optim=adam"], ["optim.name=adam"]):
        adam = load_config(None, ["optim.l2=0.001", "optim.label_smoothing=0.1", "optim.clip_grad_norm=5",
                                  *switch]).optim
        assert (adam.name, adam.lr, adam.beta1, adam.beta2, adam.eps) == ("adam", 1e-3, 0.9, 0.999, 1e-8)
        assert (adam.l2, adam.label_smoothing, adam.clip_grad_norm) == (0.001, 0.1, 5.0)
        assert "momentum" not in adam.model_dump()
    assert base.optim.momentum == 0.9


def test_override_order_does_not_matter():
    a = load_config(None, ["optim.lr=0.01", "optim.name=adam"])
    b = load_config(None, ["optim.name=adam", "optim.lr=0.01"])
    assert a.to_dict() == b.to_dict() and a.optim.lr == 0.01


def test_switching_the_source_drops_the_old_sources_path():
    cfg = load_config("convnet-cifar10", ["data.source=cifar10"])
    assert cfg.data.path is None and cfg.data.augment  # the augmentation stays


def test_base_chain(tmp_path):
    (tmp_path / "parent.yaml").write_text("base: convnet-cifar10\nname: parent\ntrain: {epochs: 2}\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\noptim: {lr: 0.01}\n")
    cfg = load_config(str(tmp_path / "child.yaml"))
    assert (cfg.name, cfg.model.arch, cfg.train.epochs, cfg.optim.lr, cfg.optim.l2) == (
        "parent", "convnet", 2, 0.01, 0.0001)
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(str(tmp_path / "loop.yaml"))
    (tmp_path / "none.yaml").write_text("base: none\n")
    assert load_config(str(tmp_path / "none.yaml")).to_dict() == ExperimentConfig().to_dict()


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", ".inf"])
def test_non_finite_numbers_are_refused(value):
    """Regression (issue 13): `optim.lr=inf` passed `> 0` and was written to YAML as null."""
    with pytest.raises(ConfigError, match="optim.lr"):
        load_config(None, [f"optim.lr={value}"])


def test_non_utf8_config_file_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not a UTF-8"):
        load_config(str(path))


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
    data = apply_override(data, "optim=sgd")
    data = apply_override(data, "optim.lr=0.2")
    assert data == {"model": {"arch": "lenet5"}, "optim": {"name": "sgd", "lr": 0.2}}


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
    with pytest.raises(ConfigError, match="missing.yaml: no such config file"):
        load_config(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="no such config file or recipe. Did you mean 'jetnet'"):
        load_config("jetnett")


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["optim.lr"])


def test_resolved_config_round_trips_through_yaml(tmp_path):
    cfg = load_config(None, ["optim.lr=0.02"])
    path = tmp_path / "resolved.yaml"
    path.write_text(cfg.to_yaml())
    assert load_config(str(path)).to_dict() == cfg.to_dict()


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", ""])
def test_run_name_cannot_leave_runs_dir(name):
    with pytest.raises(ConfigError, match="run name"):
        load_config(None, [f"name={name}"])
