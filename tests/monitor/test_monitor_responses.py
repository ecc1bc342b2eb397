"""What a filter responds to (issue 17): receptive fields, maximising inputs, top patches and
saliency, against references (gradient support, the unit's value on its patch alone, autograd
of a linear model)."""

from __future__ import annotations

import pytest
import torch

from cnnlab.models import ModelConfig, build_model
from cnnlab.monitor.responses import (conv_layers, maximizing_inputs, receptive_field, saliency,
                                      strongest_filters, top_patches)


def _net(arch: str, shape=(1, 20, 20), classes: int = 3):
    torch.manual_seed(0)
    return build_model(ModelConfig(arch=arch), shape, classes).eval()


@pytest.mark.parametrize("arch, layer", [
    ("conv3-4 pool2 conv3-4s2 fc", 1),
    ("conv3-4p1 avgpool4s2 conv5-4p2 fc", 1),
    ("conv3-4 res( conv3-4p1 ) conv3-2 fc", 2),
])
def test_receptive_field_is_the_support_of_the_units_gradient(arch, layer):
    """Without nonlinearities a unit's gradient is nonzero exactly on its receptive field."""
    net = _net(arch)
    module = conv_layers(net)[layer].module
    rf = receptive_field(net, module)
    out = {}
    module.register_forward_hook(lambda m, i, o: out.setdefault("y", o))
    x = torch.randn(1, 1, 20, 20, requires_grad=True)
    net(x)
    y = out["y"]
    i, j = y.shape[2] // 2, y.shape[3] // 2
    (g,) = torch.autograd.grad(y[0, 0, i, j], x)
    rows = g[0, 0].abs().sum(1).nonzero().flatten()
    cols = g[0, 0].abs().sum(0).nonzero().flatten()
    top, left = rf.start + i * rf.jump, rf.start + j * rf.jump
    assert (int(rows.min()), int(rows.max())) == (max(top, 0), min(top + rf.size, 20) - 1)
    assert (int(cols.min()), int(cols.max())) == (max(left, 0), min(left + rf.size, 20) - 1)


def test_maximizing_inputs_raise_the_filters_activation_and_are_seeded():
    net = _net("conv5-6 relu pool2 conv3-8 relu fc")
    module = conv_layers(net)[1].module
    filters = [0, 3, 5]
    act = {}
    module.register_forward_hook(lambda m, i, o: act.__setitem__("y", o))
    start = maximizing_inputs(net, module, filters, (1, 20, 20), steps=0)
    best = maximizing_inputs(net, module, filters, (1, 20, 20), steps=60)
    again = maximizing_inputs(net, module, filters, (1, 20, 20), steps=60)
    assert torch.equal(best, again)
    with torch.no_grad():
        scores = []
        for x in (start, best, torch.randn(3, 1, 20, 20)):
            net(x)
            scores.append(act["y"][torch.arange(3), torch.tensor(filters)].mean((1, 2)))
    assert (scores[1] > scores[0]).all() and (scores[1] > scores[2]).all()


def test_top_patches_are_the_strongest_units_fields():
    """No padding: the unit's value depends on its field only, so the patch pasted alone into a
    blank image at the same place gives the same activation; and the order is by activation."""
    net = _net("conv3-4 relu pool2 conv3-5 fc")
    module = conv_layers(net)[1].module
    rf = receptive_field(net, module)
    images = torch.randn(30, 1, 20, 20)
    act = {}
    module.register_forward_hook(lambda m, i, o: act.__setitem__("y", o))
    chosen = strongest_filters(net, module, images, 2)
    patches = top_patches(net, module, chosen, images, images, k=9)
    with torch.no_grad():
        net(images)
        y = act["y"].clone()
    for f, group in zip(chosen, patches):
        assert group.shape == (9, 1, rf.size, rf.size)
        per_image, where = y[:, f].flatten(1).max(1)
        order = per_image.argsort(descending=True)[:9]
        i = int(order[0])
        row, col = divmod(int(where[i]), y.shape[3])
        alone = torch.zeros(1, 1, 20, 20)
        top, left = rf.start + row * rf.jump, rf.start + col * rf.jump
        alone[0, :, top:top + rf.size, left:left + rf.size] = group[0]
        with torch.no_grad():
            net(alone)
        assert float(act["y"][0, f, row, col]) == pytest.approx(float(per_image[i]), rel=1e-5, abs=1e-6)


def test_saliency_of_a_linear_model_is_its_weight_row():
    net = _net("fc", shape=(3, 6, 6), classes=4)
    x = torch.randn(1, 3, 6, 6)
    smap, label = saliency(net, x)
    assert label == int(net(x).argmax())
    weight = net.fc1.weight[label].view(3, 6, 6).abs().amax(0)
    torch.testing.assert_close(smap, weight.detach())
