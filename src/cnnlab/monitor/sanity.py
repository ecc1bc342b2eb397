"""Sanity checks before training (seeds/002 and cs231n "Babysitting the Learning Process"):

    "As a sanity check, make sure your initial loss is reasonable and you can achieve 100%
     training accuracy on a very small portion of the data."  (seeds/002)

:func:`probe_network` pushes one batch through a *copy* of the untrained network (the model
itself is never touched), takes one optimizer step at the base learning rate and records the
initial loss, per-layer gradient norms, update/weight ratios and activation statistics. Each
check in :data:`CHECKS` turns that probe into :class:`Finding` s that say what is wrong and the
likely cause. :func:`overfit_check` trains a copy on a few examples with regularisation off.
:func:`run_sanity` does all of it for a config (``cnnlab sanity``); the ``sanity`` training
callback runs the probe checks (cheap) at the start of ``cnnlab train``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from cnnlab.monitor.layers import parametric_layers
from cnnlab.monitor.stats import (ActivationRecorder, ActivationStats, grad_norms, identical_units,
                                  snapshot, update_ratios, weight_norms)
from cnnlab.registry import Registry

LEVELS = ("ok", "warn", "fail")

#: cs231n: "a rough heuristic is that this ratio should be somewhere around 1e-3"
HEALTHY_UPDATE_RATIO = 1e-3
#: thresholds of the checks; the reasoning is in each check's docstring
UPDATE_RATIO_WARN = 0.25      # 250x the healthy ratio: a step rewrites a quarter of a layer
UPDATE_RATIO_FAIL = 1.0       # one step moves the weights as far as their own size
UPDATE_RATIO_LOW = 1e-6       # 1000x below it: the weights barely move
INPUT_SCALE_HIGH = 5.0        # RMS of the network input; standardised inputs have RMS ~1
SATURATED_WARN, SATURATED_FAIL = 0.4, 0.6  # Glorot x4 before a sigmoid (seeds/001) gives ~37%
DEAD_WARN, DEAD_FAIL = 0.2, 0.5
VANISHING_RATIO = 1e-3        # smallest / largest layer gradient norm


@dataclass
class Finding:
    """One verdict: ``level`` is ok, warn or fail; ``message`` says what and why."""

    check: str
    level: str
    message: str
    values: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.level == "ok"

    def to_dict(self) -> dict:
        return {"check": self.check, "level": self.level, "message": self.message, "values": self.values}


@dataclass
class Probe:
    """What one forward, backward and optimizer step of the untrained network shows."""

    num_classes: int
    loss: float                       # data loss, regularisation off
    input_min: float
    input_max: float
    input_rms: float                  # sqrt(mean(x^2)) over the probe batch
    layers: list[str]
    grad_norms: list[float]
    weight_norms: list[float]
    update_ratios: list[float]
    identical: list[bool]             # per layer: every unit has the same weights
    activations: list[ActivationStats]
    lr: float
    optimizer: str
    normalize: str
    weights_from: str = ""            # "pretrain.method=dbn" / "model.init_from=RUN": not an init scheme

    @property
    def expected_loss(self) -> float:
        """-ln(1/C): the softmax loss of diffuse scores (seeds/002: 2.302 for 10 classes)."""
        return math.log(self.num_classes)

    @property
    def input_scale(self) -> float:
        """The RMS, not the extreme value: sparse inputs (jet images) standardised per channel
        keep pixels tens of units out in the tail while their overall scale is 1, and no
        normalisation removes those; raw 0..255 pixels have an RMS near 100."""
        return self.input_rms

    def to_dict(self) -> dict:
        return {"num_classes": self.num_classes, "initial_loss": self.loss,
                "expected_loss": self.expected_loss, "input_min": self.input_min,
                "input_max": self.input_max, "input_rms": self.input_rms, "lr": self.lr, "optimizer": self.optimizer,
                "layers": [{"layer": n, "grad_norm": g, "weight_norm": w, "update_ratio": u,
                            "identical_units": i}
                           for n, g, w, u, i in zip(self.layers, self.grad_norms, self.weight_norms,
                                                    self.update_ratios, self.identical)],
                "activations": [a.to_dict() for a in self.activations]}


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _loss_fn(net, x, y, loss):
    """A closure computing ``loss`` (the run's objective) and its gradients (L-BFGS re-evaluates
    it in its step)."""
    def closure() -> torch.Tensor:
        _, total = loss(net, net(x), y)
        net.zero_grad(set_to_none=True)
        total.backward()
        return total
    return closure


def _step(optimizer, closure) -> None:
    """One update; ``closure`` has already run once for optimizers that do not need it."""
    if getattr(optimizer, "needs_closure", False):
        optimizer.step(closure)
    else:
        optimizer.step()


def probe_network(cfg, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss=None) -> Probe:
    """Forward + backward + one step of ``cfg.optim`` at its base lr (times ``layer_lr``), on a
    copy of ``model``, with the run's loss (label smoothing, class weights, regularisation;
    default: ``cfg.optim``'s, without class weights) and gradient clipping.

    ``x`` is a preprocessed batch (float, on the model's device). The model is in training mode
    (dropout on), as the first training step sees it.
    """
    from cnnlab.optim import build_optimizer, clip_gradient_norm
    from cnnlab.train.loss import Loss

    loss = loss or Loss(cfg.optim)
    net = copy.deepcopy(model).train()
    layers = parametric_layers(net)
    optimizer = build_optimizer(cfg.optim, net, cfg.train.batch_size)
    with ActivationRecorder(net) as recorder:
        logits = net(x)
    data_loss, total = loss(net, logits, y)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    clip_gradient_norm(cfg.optim, net)
    grads, weights = grad_norms(layers), weight_norms(layers)
    before = snapshot(layers)
    _step(optimizer, _loss_fn(net, x, y, loss))
    ratios = update_ratios(layers, before)
    inputs = x.detach().float()
    numbers = torch.stack([data_loss.detach().float(), inputs.min(), inputs.max(),
                           inputs.square().mean().sqrt()]).tolist()
    return Probe(num_classes=logits.shape[1], loss=numbers[0], input_min=numbers[1], input_max=numbers[2],
                 input_rms=numbers[3],
                 layers=[l.name for l in layers], grad_norms=grads.tolist(), weight_norms=weights.tolist(),
                 update_ratios=ratios.tolist(), identical=[identical_units(l) for l in layers],
                 activations=recorder.stats(), lr=cfg.optim.lr, optimizer=cfg.optim.name,
                 normalize=str(cfg.data.normalize), weights_from=starting_weights(cfg))


def starting_weights(cfg) -> str:
    """The config key that loads the starting weights, if they do not come from the init scheme
    (advice about the init scheme would be wrong for them)."""
    pretrain = getattr(cfg, "pretrain", None)
    if pretrain is not None and pretrain.method != "none":
        return f"pretrain.method={pretrain.method}"
    return f"model.init_from={cfg.model.init_from}" if cfg.model.init_from else ""


# -- checks on a probe -----------------------------------------------------------------------
CHECKS: Registry[Callable[[Probe], list[Finding]]] = Registry("sanity check")


_SCALE_ADVICE = "use data.normalize=standardize (or scale, or whitening to unit variance)"


def _input_cause(probe: Probe) -> str | None:
    if probe.input_scale > INPUT_SCALE_HIGH:
        extreme = max(abs(probe.input_min), abs(probe.input_max))
        return (f"the input scale: RMS {probe.input_scale:.3g}, values reach {extreme:.3g} "
                f"(data.normalize={probe.normalize}); " + _SCALE_ADVICE)
    return None


@CHECKS.register("initial_loss")
def check_initial_loss(probe: Probe) -> list[Finding]:
    """Initial data loss vs -ln(1/C) (seeds/002: "2.302 or a bit more" for 10 classes).

    Flagged when it is off by more than max(0.5, 0.25 ln C): too high means the scores are far
    from 0 at initialisation (input scale or too large weights); lower than chance before any
    training means something leaks the labels or the classes are far from balanced.
    """
    loss, expected = probe.loss, probe.expected_loss
    margin = max(0.5, 0.25 * expected)
    values = {"initial_loss": _finite(loss), "expected": expected}
    head = f"initial loss {loss:.4g} (regularisation off) vs -ln(1/{probe.num_classes}) = {expected:.3f}"
    if not math.isfinite(loss):
        return [Finding("initial_loss", "fail", f"{head}: not finite before any training. Likely cause: "
                        + (_input_cause(probe) or "overflow in the network; check the init scale"), values)]
    if loss > expected + margin:
        cause = _input_cause(probe) or ("initial weights too large (scores far from 0); use Xavier/He "
                                        "init or a smaller scale")
        return [Finding("initial_loss", "warn", f"{head}: too high, the scores are far from uniform "
                        f"at initialisation. Likely cause: {cause}", values)]
    if loss < expected - margin:
        return [Finding("initial_loss", "warn", f"{head}: lower than chance before training. Likely "
                        "cause: the labels leak into the input, or the classes are far from balanced", values)]
    return [Finding("initial_loss", "ok", head, values)]


@CHECKS.register("input_scale")
def check_input_scale(probe: Probe) -> list[Finding]:
    """Network inputs whose RMS is beyond a few units (e.g. raw pixels 0..255, RMS ~100)
    saturate tanh/sigmoid units and blow up initial scores and gradients (seeds/003: preprocess
    to zero mean, unit variance). Judged on the RMS, which standardisation sets to 1; the span
    is reported too, but a long tail (sparse images) is not something to fix."""
    values = {"input_min": probe.input_min, "input_max": probe.input_max, "input_rms": probe.input_rms}
    text = f"network input RMS {probe.input_rms:.3g}, span [{probe.input_min:.3g}, {probe.input_max:.3g}]"
    if probe.input_scale > INPUT_SCALE_HIGH:
        return [Finding("input_scale", "warn", f"{text} (data.normalize={probe.normalize}): inputs of "
                        "this scale saturate tanh/sigmoid units and inflate the initial scores; "
                        + _SCALE_ADVICE, values)]
    return [Finding("input_scale", "ok", text, values)]


@CHECKS.register("symmetry")
def check_symmetry(probe: Probe) -> list[Finding]:
    """Hidden layers whose units all have the same weights (e.g. all-zero init) never break the
    symmetry: every unit gets the same gradient (cs231n "Pitfall: all zero initialization").
    The output layer alone may start equal (a zero final layer is a valid choice)."""
    hidden = list(zip(probe.layers, probe.identical, probe.weight_norms))[:-1]
    bad = [(name, norm) for name, same, norm in hidden if same]
    if not bad:
        return [Finding("symmetry", "ok", "units of every hidden layer start different", {})]
    described = ", ".join(f"{n} ({'all zero' if w == 0 else 'constant'})" for n, w in bad)
    return [Finding("symmetry", "fail",
                    f"every unit of {described} has the same initial weights, so all units compute the "
                    "same output and receive the same gradient: the symmetry is never broken and the "
                    "layer acts like a single unit. Likely cause: all weights initialised to zero (or a "
                    "constant); use a random init (Xavier/He)", {"layers": [n for n, _ in bad]})]


@CHECKS.register("gradients")
def check_gradients(probe: Probe) -> list[Finding]:
    """Per-layer gradient norms: non-finite, zero (no gradient reaches the layer) or vanishing
    toward the input (smallest/largest < 1e-3; seeds/002's sigmoid nets show the trend)."""
    values = {"grad_norms": dict(zip(probe.layers, map(_finite, probe.grad_norms)))}
    table = ", ".join(f"{n} {g:.2g}" for n, g in zip(probe.layers, probe.grad_norms))
    if not all(math.isfinite(g) for g in probe.grad_norms):
        return [Finding("gradients", "fail", f"non-finite gradients ({table})", values)]
    zero = [n for n, g in zip(probe.layers, probe.grad_norms) if g == 0]
    if probe.weight_norms and probe.weight_norms[-1] == 0:
        # A zero output layer (model.zero_last) passes no gradient back on the first step only.
        return [Finding("gradients", "ok", f"gradient norms {table} (the output layer starts at zero, "
                        "so earlier layers get gradient from the second step on)", values)]
    if zero and len(zero) < len(probe.layers):
        return [Finding("gradients", "warn", f"no gradient reaches {', '.join(zero)} ({table}); "
                        "units before them are dead, saturated or all equal", values)]
    if probe.grad_norms and max(probe.grad_norms) > 0:
        smallest = min(probe.grad_norms) / max(probe.grad_norms)
        if smallest < VANISHING_RATIO:
            return [Finding("gradients", "warn", f"vanishing gradients: the smallest layer gradient is "
                            f"{smallest:.1e} of the largest ({table}); saturating units or poor init", values)]
    return [Finding("gradients", "ok", f"gradient norms {table}", values)]


@CHECKS.register("update_ratio")
def check_update_ratio(probe: Probe) -> list[Finding]:
    """||dW||/||W|| of one step at the base lr; ~1e-3 is healthy (cs231n). The first step of a
    momentum method is 1/(1 - mu) smaller than later ones, and the main job (LeNet-5, SGD
    lr 0.05, Nesterov 0.9) measures up to 0.06 in conv1 and trains well, so the limits are loose:
    warn above 0.25, fail above 1 (one step as large as the weights: lr far too high).
    Below 1e-6 the lr is too low. Layers starting at zero are left to the symmetry check."""
    pairs = [(n, r) for n, r, w, g in zip(probe.layers, probe.update_ratios, probe.weight_norms,
                                           probe.grad_norms) if w > 0 and g > 0 and math.isfinite(r)]
    values = {"update_ratios": dict(zip(probe.layers, map(_finite, probe.update_ratios))),
              "lr": probe.lr}
    if not pairs:
        if any(not math.isfinite(r) for r, w in zip(probe.update_ratios, probe.weight_norms) if w > 0):
            return [Finding("update_ratio", "fail", f"the first {probe.optimizer} step at "
                            f"optim.lr={probe.lr:g} made the weights non-finite: lower optim.lr", values)]
        return [Finding("update_ratio", "ok", "no layer with nonzero weights to measure", values)]
    worst_name, worst = max(pairs, key=lambda p: p[1])
    table = ", ".join(f"{n} {r:.1e}" for n, r in pairs)
    if worst > UPDATE_RATIO_WARN:
        return [Finding("update_ratio", "fail" if worst > UPDATE_RATIO_FAIL else "warn",
                        f"update/weight ratio {worst:.2g} in {worst_name} after one {probe.optimizer} step "
                        f"(healthy ~{HEALTHY_UPDATE_RATIO:g}, cs231n; {table}): the learning rate "
                        f"optim.lr={probe.lr:g} is too high, training will diverge or kill units", values)]
    if worst < UPDATE_RATIO_LOW:
        return [Finding("update_ratio", "warn", f"update/weight ratio at most {worst:.1e} ({table}; "
                        f"healthy ~{HEALTHY_UPDATE_RATIO:g}): optim.lr={probe.lr:g} is too low, the "
                        "weights barely move", values)]
    return [Finding("update_ratio", "ok", f"update/weight ratio per step {table} "
                    f"(healthy ~{HEALTHY_UPDATE_RATIO:g})", values)]


@CHECKS.register("activations")
def check_activations(probe: Probe) -> list[Finding]:
    """Dead ReLUs (a unit 0 on the whole batch gets no gradient) and saturated tanh/sigmoid
    outputs (gradient ~0): dead above 20% (warn) or 50% (fail) of a layer's units; saturated
    above 40% (warn) or 60% (fail) of its outputs."""
    found = []
    for a in probe.activations:
        if a.saturated_fraction is not None and a.saturated_fraction > SATURATED_WARN:
            level = "fail" if a.saturated_fraction > SATURATED_FAIL else "warn"
            cause = _input_cause(probe) if a is probe.activations[0] else None
            cause = cause or (f"the starting weights come from {probe.weights_from}, not the init scheme "
                              "(pre-trained sigmoid units often start saturated; if fine-tuning stalls, "
                              "shorten the pre-training or lower its rate)" if probe.weights_from
                              else "initial weights too large for the fan-in (use Xavier init)")
            found.append(Finding("activations", level,
                                 f"{a.name}: {100 * a.saturated_fraction:.0f}% of {a.kind} outputs are "
                                 f"saturated, where the derivative is ~0, so they pass almost no gradient "
                                 f"(seeds/002). Likely cause: {cause}",
                                 {"layer": a.name, "saturated_fraction": a.saturated_fraction}))
        if a.dead_fraction is not None and a.dead_fraction > DEAD_WARN:
            level = "fail" if a.dead_fraction > DEAD_FAIL else "warn"
            found.append(Finding("activations", level,
                                 f"{a.name}: {100 * a.dead_fraction:.0f}% of ReLU units are dead (output 0 "
                                 "for every example of the batch; they get no gradient and never recover). "
                                 "Likely cause: negative biases or too large weights at init",
                                 {"layer": a.name, "dead_fraction": a.dead_fraction}))
    if found:
        return found
    summary = ", ".join(f"{a.name} {100 * (a.saturated_fraction if a.dead_fraction is None else a.dead_fraction):.0f}%"
                        f" {'dead' if a.dead_fraction is not None else 'saturated'}"
                        for a in probe.activations if (a.dead_fraction, a.saturated_fraction) != (None, None))
    return [Finding("activations", "ok", f"no dead or saturated layers ({summary or 'no relu/tanh/sigmoid'})",
                    {"activations": [a.to_dict() for a in probe.activations]})]


#: the order findings are printed in (cause before effect); checks registered later come last
CHECK_ORDER = ("initial_loss", "input_scale", "symmetry", "gradients", "update_ratio", "activations")


def check_probe(probe: Probe) -> list[Finding]:
    """Run every registered check on a probe."""
    names = sorted(CHECKS.names(), key=lambda n: CHECK_ORDER.index(n) if n in CHECK_ORDER else len(CHECK_ORDER))
    return [finding for name in names for finding in CHECKS.get(name)(probe)]


# -- overfitting a tiny subset ---------------------------------------------------------------
def overfit_check(cfg, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
                  progress: Callable[[int], None] | None = None, loss=None) -> Finding:
    """Train a copy of ``model`` on ``x, y`` (a few examples, full batch, regularisation off,
    constant base lr) until its training accuracy (eval mode) is 100%, for at most ``steps``.

    seeds/002: you should be able to reach 100% training accuracy on a very small portion of
    the data; if not, the network or the optimisation is broken.
    """
    from cnnlab.optim import build_optimizer
    from cnnlab.train.loss import Loss

    loss = (loss or Loss(cfg.optim)).without_penalty()
    net = copy.deepcopy(model).train()
    optimizer = build_optimizer(loss.optim, net, cfg.train.batch_size)
    n = len(y)
    losses = []
    acc, step = 0.0, 0
    closure = _loss_fn(net, x, y, loss)
    for step in range(1, steps + 1):
        loss = closure()
        _step(optimizer, closure)
        losses.append(loss.detach())
        if progress:
            progress(1)
        if step % 5 == 0 or step == steps:
            with torch.no_grad():
                net.eval()
                acc = (net(x).argmax(1) == y).float().mean().item()
                net.train()
            now = losses[-1].item()
            if acc == 1.0 or not math.isfinite(now) or now > 10 * losses[0].item():
                break  # done, or exploded: more steps would not change the verdict
    history = torch.stack(losses).tolist()
    first, last = history[0], history[-1]
    values = {"examples": n, "steps": step, "budget": steps, "train_accuracy": acc,
              "first_loss": _finite(first), "last_loss": _finite(last)}
    head = f"overfit {n} examples (regularisation off, lr {cfg.optim.lr:g})"
    if acc == 1.0:
        return Finding("overfit", "ok", f"{head}: 100% training accuracy after {step} steps "
                       f"(loss {first:.3g} -> {last:.3g})", values)
    bad = next((i for i, v in enumerate(history) if not math.isfinite(v)), None)
    if bad is not None:
        why = (f"the loss became {history[bad]} at step {bad + 1}: optim.lr={cfg.optim.lr:g} is too high "
               "(or the input scale makes the scores overflow)")
    elif last > 2 * first:
        why = (f"the loss exploded ({first:.3g} -> {last:.3g}): optim.lr={cfg.optim.lr:g} is too high")
    elif last > 0.9 * first:
        why = (f"the loss did not go down ({first:.3g} -> {last:.3g}): the network is not learning "
               f"(optim.lr={cfg.optim.lr:g} far too high or too low, units all equal, dead or saturated)")
    else:
        why = (f"the loss went down ({first:.3g} -> {last:.3g}) but not far enough: raise "
               "monitor.overfit_steps or optim.lr, or the model lacks capacity")
    return Finding("overfit", "fail", f"{head}: only {100 * acc:.0f}% training accuracy after {step} "
                   f"steps; {why}", values)


# -- the whole thing for a config ------------------------------------------------------------
@dataclass
class SanityReport:
    findings: list[Finding]
    probe: Probe

    @property
    def passed(self) -> bool:
        return all(f.level != "fail" for f in self.findings)

    @property
    def clean(self) -> bool:
        return all(f.ok for f in self.findings)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "clean": self.clean,
                "findings": [f.to_dict() for f in self.findings], "probe": self.probe.to_dict()}


def first_examples(images: torch.Tensor, labels: torch.Tensor, n: int, preprocess, device):
    return preprocess(images[:n].to(device)), labels[:n].to(device)


def run_sanity(cfg, *, overfit: bool = True, show_progress: bool = False) -> SanityReport:
    """All checks for a config: the probe checks, then (optionally) the overfit check."""
    from tqdm.auto import tqdm
    import sys

    from cnnlab.train.experiment import build_experiment

    x = build_experiment(cfg)  # the untrained network exactly as `cnnlab train` starts it
    train, mc = x.splits.train, cfg.monitor
    xb, yb = first_examples(train.images, train.labels, mc.sanity_examples, x.preprocess, x.device)
    probe = probe_network(cfg, x.model, xb, yb, x.loss)
    findings = check_probe(probe)
    if overfit:
        xs, ys = first_examples(train.images, train.labels, mc.overfit_examples, x.preprocess, x.device)
        with tqdm(total=mc.overfit_steps, desc="overfit check", unit="step", leave=False,
                  file=sys.stderr, disable=not show_progress) as bar:
            findings.append(overfit_check(cfg, x.model, xs, ys, mc.overfit_steps, bar.update, x.loss))
    return SanityReport(findings, probe)
