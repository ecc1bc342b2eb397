"""Schedules produce their documented sequences: against torch.optim.lr_scheduler where torch has
the schedule, against the formula where it does not; warm-up; the lr LRScheduler reports."""

from __future__ import annotations

import math

import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.optim import SCHEDULES, LRScheduler, schedule_config

A0 = 0.1


def _optimizer(lr: float = A0) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def our_sequence(cfg, steps_per_epoch: int, total: int, rows=None) -> list[float]:
    """The lr of each of ``total`` steps (plateau: ``rows`` are the per-epoch metric rows)."""
    opt = _optimizer()
    sched = LRScheduler(cfg, opt, steps_per_epoch, total)
    lrs = []
    for step in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step_batch()
        if rows is not None and (step + 1) % steps_per_epoch == 0:
            sched.step_epoch(rows[(step + 1) // steps_per_epoch - 1])
    return lrs


def torch_sequence(make, total: int, per_epoch: int | None = None) -> list[float]:
    """torch scheduler's lr per step; ``per_epoch``: it is stepped once per epoch."""
    opt = _optimizer()
    sched = make(opt)
    lrs = []
    for step in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if per_epoch is None or (step + 1) % per_epoch == 0:
            sched.step()
    return lrs


def test_step_halves_every_20_epochs_like_torch_steplr():
    """seeds/000: divided by 2 after each 20 epochs."""
    cfg = schedule_config(name="step")  # defaults: step_epochs 20, gamma 0.5
    ours = our_sequence(cfg, steps_per_epoch=3, total=3 * 65)
    ref = torch_sequence(lambda o: torch.optim.lr_scheduler.StepLR(o, 20, 0.5), 3 * 65, per_epoch=3)
    assert ours == pytest.approx(ref, rel=1e-12)
    assert ours[0] == A0 and ours[3 * 20 - 1] == A0 and ours[3 * 20] == A0 / 2 and ours[-1] == A0 / 8


def test_step_times_07_every_10_epochs():
    """seeds/000: multiply by 0.7 every 10."""
    ours = our_sequence(schedule_config(name="step", step_epochs=10, gamma=0.7), 2, 2 * 35)
    assert ours[::2] == pytest.approx([A0 * 0.7 ** (e // 10) for e in range(35)], rel=1e-12)


@pytest.mark.parametrize("name, formula", [
    ("exponential", lambda t, k: A0 * math.exp(-k * t)),     # a0 exp(-kt)
    ("inverse_time", lambda t, k: A0 / (1 + k * t)),         # a0 / (1 + kt)
])
def test_decay_formulas_with_t_in_epochs(name, formula):
    spe, k = 4, 0.3
    ours = our_sequence(schedule_config(name=name, k=k), spe, 40)
    assert ours == pytest.approx([formula(s / spe, k) for s in range(40)], rel=1e-12)


def test_exponential_per_epoch_equals_torch_exponentiallr():
    ours = our_sequence(schedule_config(name="exp", k=0.2), 1, 30)
    ref = torch_sequence(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, math.exp(-0.2)), 30)
    assert ours == pytest.approx(ref, rel=1e-12)


def test_cosine_equals_torch_cosineannealing():
    ours = our_sequence(schedule_config(name="cosine"), 5, 50)
    ref = torch_sequence(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=50), 50)
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("total, pct", [(100, 0.3), (37, 0.25)])
def test_onecycle_equals_torch_onecyclelr(total, pct):
    ours = our_sequence(schedule_config(name="onecycle", pct_start=pct), 10, total)
    ref = torch_sequence(lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=A0, total_steps=total, pct_start=pct, cycle_momentum=False), total)
    assert ours == pytest.approx(ref, rel=1e-9)
    assert max(ours) == pytest.approx(A0, rel=1e-2) and ours[0] == pytest.approx(A0 / 25)


def _momentum_of(group: dict) -> float:
    return group["betas"][0] if "betas" in group else group["momentum"]


@pytest.mark.parametrize("make", [
    lambda params: torch.optim.SGD(params, lr=A0, momentum=0.9),
    lambda params: torch.optim.Adam(params, lr=A0),
], ids=["sgd", "adam"])
def test_onecycle_momentum_cycle_equals_torch_cycle_momentum(make):
    """Momentum against the rate (Smith 2018): torch's OneCycleLR(cycle_momentum=True), whose
    defaults are base 0.85 and max 0.95, on the same optimizer types, step by step."""
    total = 40
    cfg = schedule_config(name="onecycle", momentum_cycle=[0.95, 0.85])
    ours_opt = make([torch.nn.Parameter(torch.zeros(2))])
    ours_sched = LRScheduler(cfg, ours_opt, 10, total)
    ref_opt = make([torch.nn.Parameter(torch.zeros(2))])
    ref_sched = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=A0, total_steps=total)
    ours, ref = [], []
    for _ in range(total):
        ours.append((ours_opt.param_groups[0]["lr"], _momentum_of(ours_opt.param_groups[0])))
        ref.append((ref_opt.param_groups[0]["lr"], _momentum_of(ref_opt.param_groups[0])))
        ours_opt.step()
        ref_opt.step()
        ours_sched.step_batch()
        ref_sched.step()
    assert [m for _, m in ours] == pytest.approx([m for _, m in ref], rel=1e-9)
    assert [lr for lr, _ in ours] == pytest.approx([lr for lr, _ in ref], rel=1e-9)
    momenta = [m for _, m in ours]
    assert momenta[0] == pytest.approx(0.95) and min(momenta) == pytest.approx(0.85, abs=1e-3)


def test_onecycle_without_momentum_cycle_leaves_momentum_alone():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=A0, momentum=0.7)
    sched = LRScheduler(schedule_config(name="onecycle"), opt, 10, 40)
    for _ in range(25):
        opt.step()
        sched.step_batch()
    assert opt.param_groups[0]["momentum"] == 0.7


def test_momentum_cycle_needs_an_optimizer_with_momentum():
    opt = torch.optim.Adagrad([torch.nn.Parameter(torch.zeros(2))], lr=A0)
    with pytest.raises(ConfigError, match="schedule.momentum_cycle.*Adagrad.*no momentum"):
        LRScheduler(schedule_config(name="onecycle", momentum_cycle=[0.95, 0.85]), opt, 10, 40)


def test_momentum_cycle_is_onecycle_only():
    from cnnlab.config import load_config
    from cnnlab.errors import ConfigError

    with pytest.raises(ConfigError, match="schedule.momentum_cycle does not apply to schedule 'cosine'"):
        load_config(None, ["schedule=cosine", "schedule.momentum_cycle=[0.95, 0.85]"])


def test_linear_decays_to_zero_and_warmup_ramps_up():
    ours = our_sequence(schedule_config(name="linear", warmup_epochs=1), 5, 20)
    warm = [(s + 1) / 5 for s in range(5)] + [1.0] * 15
    assert ours == pytest.approx([A0 * w * (1 - s / 20) for s, w in enumerate(warm)], rel=1e-12)


@pytest.mark.parametrize("patience, cooldown, min_factor", [(0, 0, 0.0), (2, 1, 0.0), (1, 0, 0.3)])
def test_plateau_equals_torch_reducelronplateau(patience, cooldown, min_factor):
    values = [0.50, 0.60, 0.60, 0.59, 0.61, 0.61, 0.60, 0.60, 0.60, 0.62, 0.62, 0.61, 0.61, 0.61]
    rows = [{"epoch": i + 1, "val_acc": v} for i, v in enumerate(values)]
    cfg = schedule_config(name="plateau", patience=patience, cooldown=cooldown, gamma=0.5,
                         threshold=0.005, min_factor=min_factor)
    ours = our_sequence(cfg, 2, 2 * len(values), rows)
    opt = _optimizer()
    ref_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="max", factor=0.5, patience=patience, threshold=0.005, threshold_mode="abs",
        cooldown=cooldown, min_lr=A0 * min_factor, eps=0)
    ref = []
    for v in values:
        ref += [opt.param_groups[0]["lr"]] * 2
        ref_sched.step(v)
    assert ours == pytest.approx(ref, rel=1e-12)
    assert min(ours) < A0  # it did cut


def test_plateau_on_a_missing_metric_lists_the_metrics():
    opt = _optimizer()
    sched = LRScheduler(schedule_config(name="plateau", monitor="val_f1", mode="max"), opt, 1, 10)
    with pytest.raises(ConfigError, match=r"schedule\.monitor: 'val_f1'.*Metrics of this run: .*val_acc"):
        sched.step_epoch({"epoch": 1, "train_loss": 1.0, "val_acc": 0.5, "val_loss": 1.2})
    with pytest.raises(ConfigError, match="no validation split"):
        LRScheduler(schedule_config(name="plateau"), opt, 1, 10).step_epoch({"epoch": 1, "val_acc": None})


def test_plateau_mode_guess_and_ambiguous_metric():
    assert SCHEDULES.get("plateau")(schedule_config(name="plateau", monitor="val_loss"), 1, 1).mode == "min"
    assert SCHEDULES.get("plateau")(schedule_config(name="plateau", monitor="lr", mode="min"), 1, 1).mode == "min"
    # an ambiguous name without a mode is a config error (see test_optim_regularizers)


def test_reported_lr_is_the_one_used_and_multipliers_apply_per_group():
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p1], "lr_mult": 1.0}, {"params": [p2], "lr_mult": 10.0}], lr=A0)
    sched = LRScheduler(schedule_config(name="linear"), opt, 2, 4)
    used = []
    for _ in range(4):
        assert opt.param_groups[1]["lr"] == pytest.approx(10 * opt.param_groups[0]["lr"])
        used.append(opt.param_groups[0]["lr"])
        sched.step_batch()
        assert sched.lr == used[-1]
    assert used == pytest.approx([A0, 0.75 * A0, 0.5 * A0, 0.25 * A0])


def test_scheduler_state_round_trip():
    rows = [{"epoch": e, "val_acc": 0.5} for e in range(1, 6)]
    cfg = schedule_config(name="plateau", patience=0)
    opt = _optimizer()
    sched = LRScheduler(cfg, opt, 1, 5)
    for row in rows[:3]:
        sched.step_batch()
        sched.step_epoch(row)
    opt2 = _optimizer()
    sched2 = LRScheduler(cfg, opt2, 1, 5)
    sched2.load_state_dict(sched.state_dict())
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] < A0
    assert sched2.lr == sched.lr


def test_every_schedule_is_covered():
    covered = {"constant", "linear", "step", "exponential", "exp", "inverse_time", "1/t", "cosine",
               "onecycle", "plateau"}
    assert set(SCHEDULES.names()) == covered
    assert our_sequence(schedule_config(name="1/t", k=1.0), 1, 3) == pytest.approx([A0, A0 / 2, A0 / 3])
    assert our_sequence(schedule_config(name="constant"), 1, 3) == [A0] * 3


def test_every_schedule_has_one_config_class_and_one_implementation():
    from cnnlab.optim.config import SCHEDULE_BY_NAME

    assert set(SCHEDULES.names()) == set(SCHEDULE_BY_NAME)
