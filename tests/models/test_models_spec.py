"""The architecture language: parsing, round trips, the YAML list form, and every documented
error (unknown layers, bad keys, shapes that do not work out, misplaced maxout...)."""

from __future__ import annotations

import pytest
import torch
import yaml
from pydantic import ValidationError

from cnnlab.config import load_config
from cnnlab.models import ModelConfig, SpecError, build_model, format_spec, parse_spec
from cnnlab.models.build import Network

CANONICAL = [
    "conv5-16p2 relu pool2 conv5-20p2 relu pool2 conv5-20p2 relu pool2 fc10",
    "conv3-8s2p1 bn lrelu0.1 pool3s2 avgpool2 gap fc",
    "keep0.9 conv5-32p2 maxout2 pool2 keep0.75:classic fc128 maxout5 drop0.5:inverted fc",
    "conv3-4p1 bn relu res(conv3-4p1 bn relu conv3-4p1 bn prelu) pool2:ceil flatten fc20 elu0.5 fc",
    "fc100 sigmoid fc50 tanh fc20 arctan fc10 softplus fc softmax",
    "avgpool2s1p1:floor lrelu elu fc",
]


@pytest.mark.parametrize("text", CANONICAL)
def test_spec_string_round_trips(text):
    specs = parse_spec(text)
    assert format_spec(specs) == text
    assert parse_spec(format_spec(specs)) == specs


@pytest.mark.parametrize("text, canonical", [
    ("CONV5-16S1P0 MaxPool2S2 FC-10", "conv5-16 pool2 fc10"),
    ("maxout lrelu0.01 elu1.0 keep1.0 drop0.50 fc", "maxout2 lrelu elu keep1 drop0.5 fc"),
    ("res ( batchnorm  leakyrelu0.2 ) , atan -> logistic fc", "res(bn lrelu0.2) arctan sigmoid fc"),
])
def test_other_spellings_normalise_to_the_canonical_string(text, canonical):
    assert format_spec(parse_spec(text)) == canonical
    assert parse_spec(text) == parse_spec(canonical)


@pytest.mark.parametrize("text", CANONICAL)
def test_yaml_list_form_round_trips(text):
    specs = parse_spec(text)
    data = yaml.safe_load(yaml.safe_dump([s.to_data() for s in specs]))
    assert parse_spec(data) == specs


def test_seed_notation_and_mappings_parse_to_the_same_layers():
    seed = parse_spec("CONV5-16 -> POOL2 -> CONV5-20 -> POOL2 -> FC-10")
    assert seed == parse_spec("conv5-16 pool2 conv5-20 pool2 fc10")
    as_list = parse_spec([{"type": "conv", "filters": 16, "kernel": 5, "padding": 2}, "relu",
                          {"type": "pool", "size": 2, "op": "max"}, {"type": "dropout", "keep": 0.8},
                          {"type": "res", "layers": ["conv3-16p1", {"type": "batchnorm"}, "relu"]},
                          {"type": "fc", "units": 10}])
    assert as_list == parse_spec("conv5-16p2 relu maxpool2 keep0.8 res(conv3-16p1 bn relu) fc10")
    assert parse_spec("drop0.25")[0].params.keep_prob == 0.75
    assert parse_spec("keep0.25")[0].params.keep_prob == 0.25


@pytest.mark.parametrize("spec, message", [
    ("conv5-16p2 relu pol2 fc", r"token 3: 'pol2' is not a layer\. Did you mean 'pool'"),
    ("conv5 fc", r"'conv5' is not a layer.*conv<F>-<N>\[s<S>\]\[p<P>\]"),
    ("keep1.5 fc", r"keep: Input should be less than or equal to 1"),
    ("res( conv3-4p1 fc", r"'res\(' is never closed"),
    ("relu ) fc", r"'\)' without a matching 'res\('"),
    ("", r"empty architecture"),
    ([{"type": "conv", "filters": 8, "kernal": 3}], r"kernal: Extra inputs are not permitted.*valid keys: filters, kernel"),
    ([{"type": "dropout", "keep": 0.5, "drop": 0.5}], r"exactly one of 'keep'.*or 'drop'"),
    ([{"type": "convolution", "filters": 8}], r"unknown layer type 'convolution'\. Did you mean 'conv'"),
    ([{"filters": 8}], r"needs 'type'"),
    (["conv3-4 relu"], r"is 2 layers; one list item is one layer"),
])
def test_bad_specs_name_the_token(spec, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(spec)


@pytest.mark.parametrize("spec, shape, message", [
    # cs231n (seeds/004): W=10, F=3, P=0, S=2 gives 4.5
    ("conv3-16s2 relu fc", (3, 10, 10),
     r"layer 1 'conv3-16s2': output height \(W - F \+ 2P\)/S \+ 1 = \(10 - 3 \+ 2\*0\)/2 \+ 1 = 4\.5 "
     r"is not an integer on input volume 10x10x3"),
    ("conv5-16p2 relu pool2 pool2 pool2 fc", (3, 28, 28),
     r"layer 5 'pool2': .*\(7 - 2 \+ 2\*0\)/2 \+ 1 = 3\.5 is not an integer on input volume 7x7x16.*pool2:ceil"),
    ("conv7-4 fc", (1, 5, 5), r"layer 1 'conv7-4': output height .* = -1 is not positive"),
    ("fc20 conv3-4 fc", (1, 8, 8), r"layer 2 'conv3-4': 'conv3-4' needs an image volume .* vector of 20"),
    ("conv3-4 pool2 maxout2 fc", (1, 8, 8), r"layer 3 'maxout2': maxout must follow a conv or fc layer"),
    ("res(conv3-4 relu) fc", (1, 8, 8), r"layer 1 'res\(\.\.\.\)': a residual block must keep its input volume "
                                         r"8x8x1 .* outputs 6x6x4"),
    ("res(conv3-1s2) fc", (1, 8, 8), r"layer 1 'res\(\.\.\.\)' > layer 1 'conv3-1s2': .* = 3\.5"),
    ("conv3-4 fc20", (1, 8, 8), r"must output one score per class, a 10-vector .* 'fc20' outputs 1x1x20"),
    ("conv3-4", (1, 8, 8), r"last layer 'conv3-4' outputs 6x6x4"),
    ("pool4p3 fc", (1, 8, 8), r"pool padding 3 must be at most half the window 4"),
])
def test_shape_errors_name_layer_volume_and_formula(spec, shape, message):
    with pytest.raises(SpecError, match=message):
        Network(parse_spec(spec), shape, 10)


def test_pool_rounding_is_explicit():
    floor = Network(parse_spec("pool2:floor fc"), (1, 7, 7), 10)
    ceil = Network(parse_spec("pool2:ceil fc"), (1, 7, 7), 10)
    assert floor.infos[0].out_shape == (1, 3, 3) and ceil.infos[0].out_shape == (1, 4, 4)
    assert floor(torch.randn(2, 1, 7, 7)).shape == ceil(torch.randn(2, 1, 7, 7)).shape == (2, 10)
    # overlapping pooling F=3, S=2 (seeds/004) on 13 -> 6
    assert Network(parse_spec("pool3s2 fc"), (4, 13, 13), 10).infos[0].out_shape == (4, 6, 6)


def test_model_config_accepts_specs_and_lists_and_rejects_typos():
    cfg = load_config(None, ["model.arch=conv5-16p2 relu pool2 fc", "model.init=he"])
    assert cfg.model.arch == "conv5-16p2 relu pool2 fc"
    model = build_model(cfg.model, (1, 28, 28), 10)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    listed = ModelConfig(arch=[{"type": "conv", "filters": 4, "kernel": 5}, "relu", "fc"])
    assert build_model(listed, (3, 32, 32), 7)(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    with pytest.raises(ValidationError, match=r"unknown model 'lenet55'\. Did you mean 'lenet5'"):
        ModelConfig(arch="lenet55")
    with pytest.raises(ValidationError, match=r"unknown init scheme 'glorto'\. Did you mean 'glorot'"):
        ModelConfig(init="glorto")
    with pytest.raises(ValidationError, match=r"give model.keep .* or model.drop .*not both"):
        ModelConfig(arch="jetnet", keep=[0.5] * 6, drop=[0.5] * 6)
    with pytest.raises(ValidationError, match=r"keep probabilities must be in \(0, 1\]"):
        ModelConfig(keep=[0.0])


def test_per_layer_rates_replace_the_arch_rates_in_order():
    model = build_model(ModelConfig(arch="jetnet", drop=[0.0, 0.1, 0.2, 0.3, 0.4, 0.6], dropout_mode="inverted"),
                        (3, 32, 32), 2)
    drops = [m for m in model.modules() if type(m).__name__ == "Dropout"]
    assert [d.keep for d in drops] == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6, 0.4])
    assert {d.mode for d in drops} == {"inverted"}
    with pytest.raises(SpecError, match=r"model.keep has 2 probabilities but zoo model 'jetnet' has 6 dropout "
                                        r"layers \(keep0.9, keep0.75"):
        build_model(ModelConfig(arch="jetnet", keep=[0.5, 0.5]), (3, 32, 32), 2)
    with pytest.raises(SpecError, match=r"zoo model 'lenet5' has 0 dropout layers \(none\)"):
        build_model(ModelConfig(keep=[0.5]), (1, 28, 28), 10)
