"""Greedy layer-wise pre-training of a deep belief net (seeds/001: "DBNs ... use contrastive
divergence for pre-training: learn the structure of the data before learning to label it").

For the network's hidden fc layers ``fc_1 .. fc_L`` (each followed by a sigmoid), bottom up:

1. the RBM's data is the layer's input, computed by the network below it in eval mode
   (for ``l > 1``: ``P(h = 1 | v)`` of the RBMs already trained, the mean-field propagation
   of Hinton, Osindero & Teh 2006 and of the Theano DBN tutorial);
2. the RBM starts from the layer's own initial weights (``W = A^T``, hidden biases ``c = a``)
   and visible biases ``b = logit(mean v)`` (binary) or ``b = mean v`` (Gaussian) (Hinton's
   practical guide, s.8), and is trained by CD-k or PCD (:mod:`cnnlab.models.rbm`);
3. ``W^T`` and ``c`` are written back into the fc layer. The visible biases are dropped: the
   MLP has no use for them.

Then the usual trainer fine-tunes the whole network (the output layer from its random init).
Each RBM is monitored before training (epoch 0) and after each epoch on the first
``pretrain.monitor_size`` training examples (reconstruction error and, for binary visible
units, pseudo-likelihood); the rows go to ``RUN/pretrain.csv``.
Randomness (batch order, Gibbs samples, particles) comes from a generator seeded with
``(seed, layer)``, so a run's pre-training is reproducible and independent of the trainer's RNG.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from cnnlab.errors import ConfigError
from cnnlab.models.rbm import RBM, k_at, sgd_update
from cnnlab.train.pretrainconfig import PretrainConfig, dbn_layers

PRETRAIN_COLUMNS = ["rbm", "layer", "visible", "hidden", "epoch", "k", "recon_error", "pseudo_likelihood",
                    "seconds"]
PRETRAIN_FILE = "pretrain.csv"
SAMPLES_FILE = "pretrain_samples.pt"
#: Gibbs steps after which the first RBM's chains are shown in the report (0: the start example)
SAMPLE_STEPS = (0, 1, 10, 100, 1000)
SAMPLE_CHAINS = 8


@dataclass
class PretrainReport:
    """What :func:`pretrain_dbn` did: one row per RBM epoch (``pretrain.csv``)."""

    algorithm: str
    rows: list[dict] = field(default_factory=list)
    #: the first RBM's Gibbs chains: chains x len(SAMPLE_STEPS) x visible, E[v | h] at each step
    samples: torch.Tensor | None = None

    def lines(self) -> list[str]:
        """One line per RBM, with its last epoch's monitors (the trainer prints them)."""
        last = {}
        for row in self.rows:
            last[row["rbm"]] = row
        out = []
        for row in last.values():
            pl = (f", pseudo-likelihood {row['pseudo_likelihood']:.2f}"
                  if row["pseudo_likelihood"] is not None else "")
            first = next(r for r in self.rows if r["rbm"] == row["rbm"])
            out.append(f"pretrain rbm{row['rbm']} ({row['layer']}: {row['visible']} x {row['hidden']}, "
                       f"{self.algorithm}-{row['k']}): {row['epoch']} epochs, reconstruction error "
                       f"{first['recon_error']:.3f} -> {row['recon_error']:.3f}{pl}")
        return out


@torch.no_grad()
def gibbs_chains(rbm: RBM, start: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``E[v | h]`` of chains started at ``start`` after each of :data:`SAMPLE_STEPS` steps."""
    v, done, shots = start, 0, []
    for steps in SAMPLE_STEPS:
        if steps > done:
            h = torch.bernoulli(rbm.hidden_probs(rbm.gibbs(v, steps - done - 1, generator)), generator=generator)
            v = rbm.sample_visible(h, generator)
            shots.append(rbm.visible_mean(h))
            done = steps
        else:
            shots.append(v)
    return torch.stack(shots, 1).cpu()


@torch.no_grad()
def layer_inputs(below: nn.Module, images: torch.Tensor, preprocess: nn.Module, batch: int = 1000) -> torch.Tensor:
    """The input of the layer above ``below`` for every training image, as rows (float32)."""
    out = [below(preprocess(images[i:i + batch])).flatten(1).float() for i in range(0, len(images), batch)]
    return torch.cat(out)


def _check_range(data: torch.Tensor, visible: str, layer: str) -> None:
    if visible == "binary" and (data.min() < 0 or data.max() > 1):
        raise ConfigError(f"pretrain.visible=binary: the input of {layer} lies in [{float(data.min()):.3g}, "
                          f"{float(data.max()):.3g}], but binary units take values in [0, 1]; set "
                          "data.normalize=scale (x / 255) or pretrain.visible=gaussian (standardized input)")


def start_rbm(fc: nn.Linear, data: torch.Tensor, visible: str) -> RBM:
    """An RBM on ``fc``'s initial weights, visible biases from the data's mean."""
    mean = data.mean(0)
    b = torch.logit(mean.clamp(1e-3, 1 - 1e-3)) if visible == "binary" else mean
    return RBM(fc.weight.detach().t().clone(), b.clone(), fc.bias.detach().clone(), visible)


def train_rbm(rbm: RBM, data: torch.Tensor, cfg: PretrainConfig, generator: torch.Generator,
              on_epoch=None, bar_label: str = "rbm", show_progress: bool = False) -> RBM:
    """``cfg.epochs`` passes of CD-k or PCD updates over the rows of ``data``; ``on_epoch(epoch, k,
    seconds)`` after each pass. The parameters of ``rbm`` are updated in place."""
    n = len(data)
    velocity = [torch.zeros_like(t) for t in (rbm.W, rbm.b, rbm.c)]
    particles = None
    if cfg.algorithm == "pcd":  # started at training examples (Tieleman 2008 starts them anywhere)
        particles = data[torch.randint(n, (cfg.particles,), generator=generator, device=data.device)].clone()
    steps = (n + cfg.batch_size - 1) // cfg.batch_size
    for epoch in range(1, cfg.epochs + 1):
        k = k_at(cfg.k, epoch)
        started = time.perf_counter()
        order = torch.randperm(n, generator=generator, device=data.device)
        bar = tqdm(total=steps, desc=f"pretrain {bar_label} epoch {epoch}/{cfg.epochs}", unit="step",
                   leave=False, file=sys.stderr, dynamic_ncols=True, disable=not show_progress)
        for s in range(steps):
            v = data[order[s * cfg.batch_size:(s + 1) * cfg.batch_size]]
            if particles is None:
                grads = rbm.cd_gradient(v, k, generator)
            else:
                grads, particles = rbm.pcd_gradient(v, particles, k, generator)
            sgd_update(rbm, grads, velocity, cfg.lr, cfg.momentum, cfg.l2)
            if (s + 1) % 100 == 0 or s + 1 == steps:
                bar.update(100 if (s + 1) % 100 == 0 else steps % 100)
        bar.close()
        if on_epoch is not None:
            on_epoch(epoch, k, time.perf_counter() - started)
    return rbm


def pretrain_dbn(model: nn.Sequential, specs, cfg: PretrainConfig, images: torch.Tensor,
                 preprocess: nn.Module, seed: int, show_progress: bool = False) -> PretrainReport:
    """Pre-train the hidden fc layers of ``model`` (built from ``specs``) as stacked RBMs on the
    training ``images`` (uint8, on the model's device); the layers' weights are replaced."""
    report = PretrainReport(cfg.algorithm)
    modules = list(model.named_children())
    was_training = model.training
    model.eval()  # dropout off while the layers below compute the data
    try:
        for number, index in enumerate(dbn_layers(specs, cfg.layers), start=1):
            name, fc = modules[index]
            data = layer_inputs(nn.Sequential(*(m for _, m in modules[:index])), images, preprocess)
            visible = cfg.visible if number == 1 else "binary"
            _check_range(data, visible, f"layer '{name}'")
            generator = torch.Generator(data.device).manual_seed(seed * 1000 + number)
            rbm = start_rbm(fc, data, visible)
            watched = data[:cfg.monitor_size]

            def monitor(epoch: int, k: int, seconds: float) -> None:
                pl_rng = torch.Generator(data.device).manual_seed(seed)  # the same bits every epoch
                report.rows.append({
                    "rbm": number, "layer": name, "visible": rbm.shape[0], "hidden": rbm.shape[1],
                    "epoch": epoch, "k": k, "recon_error": rbm.reconstruction_error(watched),
                    "pseudo_likelihood": rbm.pseudo_likelihood(watched, pl_rng), "seconds": seconds})

            monitor(0, k_at(cfg.k, 1), 0.0)  # epoch 0: the layer's initial weights
            with torch.no_grad():
                train_rbm(rbm, data, cfg, generator, monitor, f"rbm{number} ({name})", show_progress)
                fc.weight.copy_(rbm.W.t())
                fc.bias.copy_(rbm.c)
                if number == 1:  # what the first RBM generates: shown by the report
                    report.samples = gibbs_chains(rbm, data[:SAMPLE_CHAINS], generator)
            del data
    finally:
        model.train(was_training)
    return report
