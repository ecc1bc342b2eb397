"""FC-to-conv (issue 17, cs231n "Converting FC layers to CONV layers"): the converted network
gives the original logits on the training size and, on a larger input, the score map of the
original evaluated at every stride position."""

from __future__ import annotations

import pytest
import torch

from cnnlab.models import ModelConfig, build_model
from cnnlab.models.fullconv import fully_convolutional, sliding_reference
from cnnlab.models.spec import SpecError

CASES = [
    # (arch, input C x H x W, larger H x W, total stride)
    ("conv5-8 relu pool2 conv5-16 relu pool2 fc32 relu fc", (1, 28, 28), (44, 36), 4),
    ("conv3-6 tanh pool3s2 conv3-8s2 prelu flatten fc20 maxout2 keep0.5 fc bn softmax", (3, 17, 17), (33, 25), 4),
    ("conv3-4 relu res( conv3-4p1 relu ) pool2 fc12 bn elu fc", (2, 12, 12), (20, 16), 2),
]


def _trained_like(arch: str, shape, classes: int = 5) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model(ModelConfig(arch=arch), shape, classes).double()
    for m in net.modules():  # batch norm with non-trivial statistics, as after training
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
    return net.eval()


@pytest.mark.parametrize("arch, shape, larger, stride", CASES)
def test_same_logits_on_the_training_size(arch, shape, larger, stride):
    net = _trained_like(arch, shape)
    conv = fully_convolutional(net)
    assert not any(isinstance(m, torch.nn.Linear) for m in conv.modules())
    x = torch.randn(4, *shape, dtype=torch.float64)
    scores = conv(x)
    assert scores.shape == (4, 5, 1, 1)
    torch.testing.assert_close(scores.flatten(1), net(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("arch, shape, larger, stride", CASES[:2])
def test_larger_input_gives_the_original_at_every_stride_position(arch, shape, larger, stride):
    net = _trained_like(arch, shape)
    conv = fully_convolutional(net)
    assert conv.stride == stride and conv.window == shape[1:] and conv.exact
    x = torch.randn(2, shape[0], *larger, dtype=torch.float64)
    scores = conv(x)
    assert scores.shape[2:] == conv.map_size(*larger)
    reference = sliding_reference(net, x, shape[1:], stride)
    assert reference.shape == scores.shape and scores.shape[2] * scores.shape[3] > 1
    torch.testing.assert_close(scores, reference, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(conv.average_scores(x), reference.mean((2, 3)), rtol=1e-10, atol=1e-10)


def test_padding_before_the_head_makes_the_map_differ_from_windows_and_says_so():
    """cs231n's identity needs windows that see no padding: with a padded conv the converted
    network still equals the original on the training size (above) but not window by window."""
    arch, shape, larger, stride = CASES[2]
    net = _trained_like(arch, shape)
    conv = fully_convolutional(net)
    assert not conv.exact and conv.stride == stride
    x = torch.randn(1, shape[0], *larger, dtype=torch.float64)
    assert not torch.allclose(conv(x), sliding_reference(net, x, shape[1:], stride))


def test_the_original_is_untouched_and_unsupported_heads_say_why():
    net = _trained_like(CASES[0][0], CASES[0][1])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fully_convolutional(net)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    with pytest.raises(SpecError, match="no conv or pooling layer"):
        fully_convolutional(build_model(ModelConfig(arch="fc20 relu fc"), (1, 8, 8), 3))
    with pytest.raises(SpecError, match="already takes any size"):
        fully_convolutional(build_model(ModelConfig(arch="conv3-4 relu gap fc"), (1, 8, 8), 3))
