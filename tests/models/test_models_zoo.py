"""Every zoo model builds for MNIST and CIFAR shapes, with parameter counts counted by hand
from the seeds' descriptions, and the inferred volumes equal what the forward pass produces."""

from __future__ import annotations

import pytest
import torch

from cnnlab.models import MODELS, ModelConfig, build_model
from cnnlab.models.build import flat_infos

MNIST, CIFAR = (1, 28, 28), (3, 32, 32)


def conv(c_in, n, f):
    return f * f * c_in * n + n


def fc(n_in, n):
    return n_in * n + n


def bn(c):
    return 2 * c


# Hand counts: conv(C_in, filters x pieces, F) and fc(inputs, units x pieces). Spatial sizes
# written out: (W - F + 2P)/S + 1 per conv, pools of 2 halve (odd sizes round up in the zoo).
HAND_COUNTS = {
    "logreg": {MNIST: fc(784, 10), CIFAR: fc(3072, 10)},
    "mlp": {MNIST: fc(784, 20) + fc(20, 10), CIFAR: fc(3072, 20) + fc(20, 10)},
    # 28 -> 24 -> 12 -> 8 -> 4 ; 32 -> 28 -> 14 -> 10 -> 5
    "lenet5": {MNIST: conv(1, 20, 5) + conv(20, 50, 5) + fc(4 * 4 * 50, 500) + fc(500, 10),
               CIFAR: conv(3, 20, 5) + conv(20, 50, 5) + fc(5 * 5 * 50, 500) + fc(500, 10)},
    # pad 2 keeps the size; pools: 32 -> 16 -> 8 -> 4 ; 28 -> 14 -> 7 -> 4
    "convnet": {MNIST: conv(1, 16, 5) + conv(16, 20, 5) + conv(20, 20, 5) + fc(4 * 4 * 20, 10),
                CIFAR: 22400 + 16 + 20 + 20 + 10},
    "maxout-convnet": {
        MNIST: conv(1, 32, 5) + conv(16, 40, 5) + conv(20, 40, 5) + fc(4 * 4 * 20, 10),
        CIFAR: conv(3, 32, 5) + conv(16, 40, 5) + conv(20, 40, 5) + fc(4 * 4 * 20, 10)},
    "maxout-net": {
        MNIST: conv(1, 100, 5) + conv(50, 200, 5) + conv(100, 400, 5) + fc(4 * 4 * 200, 1000) + fc(500, 10),
        CIFAR: conv(3, 100, 5) + conv(50, 200, 5) + conv(100, 400, 5) + fc(4 * 4 * 200, 1000) + fc(500, 10)},
    # CIFAR: 32+8-8+1 = 33 -> pool4s2 16 -> 16+6-8+1 = 15 -> 7 -> 7+6-5+1 = 9 -> pool2s2 5
    # MNIST: 28+8-8+1 = 29 -> 14 -> 14+6-8+1 = 13 -> 6 -> 6+6-5+1 = 8 -> 4
    "maxout-goodfellow": {
        MNIST: conv(1, 192, 8) + conv(96, 384, 8) + conv(192, 384, 5) + fc(4 * 4 * 192, 2500) + fc(500, 10),
        CIFAR: conv(3, 192, 8) + conv(96, 384, 8) + conv(192, 384, 5) + fc(5 * 5 * 192, 2500) + fc(500, 10)},
    "jetnet": {
        MNIST: conv(1, 64, 5) + conv(32, 128, 5) + conv(64, 256, 5) + fc(4 * 4 * 128, 256) + fc(128, 128) + fc(64, 10),
        CIFAR: conv(3, 64, 5) + conv(32, 128, 5) + conv(64, 256, 5) + fc(4 * 4 * 128, 256) + fc(128, 128) + fc(64, 10)},
    "network3": {
        MNIST: conv(1, 20, 5) + conv(20, 40, 5) + fc(4 * 4 * 40, 1000) + fc(1000, 1000) + fc(1000, 10),
        CIFAR: conv(3, 20, 5) + conv(20, 40, 5) + fc(5 * 5 * 40, 1000) + fc(1000, 1000) + fc(1000, 10)},
}
_RESNET_BODY = (conv(64, 128, 3) + bn(128) + 2 * (conv(128, 128, 3) + bn(128)) + conv(128, 256, 3) + bn(256)
                + conv(256, 512, 3) + bn(512) + 2 * (conv(512, 512, 3) + bn(512)) + fc(512, 10))
HAND_COUNTS["resnet9"] = {MNIST: conv(1, 64, 3) + bn(64) + _RESNET_BODY, CIFAR: conv(3, 64, 3) + bn(64) + _RESNET_BODY}


def test_every_zoo_model_has_a_hand_count():
    assert sorted(HAND_COUNTS) == MODELS.names()


@pytest.mark.parametrize("shape", [MNIST, CIFAR], ids=["mnist", "cifar"])
@pytest.mark.parametrize("name", sorted(HAND_COUNTS))
def test_zoo_model_builds_with_hand_counted_parameters(name, shape):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=name), shape, 10)
    assert sum(p.numel() for p in model.parameters()) == HAND_COUNTS[name][shape]
    # inferred volumes == the volumes the forward pass produces, layer by layer
    seen = {}
    hooks = [info.module.register_forward_hook(lambda m, i, o, n=info.name: seen.__setitem__(n, tuple(o.shape[1:])))
             for info in flat_infos(model.infos)]
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(2, *shape))
    for h in hooks:
        h.remove()
    assert logits.shape == (2, 10)
    for info in flat_infos(model.infos):
        assert seen[info.name] == info.out_shape, info.name


@pytest.mark.parametrize("name", ["convnet", "jetnet", "lenet5"])
def test_zoo_model_adapts_to_class_count(name):
    model = build_model(ModelConfig(arch=name), (3, 32, 32), 2)
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 2)


def test_lenet5_layer_order_and_init():
    """The main job's network must stay exactly LeNet-5 with Glorot-uniform weights, zero biases."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(), (1, 28, 28), 10)
    kinds = [type(m).__name__ for m in model.children()]
    assert kinds == ["Conv2d", "MaxPool2d", "Tanh", "Conv2d", "MaxPool2d", "Tanh",
                     "FullyConnected", "Tanh", "FullyConnected"]
    for info in model.linear_layers():
        w = info.module.weight
        fan_in, fan_out = w[0].numel(), w.shape[0] * w[0, 0].numel()
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert w.abs().max() <= bound
        assert w.abs().max() > 0.95 * bound  # filled the range, so not a narrower scheme
        assert torch.all(info.module.bias == 0)


def test_jetnet_dropout_matches_the_seed():
    model = build_model(ModelConfig(arch="jetnet"), (3, 32, 32), 2)
    drops = [m for m in model.modules() if type(m).__name__ == "Dropout"]
    assert [d.keep for d in drops] == [0.9, 0.75, 0.75, 0.75, 0.5, 0.5]
    assert {d.mode for d in drops} == {"classic"}
    assert type(list(model.children())[0]).__name__ == "Dropout"  # on the input
