"""airbench94's layer options in the spec language: frozen-scale batch norm with its eps and
momentum, gelu, a constant logit scale, and the dirac (identity) init."""

import pytest
import torch
from torch import nn

from cnnlab.models import ModelConfig, build_model
from cnnlab.models.init import INITS
from cnnlab.models.spec import SpecError, format_spec, parse_spec


def test_bn_options_parse_and_round_trip():
    (bn,) = parse_spec("bn:frozen:eps1e-12:m0.4")
    assert (bn.params.frozen, bn.params.eps, bn.params.momentum) == (True, 1e-12, 0.4)
    assert format_spec(parse_spec("batchnorm:eps1e-05:m0.1")) == "bn"  # defaults are not written
    for text in ("bn:frozen", "bn:m0.4", "bn:eps0.001", "bn:frozen:eps1e-12:m0.4"):
        assert format_spec(parse_spec(text)) == text
    mapped = parse_spec([{"type": "bn", "frozen": True, "eps": 1e-12, "momentum": 0.4}])
    assert mapped == parse_spec("bn:frozen:eps1e-12:m0.4")
    with pytest.raises(SpecError, match="momentum"):
        parse_spec([{"type": "bn", "momentum": 0}])


def test_frozen_bn_keeps_its_scale_at_one_and_uses_eps_and_momentum():
    net = build_model(ModelConfig(arch="conv3-4p1 bn:frozen:eps1e-12:m0.4 relu fc"), (2, 5, 5), 3)
    bn = net.bn1
    assert isinstance(bn, nn.BatchNorm2d) and bn.eps == 1e-12 and bn.momentum == 0.4
    assert not bn.weight.requires_grad and bn.bias.requires_grad
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    x = torch.randn(8, 2, 5, 5)
    net(x).square().sum().backward()
    opt.step()
    assert torch.equal(bn.weight, torch.ones(4)) and bn.weight.grad is None
    # running stats: r = (1 - m) r + m batch, torch's convention (airbench's 0.6 = torch's 0.4)
    with torch.no_grad():
        before = bn.running_mean.clone()
        h = net.conv1(x)
        net.train()(x)
    assert torch.allclose(bn.running_mean, 0.6 * before + 0.4 * h.mean((0, 2, 3)), atol=1e-6)


def test_gelu_and_scale_layers():
    net = build_model(ModelConfig(arch="gelu fc scale0.25"), (6,), 3)
    x = torch.randn(4, 6)
    expected = 0.25 * net.fc1(torch.nn.functional.gelu(x))
    assert torch.allclose(net(x), expected)
    assert net.infos[1].activation == "softmax"  # scale does not hide the output layer's softmax


def test_dirac_init_matches_torch_dirac_on_the_first_filters():
    torch.manual_seed(0)
    w = torch.empty(6, 4, 3, 3)
    with torch.no_grad():
        INITS.get("dirac")(w, None)
    reference = torch.empty(4, 4, 3, 3)
    nn.init.dirac_(reference)
    assert torch.equal(w[:4], reference)
    bound = 1 / (4 * 9) ** 0.5  # torch's default conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert w[4:].abs().max() <= bound and w[4:].std() > bound / 4
    wide = torch.empty(2, 5, 3, 3)  # fewer filters than channels: filter i is channel i
    with torch.no_grad():
        INITS.get("dirac")(wide, None)
    assert torch.equal(wide[:, :, 1, 1], torch.eye(2, 5)) and wide.abs().sum() == 2
    fc = torch.empty(3, 7)  # a matrix: the uniform draw only
    with torch.no_grad():
        INITS.get("dirac")(fc, None)
    assert fc.abs().max() <= 1 / 7 ** 0.5 and fc.abs().min() > 0


def test_dirac_network_starts_as_identity_through_the_convs():
    net = build_model(ModelConfig(arch="conv3-3p1 conv3-3p1 fc", init="dirac"), (3, 4, 4), 2)
    x = torch.randn(2, 3, 4, 4)
    assert torch.allclose(net.conv2(net.conv1(x)), x)  # biases zero, weights identity
