"""airbench94's pieces in the trainer: lookahead averaging of the weights (equation against a
transcription of airbench94's LookaheadState, exact resume) and test-time augmentation
(against hand-built views)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.train import RunDir, load_checkpoint, resume_run, start_run
from cnnlab.train.config import LookaheadConfig
from cnnlab.train.inference import load_trained
from cnnlab.train.lookahead import Lookahead
from cnnlab.train.tta import tta_logits
from tests.helpers import interrupt_in_epoch, tiny_overrides

QUIET = dict(show_progress=False, echo=lambda line: None)


# -- lookahead ------------------------------------------------------------------------------
class AirbenchLookahead:
    """airbench94.py's LookaheadState and its schedule, transcribed."""

    def __init__(self, net):
        self.net_ema = {k: v.clone() for k, v in net.state_dict().items()}

    def update(self, net, decay):
        for ema_param, net_param in zip(self.net_ema.values(), net.state_dict().values()):
            if net_param.dtype in (torch.half, torch.float):
                ema_param.lerp_(net_param, 1 - decay)
                net_param.copy_(ema_param)


def test_lookahead_follows_airbench94s_equation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ref = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ref.load_state_dict(net.state_dict())
    cfg = LookaheadConfig(enabled=True, every=2, start_epochs=1, decay_base=0.9, decay_pow=2)
    cb = Lookahead(cfg)
    steps_per_epoch, total = 6, 18
    trainer = SimpleNamespace(model=net, steps_per_epoch=steps_per_epoch, total_steps=total, step=0, epoch=0)
    state = None
    for step in range(1, total + 1):
        delta = {k: torch.randn_like(v) for k, v in net.state_dict().items() if v.is_floating_point()}
        with torch.no_grad():
            for model in (net, ref):  # the same "optimizer step" on both
                for k, v in model.state_dict().items():
                    if k in delta:
                        v.add_(delta[k])
        trainer.step, trainer.epoch = step, (step - 1) // steps_per_epoch
        cb.on_step_end(trainer)
        # airbench94's training loop
        if trainer.epoch >= cfg.start_epochs and step % cfg.every == 0:
            if state is None:
                state = AirbenchLookahead(ref)
            else:
                rho = cfg.decay_base ** cfg.every * (step / total) ** cfg.decay_pow
                state.update(ref, decay=rho)
        if step % steps_per_epoch == 0 and state is not None:
            state.update(ref, decay=1.0)
        for k, v in ref.state_dict().items():
            assert torch.allclose(net.state_dict()[k].double(), v.double(), atol=1e-6), (step, k)
    assert cb.started and torch.equal(net[0].weight, cb.ema["0.weight"])  # run end: w = ema


def test_lookahead_decay_in_numpy():
    from cnnlab.train.lookahead import lookahead_decay

    cfg = LookaheadConfig(enabled=True)  # airbench94's values: 0.95, every 5, power 3
    assert lookahead_decay(cfg, 240, 480) == pytest.approx(np.power(0.95, 5) * np.power(0.5, 3))


LOOKAHEAD = {"train.lookahead.enabled": "true", "train.lookahead.every": 3, "train.lookahead.start_epochs": 0,
             "train.log_every": 4, "monitor.sanity_at_start": "false", "data.val_size": 1000}  # 10 steps an epoch


def test_lookahead_resume_is_exact(tiny_mnist_dir, tmp_path):
    straight = start_run(load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path / "a", **LOOKAHEAD)),
                         **QUIET).fit()
    interrupted = start_run(load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path / "b", **LOOKAHEAD)),
                            callbacks=[interrupt_in_epoch(1)], **QUIET)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    resumed = resume_run(interrupted.run.path, **QUIET).fit()
    last = lambda run: load_checkpoint(RunDir(run.run_dir).checkpoint("last"))
    a, b = last(straight), last(resumed)
    assert a["callbacks"]["lookahead"] == {"started": True}
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert resumed.test_acc == straight.test_acc


# -- test-time augmentation --------------------------------------------------------------------
def test_tta_of_a_flip_invariant_model_equals_plain_evaluation():
    torch.manual_seed(0)
    fc = nn.Linear(2 * 5 * 5, 3)
    model = lambda x: fc((x + x.flip(-1)).flatten(1))  # f(mirror(x)) == f(x)
    x = torch.randn(4, 2, 5, 5)
    assert torch.allclose(tta_logits(model, x, "flip"), tta_logits(model, x, "none"), atol=1e-6)


def _views_by_hand(x: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """airbench94's six views and their weights, built with NumPy."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    up_left, down_right = padded[:, :, 0:h, 0:w], padded[:, :, 2:h + 2, 2:w + 2]
    views = [(0.25, x), (0.25, x[..., ::-1])]
    for moved in (up_left, down_right):
        views += [(0.125, moved), (0.125, moved[..., ::-1])]
    return views


def test_tta_of_a_toy_model_equals_the_hand_computed_average():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(3, 2 * 6 * 6))
    forward = lambda x: torch.as_tensor(np.tanh(x.reshape(len(x), -1).numpy() @ weight.T))  # nonlinear
    x = rng.normal(size=(5, 2, 6, 6))
    expected = sum(w * np.tanh(v.reshape(5, -1) @ weight.T) for w, v in _views_by_hand(x))
    got = tta_logits(forward, torch.as_tensor(x), "flip_translate")
    assert np.allclose(got.numpy(), expected, atol=1e-6)
    flip_only = 0.5 * np.tanh(x.reshape(5, -1) @ weight.T) + 0.5 * np.tanh(x[..., ::-1].reshape(5, -1) @ weight.T)
    assert np.allclose(tta_logits(forward, torch.as_tensor(x), "flip").numpy(), flip_only, atol=1e-6)


def test_evaluate_tta_cli_and_api(tiny_mnist_dir, tmp_path, capsys):
    cfg = load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path, **{"train.epochs": 1,
                                                                       "monitor.sanity_at_start": "false"}))
    run = start_run(cfg, **QUIET).fit().run_dir
    assert main(["evaluate", str(run), "--tta", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tta"] == "flip_translate"
    # the same accuracy from the six views built by hand (uint8 images, preprocessing, network)
    trained = load_trained(run)
    from cnnlab.data import load_data

    test = load_data(trained.cfg.data, trained.cfg.seed).test
    images = test.images.numpy().astype(np.float32)
    with torch.no_grad():
        logits = sum(w * trained.model(trained.preprocess(torch.as_tensor(v.copy()))).double()
                     for w, v in _views_by_hand(images))
    accuracy = (logits.argmax(1) == test.labels).double().mean().item()
    assert result["test_accuracy"] == pytest.approx(accuracy, abs=1e-9)
    from cnnlab import Run

    assert Run(run).evaluate(tta="flip")["tta"] == "flip"
