"""airbench94's decoupled, per-1024-examples statement of lr and weight decay, and its higher
lr for batch-norm biases, against a transcription of airbench94's own optimizer setup."""

import copy

import pytest
import torch
import torch.nn.functional as F

from cnnlab.models import ModelConfig, build_model
from cnnlab.optim import build_optimizer, optim_config, step_rates


def test_step_rates_convert_per_1024_statements():
    cfg = optim_config(lr=11.5, momentum=0.85, weight_decay=0.0153, per_1024=True)
    lr, wd = step_rates(cfg, batch_size=1024)
    kilostep = 1024 * (1 + 1 / (1 - 0.85))  # airbench94: lr / kilostep_scale, per summed-loss example
    assert lr == pytest.approx(11.5 / kilostep * 1024)  # x batch: cnnlab averages the loss
    assert wd == pytest.approx(0.0153 * 1024 / kilostep)
    assert step_rates(cfg, 512) == pytest.approx((lr / 2, wd / 2))
    plain = optim_config(lr=0.1, weight_decay=0.01)
    assert step_rates(plain) == (0.1, 0.01)
    with pytest.raises(ValueError, match="batch size"):
        step_rates(cfg)


def airbench_sgd(model, lr_1024, wd_1024, momentum, bias_scaler, batch):
    """airbench94.py's setup: SGD on the summed loss; BN biases at bias_scaler x lr; every
    trainable parameter decayed by wd per step whatever its group's lr."""
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    lr = lr_1024 / kilostep_scale
    wd = wd_1024 * batch / kilostep_scale
    lr_biases = lr * bias_scaler
    norm_biases = [p for k, p in model.named_parameters() if "bn" in k and p.requires_grad]
    other = [p for k, p in model.named_parameters() if "bn" not in k and p.requires_grad]
    return torch.optim.SGD([dict(params=norm_biases, lr=lr_biases, weight_decay=wd / lr_biases),
                            dict(params=other, lr=lr, weight_decay=wd / lr)], momentum=momentum, nesterov=True)


def test_cnnlab_steps_equal_airbench94s():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="conv3-4p1 bn:frozen relu pool2 fc"), (3, 6, 6), 5).double()
    reference = copy.deepcopy(model)
    batch = 16
    cfg = optim_config(lr=11.5, momentum=0.85, weight_decay=0.0153, per_1024=True, regularize_all=True,
                       layer_lr={"bn*": 64.0})
    ours = build_optimizer(cfg, model, batch)
    theirs = airbench_sgd(reference, 11.5, 0.0153, 0.85, 64.0, batch)
    assert {g["lr_mult"] for g in ours.param_groups} == {1.0, 64.0}
    for step in range(4):
        x, y = torch.randn(batch, 3, 6, 6, dtype=torch.double), torch.randint(0, 5, (batch,))
        for net, opt, reduction in ((model, ours, "mean"), (reference, theirs, "sum")):
            opt.zero_grad()
            F.cross_entropy(net(x), y, reduction=reduction).backward()
            opt.step()
    for (name, a), b in zip(model.named_parameters(), reference.parameters()):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12), name


def test_weight_decay_is_decoupled_from_the_lr_multiplier_and_spares_biases_by_default():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2))
    opt = build_optimizer(optim_config(lr=0.1, momentum=0, weight_decay=0.01, layer_lr={1: 10.0}), model)
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    after = list(model.parameters())
    # zero gradient: weights shrink by exactly wd per step (x lr-independent), biases stay
    assert torch.allclose(after[0], before[0] * (1 - 0.01)) and torch.allclose(after[2], before[2] * (1 - 0.01))
    assert torch.equal(after[1], before[1]) and torch.equal(after[3], before[3])
