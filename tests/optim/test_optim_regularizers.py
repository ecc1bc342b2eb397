"""Regularisers (L2, L1, elastic net gradients; weights only by default; max-norm; clipping),
per-layer learning-rate multipliers, and the optim config's errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.config import load_config
from cnnlab.errors import ConfigError
from cnnlab.optim import build_optimizer, optim_config, parameter_layers, regularization
from cnnlab.optim.regularizers import apply_max_norm, clip_gradients


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 5), nn.Linear(5, 2)).double()


def penalty_grads(model, **cfg) -> dict[str, torch.Tensor]:
    model.zero_grad()
    regularization(optim_config(**cfg), model).backward()
    return {n: p.grad if p.grad is not None else torch.zeros_like(p) for n, p in model.named_parameters()}


def test_l2_gradient_is_lambda_w_on_weights_only():
    model = small_net()
    grads = penalty_grads(model, l2=0.3)
    for name, p in model.named_parameters():
        expected = 0.3 * p.detach() if p.ndim > 1 else torch.zeros_like(p)  # biases and BN: none
        torch.testing.assert_close(grads[name], expected, rtol=0, atol=1e-12)
    weights = [p.detach() for p in model.parameters() if p.ndim > 1]
    value = regularization(optim_config(l2=0.3), model).detach()
    assert float(value) == pytest.approx(0.5 * 0.3 * sum(float(w.pow(2).sum()) for w in weights))


def test_l1_and_elastic_net_gradients():
    model = small_net()
    grads = penalty_grads(model, l1=0.2, l2=0.1)  # elastic net
    for name, p in model.named_parameters():
        expected = 0.2 * p.detach().sign() + 0.1 * p.detach() if p.ndim > 1 else torch.zeros_like(p)
        torch.testing.assert_close(grads[name], expected, rtol=0, atol=1e-12)


def test_regularize_all_includes_biases_and_batchnorm():
    model = small_net()
    grads = penalty_grads(model, l2=0.5, regularize_all=True)
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], 0.5 * p.detach(), rtol=0, atol=1e-12)


def test_no_penalty_means_none():
    assert regularization(optim_config(), small_net()) is None


def test_max_norm_caps_each_units_incoming_weights():
    model = small_net()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(10)
    apply_max_norm(model, 0.5)
    conv, fc = model[0].weight.detach(), model[4].weight.detach()
    assert conv.flatten(1).norm(dim=1).max() <= 0.5 + 1e-9  # per filter (fan-in of one unit)
    assert fc.norm(dim=1).max() <= 0.5 + 1e-9               # per row
    assert fc.norm(dim=1).min() == pytest.approx(0.5, rel=1e-6)  # projected onto the ball, not shrunk more
    assert model[0].bias.abs().max() > 0.5  # biases are left alone by default


def test_max_norm_leaves_small_weights_untouched():
    model = small_net()
    before = model[5].weight.detach().clone()
    apply_max_norm(model, 100.0)
    torch.testing.assert_close(model[5].weight.detach(), before, rtol=0, atol=0)


def test_clip_gradients_by_global_norm():
    model = small_net()
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)
    total = float(torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters())))
    norm = clip_gradients(model, 1.0)
    assert float(norm) == pytest.approx(total)
    clipped = float(torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters())))
    assert clipped == pytest.approx(1.0, rel=1e-5)
    grads = [p.grad for p in model.parameters()]
    assert all(torch.allclose(g, torch.full_like(g, 3.0 / total), rtol=1e-5) for g in grads)  # direction kept


# -- per-layer learning-rate multipliers -------------------------------------------------------

def groups_by_mult(model, layer_lr) -> dict[float, list[str]]:
    opt = build_optimizer(optim_config(lr=0.1, layer_lr=layer_lr), model)
    return {g["lr_mult"]: g["names"] for g in opt.param_groups}


def test_layers_are_numbered_in_order():
    assert parameter_layers(small_net()) == ["0", "1", "4", "5"]


def test_multiplier_by_index_name_and_negative_index():
    groups = groups_by_mult(small_net(), {0: 10.0, "3": 0.5})  # "3": index, as saved configs write it
    assert groups == {1.0: ["1.weight", "1.bias", "4.weight", "4.bias"],
                      10.0: ["0.weight", "0.bias"], 0.5: ["5.weight", "5.bias"]}
    assert groups_by_mult(small_net(), {-1: 3.0})[3.0] == ["5.weight", "5.bias"]


def test_multiplier_by_prefix_and_glob_on_named_modules():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3))
            self.fc1, self.fc2 = nn.Linear(2, 2), nn.Linear(2, 2)

    groups = groups_by_mult(Net(), {"features": 4.0, "fc*": 2.0})
    assert groups_by_mult(Net(), {"features.1": 3.0})[3.0] == ["features.1.weight", "features.1.bias"]
    assert groups[4.0] == ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias"]
    assert groups[2.0] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def test_multipliers_reach_the_learning_rate_of_their_groups():
    """With the scheduler applied, a x10 layer takes a 10x larger SGD step on the same gradient."""
    from cnnlab.optim import LRScheduler, schedule_config

    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False)).double()
    opt = build_optimizer(optim_config(lr=0.1, momentum=0, layer_lr={0: 10.0}), model)
    LRScheduler(schedule_config(name="constant"), opt, 1, 1)
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    steps = [float((b - p.detach()).mean()) for b, p in zip(before, model.parameters())]
    assert steps == pytest.approx([1.0, 0.1])


def test_unknown_layer_lists_the_layers():
    with pytest.raises(ConfigError, match=r"optim.layer_lr: no layer 'conv9'.*0: 0, 1: 1, 2: 4, 3: 5"):
        groups_by_mult(small_net(), {"conv9": 2.0})
    with pytest.raises(ConfigError, match="no layer '7'"):
        groups_by_mult(small_net(), {7: 2.0})
    with pytest.raises(ConfigError, match="make them agree"):
        groups_by_mult(small_net(), {0: 2.0, "0": 3.0})


# -- config ------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    (["optim.name=adam", "optim.momentum=0.5"], "optim.momentum does not apply to optimizer 'adam'"),
    (["optim=adma"], "Did you mean 'adam'"),
    (["schedule=plateau", "schedule.k=0.1"], "schedule.k does not apply to schedule 'plateau'"),
    (["schedule=stpe"], "Did you mean 'step'"),
    (["optim=lbfgs", "optim.layer_lr={0: 2}"], "lbfgs keeps a single parameter group"),
    (["optim.layer_lr={0: -1}"], "multipliers must be > 0"),
    (["optim=adaptive_gains", "optim.gain_min=5", "optim.gain_max=2"], "gain_min"),
    (["optim.label_smoothing=1.5"], "optim.label_smoothing"),
    (["schedule=plateau", "schedule.monitor=lr"], "schedule.mode"),
])
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, overrides)


def test_yaml_shorthands_and_schedule_default():
    cfg = load_config(None, ["optim=adam", "schedule.warmup_epochs=1"])
    assert (cfg.optim.lr, cfg.optim.beta1, cfg.optim.beta2, cfg.optim.eps) == (1e-3, 0.9, 0.999, 1e-8)
    assert cfg.schedule.name == "linear"  # a partial schedule section keeps the main job's schedule
    resolved = load_config(None, ["optim=rmsprop", "optim.eps_inside_sqrt=true"]).to_dict()
    from cnnlab.config import build_config
    assert build_config(resolved).to_dict() == resolved  # a resolved config re-validates unchanged
