"""Gradient checking: every layer type (maxout, both dropouts with fixed masks, batch norm...)
has relative error < 1e-6 in float64, and the checker does catch a wrong gradient."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.cli import main
from cnnlab.models import ModelConfig, build_model
from cnnlab.models.gradcheck import LAYER_CHECKS, TOLERANCE, check_layers, check_module, worst
from cnnlab.models.spec import LAYERS, parse_spec, walk


def test_the_layer_checks_cover_every_layer_kind():
    covered = {s.kind for spec, _ in LAYER_CHECKS for s in walk(parse_spec(spec))}
    assert covered == {LAYERS.get(n).name for n in LAYERS.names()}
    modes = {s.params.mode for spec, _ in LAYER_CHECKS for s in parse_spec(spec) if s.kind == "dropout"}
    assert modes == {"inverted", "classic"}


@pytest.mark.parametrize("spec, shape", LAYER_CHECKS, ids=[s for s, _ in LAYER_CHECKS])
def test_layer_gradients_match_centred_differences(spec, shape):
    records = check_layers(spec, shape)
    assert worst(records) < TOLERANCE, records
    assert records[-1]["name"] == "input" and records[-1]["checked"] > 0


class _WrongBackward(torch.autograd.Function):
    """tanh forward, but a backward that is off by 1% (a typical hand-derivation slip)."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y) * 1.01


class _Buggy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return _WrongBackward.apply(self.fc(x))


def test_gradcheck_catches_a_wrong_backward():
    records = check_module(_Buggy(), (4,))
    assert all(r["max_rel_error"] > 1e-3 for r in records)


def test_dropout_masks_are_fixed_during_the_check_and_global_rng_untouched():
    torch.manual_seed(5)
    before = torch.rand(3)
    torch.manual_seed(5)
    records = check_layers("fc6 keep0.5:classic fc3", (4,))
    assert worst(records) < TOLERANCE
    assert torch.equal(torch.rand(3), before)  # the check ran on a forked RNG


def test_zoo_model_check_with_sampled_entries():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="maxout-convnet"), (1, 12, 12), 3)
    records = check_module(model, (1, 12, 12), batch=2, samples=4)
    assert worst(records) < TOLERANCE
    assert all(r["checked"] == min(4, torch.Size(r["shape"]).numel()) for r in records)


def test_cli_gradcheck(capsys):
    assert main(["gradcheck", "conv3-2p1 bn maxout2", "--input", "2x5x5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] and data["max_rel_error"] < 1e-6
    assert [p["name"] for p in data["checks"][0]["parameters"]] == ["conv1.weight", "conv1.bias", "bn1.weight",
                                                                     "bn1.bias", "input"]
    assert main(["gradcheck", "logreg", "--input", "1x4x4", "--classes", "3"]) == 0
    assert "1/1 checks pass" in capsys.readouterr().out
    # an impossible tolerance fails with exit code 1
    assert main(["gradcheck", "tanh", "--tol", "1e-20"]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["gradcheck", "maxout2"]) == 2
    assert "maxout must follow a conv or fc layer" in capsys.readouterr().err
