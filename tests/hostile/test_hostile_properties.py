"""Property tests (hypothesis) of the config parser, the override syntax and the layer-spec
grammar: random input gives a ConfigError (exit 2) or a valid result, never another exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from cnnlab.config import ExperimentConfig, load_config, parse_override
from cnnlab.errors import ConfigError
from cnnlab.models.spec import parse_spec
from cnnlab.yamlio import parse_yaml

FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = ["optim.lr", "optim.name", "optim", "train.epochs", "train.batch_size", "seed", "name", "data",
        "data.val_size", "data.normalize", "data.augment", "model", "model.arch", "schedule",
        "schedule.name", "train.early_stopping", "monitor", "device", "runs_dir", "optim.momentum"]
YAML_ATOMS = ["0", "-1", "1e400", ".inf", ".nan", "true", "null", "~", "''", "[]", "{}", "adam", "sgd",
              "[1, 2]", "{a: 1}", "&x [1]", "*x", "!!binary aGk=", "!!python/object:os.system", "'", "\"",
              ":", "- a", "{lr: 0.1, lr: 2}", "0x10", "1_000", "2025-01-01", "\t", "\x00", "é", "lenet5"]
values = st.one_of(st.sampled_from(YAML_ATOMS), st.text(max_size=30),
                   st.lists(st.sampled_from(YAML_ATOMS), max_size=4).map(" ".join))
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=15),
                 st.lists(st.sampled_from(KEYS + ["", "x", "0"]), min_size=1, max_size=3).map(".".join))


@FEW
@given(st.text(max_size=60))
def test_any_override_text_parses_or_is_a_config_error(text):
    try:
        result = parse_override(text)
    except ConfigError:
        return
    assert isinstance(result, dict)


@FEW
@given(st.lists(st.tuples(keys, values), max_size=3))
def test_any_overrides_give_a_config_or_a_config_error(pairs):
    try:
        cfg = load_config(None, [f"{k}={v}" for k, v in pairs])
    except ConfigError:
        return
    assert isinstance(cfg, ExperimentConfig)
    ExperimentConfig.model_validate(cfg.to_dict())  # what is written to config.yaml reads back


@FEW
@given(st.text(max_size=200))
def test_any_yaml_text_parses_or_is_a_config_error(text):
    try:
        parse_yaml(text, "<test>")
    except ConfigError:
        pass


@FEW
@given(st.lists(st.sampled_from(YAML_ATOMS + ["optim:", "  lr: 1", "name: x", "base: none", "data: npz",
                                              "model: [conv5-8, relu, fc]", "&a", "<<: *a"]), max_size=8))
def test_any_config_file_gives_a_config_or_a_config_error(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("cfg") / "random.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        load_config(str(path))
    except ConfigError:
        pass


TOKENS = ["conv5-16", "conv3-8p1", "conv3-8s2", "pool2", "pool3s2", "maxpool2", "avgpool2", "relu", "tanh",
          "fc", "fc100", "fc-10", "dropout0.5", "bn", "res", "(", ")", "->", "maxout2", "softmax", "lrn",
          "conv", "conv0-0", "pool0", "fc0", "dropout2", "conv5-16p-1", "x", "", ",", "conv99999999999-1"]


@FEW
@given(st.one_of(st.lists(st.sampled_from(TOKENS), max_size=8).map(" ".join), st.text(max_size=40)))
def test_any_spec_string_parses_or_is_a_config_error(text):
    try:
        layers = parse_spec(text)
    except ConfigError:
        return
    assert layers


@FEW
@given(st.lists(st.one_of(st.sampled_from(TOKENS), st.dictionaries(
    st.sampled_from(["type", "out", "kernel", "layers", "size", "p", "x"]),
    st.one_of(st.integers(-3, 100), st.sampled_from(["conv", "fc", "res", "pool", "relu"]), st.none(),
              st.lists(st.sampled_from(TOKENS), max_size=2))), st.integers(), st.none()), max_size=5))
def test_any_layer_list_parses_or_is_a_config_error(items):
    try:
        parse_spec(items)
    except ConfigError:
        pass


@FEW
@given(st.one_of(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=6).map(" ".join),
                 st.sampled_from(["lenet5", "convnet", "fc", "x"])))
def test_any_model_arch_override_gives_a_config_or_a_config_error(arch):
    try:
        load_config(None, [f"model.arch={arch}"])
    except ConfigError:
        pass
