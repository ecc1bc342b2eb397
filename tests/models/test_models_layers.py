"""Layers against references: maxout = max over pieces, dropout expectation identities (with
tolerances from the sample size), batch norm's train/test behaviour (seeds/002, /003), the
activations of seeds/002's table, and the init schemes' distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cnnlab.models import ModelConfig, build_model
from cnnlab.models.build import Network
from cnnlab.models.layers import Dropout, Maxout
from cnnlab.models.spec import parse_spec


def test_conv_maxout_is_the_max_over_separate_piece_convolutions():
    torch.manual_seed(0)
    net = Network(parse_spec("conv3-4p1 maxout3 fc"), (2, 5, 5), 10)
    conv = net.conv1
    assert conv.out_channels == 12  # 4 units x 3 pieces
    x = torch.randn(3, 2, 5, 5)
    # piece j of unit i is its own convolution with filter i*k + j (consecutive grouping)
    pieces = torch.stack([torch.nn.functional.conv2d(x, conv.weight[c:c + 1], conv.bias[c:c + 1], padding=1)[:, 0]
                          for c in range(12)]).reshape(4, 3, 3, 5, 5)  # unit, piece, batch, H, W
    expected = pieces.amax(dim=1).permute(1, 0, 2, 3)
    assert torch.allclose(net.maxout1(conv(x)), expected, atol=1e-6)


def test_fc_maxout_matches_numpy_formula():
    """h_i = max_j (w_ij . x + b_ij) (seeds/000 appendix A.1), in NumPy."""
    torch.manual_seed(1)
    net = Network(parse_spec("fc6 maxout4 fc"), (5,), 10)
    x = torch.randn(7, 5)
    w = net.fc1.weight.detach().numpy().reshape(6, 4, 5)
    b = net.fc1.bias.detach().numpy().reshape(6, 4)
    expected = (np.einsum("ijk,nk->nij", w, x.numpy()) + b).max(axis=2)
    assert np.allclose(net.maxout1(net.fc1(x)).detach().numpy(), expected, atol=1e-6)
    assert torch.equal(Maxout(1)(x), x)


@pytest.mark.parametrize("mode", ["inverted", "classic"])
@pytest.mark.parametrize("keep", [0.5, 0.8])
def test_dropout_expectation_identity(mode, keep):
    """E_mask[train output] = test output, per unit, within 5 standard errors of the mean of
    M masks: train output x*m*c has variance x^2 c^2 p(1-p), c = 1/p (inverted) or 1 (classic)."""
    torch.manual_seed(0)
    layer = Dropout(keep, mode)
    x = torch.randn(1, 64, dtype=torch.float64)
    samples = 20000
    layer.train()
    mean = layer(x.expand(samples, -1)).mean(0)
    layer.eval()
    test = layer(x)[0]
    scale = 1 / keep if mode == "inverted" else 1.0
    stderr = x[0].abs() * scale * math.sqrt(keep * (1 - keep)) / math.sqrt(samples)
    assert torch.all((mean - test).abs() <= 5 * stderr)
    # and the test-time scaling is the one the seeds give
    assert torch.allclose(test, x[0] if mode == "inverted" else keep * x[0])


def test_dropout_keeps_the_right_fraction_and_uses_the_global_rng():
    layer = Dropout(0.75, "classic").train()
    x = torch.ones(100_000)
    torch.manual_seed(3)
    first = layer(x)
    kept = float((first != 0).float().mean())
    assert abs(kept - 0.75) <= 5 * math.sqrt(0.75 * 0.25 / x.numel())
    torch.manual_seed(3)
    assert torch.equal(layer(x), first)  # the trainer's per-epoch reseeding reproduces the masks
    assert not torch.equal(layer(x), first)
    assert torch.equal(Dropout(1.0).train()(x), x)


def test_batchnorm_train_uses_batch_statistics_and_eval_running_averages():
    """seeds/003: x_hat = (x - mean) / sqrt(var + eps), out = gamma x_hat + beta (biased var)."""
    torch.manual_seed(0)
    net = Network(parse_spec("fc8 bn relu fc"), (5,), 3)
    bn = net.bn1
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.normal_()
    x = net.fc1(torch.randn(16, 5)).detach()
    xn = x.numpy().astype(np.float64)
    mean, var = xn.mean(0), xn.std(0) ** 2
    expected = bn.weight.detach().numpy() * (xn - mean) / np.sqrt(var + bn.eps) + bn.bias.detach().numpy()
    bn.train()
    assert np.allclose(bn(x).detach().numpy(), expected, atol=1e-5)
    # running averages moved 10% towards the batch (torch keeps the unbiased variance there)
    assert np.allclose(bn.running_mean.numpy(), 0.1 * mean, atol=1e-6)
    bn.eval()
    running = (xn - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + bn.eps)
    assert np.allclose(bn(x).detach().numpy(), bn.weight.detach().numpy() * running + bn.bias.detach().numpy(),
                       atol=1e-5)


def test_activations_follow_seed_formulas():
    x = torch.linspace(-3, 3, 61)
    net = Network(parse_spec("sigmoid tanh arctan softplus relu lrelu0.1 elu0.5 prelu fc"), (61,), 2)
    ref = {
        "sigmoid1": 1 / (1 + np.exp(-x.numpy())), "tanh1": np.tanh(x.numpy()), "arctan1": np.arctan(x.numpy()),
        "softplus1": np.log1p(np.exp(x.numpy())), "relu1": np.maximum(0, x.numpy()),
        "lrelu1": np.where(x.numpy() < 0, 0.1 * x.numpy(), x.numpy()),
        "elu1": np.where(x.numpy() < 0, 0.5 * (np.exp(x.numpy()) - 1), x.numpy()),
        "prelu1": np.where(x.numpy() < 0, 0.25 * x.numpy(), x.numpy()),
    }
    for name, expected in ref.items():
        assert np.allclose(getattr(net, name)(x[None])[0].detach().numpy(), expected, atol=1e-6), name
    # PReLU learns one slope per channel (He et al. 2015)
    assert Network(parse_spec("conv3-6 prelu fc"), (1, 5, 5), 2).prelu1.weight.shape == (6,)


def _weights(arch: str, init: str, shape=(1, 28, 28), **kw):
    torch.manual_seed(0)
    return build_model(ModelConfig(arch=arch, init=init, **kw), shape, 10)


@pytest.mark.parametrize("init, std", [
    ("small", lambda fan_in, fan_out: 0.01),
    ("xavier", lambda fan_in, fan_out: 1 / math.sqrt(fan_in)),
    ("he", lambda fan_in, fan_out: math.sqrt(2 / fan_in)),
    ("glorot", lambda fan_in, fan_out: math.sqrt(6 / (fan_in + fan_out)) / math.sqrt(3)),
])
def test_init_scheme_standard_deviations(init, std):
    """The sample std of n weights is within 5 * std * sqrt(2/n) (normal; smaller for uniform)."""
    model = _weights("conv5-64 relu fc300 tanh fc", init)
    for info in model.linear_layers():
        w = info.module.weight.detach()
        fan_in, fan_out = w[0].numel(), w.shape[0] * w[0, 0].numel()
        target = std(fan_in, fan_out)
        assert abs(float(w.std()) - target) <= 5 * target * math.sqrt(2 / w.numel()), (init, info.name)
        assert float(w.mean()) == pytest.approx(0, abs=5 * target / math.sqrt(w.numel()))
        assert torch.all(info.module.bias == 0)


def test_glorot_is_four_times_wider_before_a_sigmoid_and_zero_last_zeroes_the_output():
    model = _weights("fc100 sigmoid fc50 tanh fc", "glorot", zero_last=True)
    fc1, fc2, fc3 = (i.module.requires_grad_(False) for i in model.linear_layers())
    bound1 = 4 * math.sqrt(6 / (784 + 100))
    bound2 = math.sqrt(6 / (100 + 50))
    assert 0.95 * bound1 < float(fc1.weight.abs().max()) <= bound1
    assert 0.95 * bound2 < float(fc2.weight.abs().max()) <= bound2
    assert torch.all(fc3.weight == 0) and torch.all(fc3.bias == 0)
    # logreg and mlp start with a zero output layer (seeds/001); network3 too (Nielsen)
    for arch in ("logreg", "mlp", "network3"):
        assert torch.all(_weights(arch, None).linear_layers()[-1].module.weight == 0), arch
