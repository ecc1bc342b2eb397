"""Every update rule, N steps on a toy problem, against torch.optim (where it is the rule) and a
NumPy transcription of the seed's own formula, to 1e-6 (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.optim import OPTIMIZERS, OptimCommon, build_optimizer, optim_config

STEPS = 25


def toy_gradient(x: np.ndarray, t: int) -> np.ndarray:
    """A gradient whose signs change over time (so momentum/gains see agreement and disagreement):
    the gradient of 1/2 sum a_i x_i^2 plus a step-dependent drift."""
    a = np.array([[3.0, 0.5], [1.0, 0.05], [2.0, 8.0]])
    return a * x + 0.3 * np.sin(0.7 * t + np.arange(x.size).reshape(x.shape))


def x0() -> np.ndarray:
    return np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.2]])


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(x0(), dtype=torch.float64))


def run_torch(optimizer: torch.optim.Optimizer, param: torch.Tensor, steps: int = STEPS) -> np.ndarray:
    for t in range(1, steps + 1):
        optimizer.zero_grad()
        param.grad = torch.from_numpy(toy_gradient(param.detach().numpy(), t))
        optimizer.step()
    return param.detach().numpy().copy()


def run_ours(cfg: OptimCommon, steps: int = STEPS) -> np.ndarray:
    model = Toy()
    return run_torch(build_optimizer(cfg, model), model.w, steps)


def run_reference(update, steps: int = STEPS) -> np.ndarray:
    """``update(x, g, state, t) -> x`` applied ``steps`` times (the NumPy transcription)."""
    x, state = x0(), {}
    for t in range(1, steps + 1):
        x = update(x, toy_gradient(x, t), state, t)
    return x


def torch_param() -> torch.Tensor:
    return nn.Parameter(torch.tensor(x0(), dtype=torch.float64))


# -- NumPy transcriptions of the seeds' formulas -----------------------------------------------

def sgd_ref(lr):
    return lambda x, g, s, t: x - lr * g


def momentum_ref(lr, mu):  # cs231n: v = mu * v - learning_rate * dx; x += v
    def update(x, g, s, t):
        s["v"] = mu * s.get("v", 0.0) - lr * g
        return x + s["v"]
    return update


def nesterov_ref(lr, mu):  # cs231n: v_prev = v; v = mu*v - lr*dx; x += -mu*v_prev + (1+mu)*v
    def update(x, g, s, t):
        v_prev = s.get("v", 0.0)
        s["v"] = mu * v_prev - lr * g
        return x - mu * v_prev + (1 + mu) * s["v"]
    return update


def ema_momentum_ref(lr, beta):  # seeds/001: m = beta*m + (1-beta)*grad; p -= lr*m
    def update(x, g, s, t):
        s["m"] = beta * s.get("m", 0.0) + (1 - beta) * g
        return x - lr * s["m"]
    return update


def adagrad_ref(lr, eps):  # cs231n: cache += dx**2; x += -lr*dx/(np.sqrt(cache)+eps)
    def update(x, g, s, t):
        s["cache"] = s.get("cache", 0.0) + g**2
        return x - lr * g / (np.sqrt(s["cache"]) + eps)
    return update


def rmsprop_outside_ref(lr, rho, eps):  # seeds/002: x += -lr*dx/(np.sqrt(cache)+eps)
    def update(x, g, s, t):
        s["cache"] = rho * s.get("cache", 0.0) + (1 - rho) * g**2
        return x - lr * g / (np.sqrt(s["cache"]) + eps)
    return update


def rmsprop_inside_ref(lr, rho, eps):  # seeds/000 listing 2: param - lr*grad/T.sqrt(accu_new+eps)
    def update(x, g, s, t):
        s["accu"] = rho * s.get("accu", 0.0) + (1 - rho) * g**2
        return x - lr * g / np.sqrt(s["accu"] + eps)
    return update


def adadelta_ref(lr, rho, eps):  # Zeiler 2012, Algorithm 1, times the optional lr
    def update(x, g, s, t):
        s["eg2"] = rho * s.get("eg2", 0.0) + (1 - rho) * g**2
        dx = -np.sqrt(s.get("edx2", 0.0) + eps) / np.sqrt(s["eg2"] + eps) * g
        s["edx2"] = rho * s.get("edx2", 0.0) + (1 - rho) * dx**2
        return x + lr * dx
    return update


def adam_ref(lr, b1, b2, eps):  # seeds/003, with bias correction
    def update(x, g, s, t):
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g**2
        mb, vb = s["m"] / (1 - b1**t), s["v"] / (1 - b2**t)
        return x - lr * mb / (np.sqrt(vb) + eps)
    return update


def gains_ref(lr, up, down, lo, hi):
    """seeds/001: p -= lr * ada_rates * grad; then, from the previous and current gradients,
    ar[g>0] += .05; ar[g<0] *= .95 (and the range the seed left unimplemented)."""
    def update(x, g, s, t):
        ar = s.setdefault("ar", np.ones_like(x))
        x = x - lr * ar * g
        if "last" in s:
            prod = s["last"] * g
            ar[prod > 0] += up
            ar[prod < 0] *= down
            np.clip(ar, lo, hi, out=ar)
        s["last"] = g
        return x
    return update


# -- the comparisons ---------------------------------------------------------------------------

CASES = [
    # (config, NumPy reference of the seed's formula, torch.optim twin or None)
    (dict(name="sgd", lr=0.05, momentum=0.0, nesterov=False), sgd_ref(0.05),
     lambda p: torch.optim.SGD([p], lr=0.05)),
    (dict(name="sgd", lr=0.05, momentum=0.9, nesterov=False), momentum_ref(0.05, 0.9),
     lambda p: torch.optim.SGD([p], lr=0.05, momentum=0.9)),
    (dict(name="sgd", lr=0.05, momentum=0.9, nesterov=True), nesterov_ref(0.05, 0.9),
     lambda p: torch.optim.SGD([p], lr=0.05, momentum=0.9, nesterov=True)),
    (dict(name="ema_momentum", lr=0.1, momentum=0.8), ema_momentum_ref(0.1, 0.8), None),
    (dict(name="adagrad", lr=0.3, eps=1e-7), adagrad_ref(0.3, 1e-7),
     lambda p: torch.optim.Adagrad([p], lr=0.3, eps=1e-7)),
    (dict(name="rmsprop", lr=0.01, rho=0.9, eps=1e-8), rmsprop_outside_ref(0.01, 0.9, 1e-8),
     lambda p: torch.optim.RMSprop([p], lr=0.01, alpha=0.9, eps=1e-8)),
    (dict(name="rmsprop", lr=0.01, rho=0.999, eps=1e-2, eps_inside_sqrt=True),
     rmsprop_inside_ref(0.01, 0.999, 1e-2), None),
    (dict(name="adadelta", lr=1.0, rho=0.95, eps=1e-6), adadelta_ref(1.0, 0.95, 1e-6),
     lambda p: torch.optim.Adadelta([p], lr=1.0, rho=0.95, eps=1e-6)),
    (dict(name="adadelta", lr=0.01, rho=0.95, eps=1e-6), adadelta_ref(0.01, 0.95, 1e-6),
     lambda p: torch.optim.Adadelta([p], lr=0.01, rho=0.95, eps=1e-6)),
    (dict(name="adam", lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8), adam_ref(0.01, 0.9, 0.999, 1e-8),
     lambda p: torch.optim.Adam([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8)),
    (dict(name="adaptive_gains", lr=0.02, gain_step=0.05, gain_decay=0.95, gain_min=0.5, gain_max=1.3),
     gains_ref(0.02, 0.05, 0.95, 0.5, 1.3), None),
]


@pytest.mark.parametrize("cfg, reference, twin", CASES, ids=[
    f"{c['name']}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_rule_matches_seed_formula_and_torch(cfg, reference, twin):
    ours = run_ours(optim_config(**cfg))
    assert not np.allclose(ours, x0(), atol=1e-3), "the rule did not move the weights"
    np.testing.assert_allclose(ours, run_reference(reference), rtol=0, atol=1e-6)
    if twin is not None:
        p = torch_param()
        np.testing.assert_allclose(ours, run_torch(twin(p), p), rtol=0, atol=1e-6)


def test_rmsprop_eps_placement_matters_for_small_gradients():
    """The two placements coincide for large caches and differ when cache ~ eps."""
    inside = run_ours(optim_config(name="rmsprop", lr=0.01, rho=0.999, eps=1e-2, eps_inside_sqrt=True))
    outside = run_ours(optim_config(name="rmsprop", lr=0.01, rho=0.999, eps=1e-2, eps_inside_sqrt=False))
    assert np.abs(inside - outside).max() > 1e-3


def test_adaptive_gains_stay_inside_their_range_and_move_both_ways():
    model = Toy()
    opt = build_optimizer(optim_config(name="adaptive_gains", lr=0.3, gain_min=0.5, gain_max=1.3), model)
    run_torch(opt, model.w, steps=60)
    gain = opt.state[model.w]["gain"]
    assert gain.min() >= 0.5 and gain.max() <= 1.3
    assert (gain > 1).any() and (gain < 1).any()


def test_ema_momentum_equals_cs231n_momentum_with_scaled_rate():
    """m = beta m + (1-beta) g with lr is v = mu v - lr' g with mu = beta, lr' = lr (1 - beta)."""
    ours = run_ours(optim_config(name="ema_momentum", lr=0.1, momentum=0.8))
    np.testing.assert_allclose(ours, run_reference(momentum_ref(0.1 * 0.2, 0.8)), atol=1e-9)


def test_lbfgs_solves_a_full_batch_least_squares_problem():
    """L-BFGS (seeds/003, full batch) reaches the least-squares solution in a few steps."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(50, 5, generator=gen, dtype=torch.float64)
    b = torch.randn(50, generator=gen, dtype=torch.float64)
    torch.manual_seed(0)
    model = nn.Linear(5, 1, bias=False).double()
    opt = build_optimizer(optim_config(name="lbfgs"), model)
    assert opt.needs_closure and len(opt.param_groups) == 1

    def closure():
        opt.zero_grad()
        loss = 0.5 * (model(a).squeeze(1) - b).pow(2).sum()
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    solution = torch.linalg.lstsq(a, b.unsqueeze(1)).solution.squeeze(1)
    # torch's LBFGS stops once max |grad| <= 1e-7 (tolerance_grad), hence 1e-5 here
    torch.testing.assert_close(model.weight.detach().squeeze(0), solution, atol=1e-5, rtol=0)


def test_every_registered_rule_is_tested_here():
    tested = {c["name"] for c, _, _ in CASES} | {"lbfgs"}
    assert set(OPTIMIZERS.names()) == tested


def test_rule_defaults_fill_only_missing_keys():
    assert optim_config(name="adadelta").lr == 1.0  # Zeiler: no learning rate
    assert optim_config(name="adadelta", lr=0.01).lr == 0.01  # seeds/000's hand-set factor
    cfg = optim_config(name="rmsprop")
    assert (cfg.rho, cfg.eps, cfg.eps_inside_sqrt) == (0.9, 1e-8, False)
    assert "momentum" not in type(cfg).model_fields  # rmsprop reads no momentum
    assert optim_config().model_dump(include={"name", "lr", "momentum", "nesterov"}) == dict(
        name="sgd", lr=0.05, momentum=0.9, nesterov=True)  # the main job


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "adaptive_gains", "ema_momentum"])
def test_optimizer_state_round_trips(name):
    """Resuming from optimizer.state_dict() continues exactly."""
    cfg = optim_config(name=name, lr=0.01)
    straight = run_ours(cfg, steps=10)
    model = Toy()
    opt = build_optimizer(cfg, model)
    run_torch(opt, model.w, steps=4)
    state = opt.state_dict()
    model2 = Toy()
    model2.w.data.copy_(model.w.data)
    opt2 = build_optimizer(cfg, model2)
    opt2.load_state_dict(state)
    for t in range(5, 11):
        opt2.zero_grad()
        model2.w.grad = torch.from_numpy(toy_gradient(model2.w.detach().numpy(), t))
        opt2.step()
    np.testing.assert_allclose(model2.w.detach().numpy(), straight, atol=1e-12)


def test_every_rule_has_one_config_class_and_one_builder():
    from cnnlab.optim.config import OPTIM_BY_NAME

    assert set(OPTIMIZERS.names()) == set(OPTIM_BY_NAME)
