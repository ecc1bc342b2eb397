"""Sanity checks (cnnlab.monitor.sanity, `cnnlab sanity`): the statistics against references,
the main job passing, and each deliberately broken config flagged with a message saying why."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.monitor.layers import activation_layers, parametric_layers
from cnnlab.monitor.sanity import overfit_check, probe_network, run_sanity
from cnnlab.monitor.stats import ActivationRecorder, dead_units, identical_units
from tests.helpers import tiny_overrides

SIGMOID_NET = "model.arch=fc100 sigmoid fc100 sigmoid fc"


def tiny_cfg(tiny_mnist_dir, tmp_path, *extra):
    return load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path) + ["monitor.overfit_steps=60", *extra])


def by_check(report, check):
    return [f for f in report.findings if f.check == check]


# -- statistics against references -----------------------------------------------------------
def test_gradient_norms_and_update_ratio_match_plain_formulas():
    """||dL/dW|| per layer, and for plain SGD the cs231n estimate ||lr * dW|| / ||W||."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.Tanh(), nn.Linear(7, 3))
    x, y = torch.randn(16, 1, 3, 4), torch.randint(0, 3, (16,))
    cfg = load_config(None, ["optim.lr=0.1", "optim.momentum=0", "optim.nesterov=false", "optim.l2=0"])
    probe = probe_network(cfg, model, x, y)

    ref = [model[1], model[3]]
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, [m.weight for m in ref])
    w = [m.weight.detach().numpy() for m in ref]
    g = [gi.numpy() for gi in grads]
    np.testing.assert_allclose(probe.grad_norms, [np.linalg.norm(gi) for gi in g], rtol=1e-5)
    np.testing.assert_allclose(probe.weight_norms, [np.linalg.norm(wi) for wi in w], rtol=1e-5)
    expected_ratio = [np.linalg.norm(0.1 * gi) / np.linalg.norm(wi) for gi, wi in zip(g, w)]
    np.testing.assert_allclose(probe.update_ratios, expected_ratio, rtol=1e-4)
    assert probe.loss == pytest.approx(loss.item(), rel=1e-6)
    assert probe.expected_loss == pytest.approx(math.log(3))


def test_probe_leaves_the_model_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe_network(load_config(), model, torch.randn(8, 1, 3, 4), torch.randint(0, 3, (8,)))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. batch-norm running stats
    assert all(p.grad is None for p in model.parameters())


def test_dead_units_are_units_zero_on_every_example_and_position():
    a = torch.zeros(4, 3, 2, 2)
    a[1, 0, 1, 1] = 0.5   # channel 0 alive at one position of one example
    a[:, 2] = 1.0         # channel 2 alive everywhere
    assert dead_units(a).tolist() == [False, True, False]
    assert dead_units(torch.tensor([[0.0, 2.0], [0.0, 0.0]])).tolist() == [True, False]


def test_activation_recorder_saturation_and_dead_fractions():
    model = nn.Sequential(nn.Identity(), nn.Tanh(), nn.Identity(), nn.Sigmoid(), nn.ReLU())
    x = torch.tensor([[0.0, 3.0, -3.0, 0.5], [10.0, -10.0, 0.1, 0.2]])
    with ActivationRecorder(model) as rec:
        model(x)
    stats = {s.name: s for s in rec.stats()}
    t = np.tanh(x.numpy())
    s = 1 / (1 + np.exp(-t))
    assert stats["tanh1"].saturated_fraction == pytest.approx(np.mean(np.abs(t) > 0.99))
    assert stats["sigmoid1"].saturated_fraction == pytest.approx(np.mean((s < 0.01) | (s > 0.99)))
    assert stats["relu1"].dead_fraction == pytest.approx(0.0)  # sigmoid outputs are positive
    assert stats["tanh1"].dead_fraction is None and stats["relu1"].saturated_fraction is None
    assert [l.name for l in activation_layers(model)] == ["tanh1", "sigmoid1", "relu1"]


def test_layer_names_follow_the_network_and_identical_units_detects_constant_init():
    from cnnlab.models import ModelConfig, build_model

    net = build_model(ModelConfig(arch="lenet5"), (1, 28, 28), 10)
    assert [l.name for l in parametric_layers(net)] == ["conv1", "conv2", "fc1", "fc2"]
    plain = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    layers = parametric_layers(plain)
    assert [l.name for l in layers] == ["conv1", "fc1"]
    assert not identical_units(layers[0])
    nn.init.constant_(plain[0].weight, 0.3)
    assert identical_units(layers[0])


# -- the main job passes, broken configs are flagged ------------------------------------------
def test_main_job_config_passes_every_check(tiny_mnist_dir, tmp_path):
    report = run_sanity(tiny_cfg(tiny_mnist_dir, tmp_path))
    assert report.clean, [f.message for f in report.findings if not f.ok]
    assert {f.check for f in report.findings} >= {"initial_loss", "symmetry", "gradients", "update_ratio",
                                                  "activations", "input_scale", "overfit"}
    loss = by_check(report, "initial_loss")[0].values["initial_loss"]
    assert abs(loss - math.log(10)) < 0.5
    assert by_check(report, "overfit")[0].values["train_accuracy"] == 1.0


def test_learning_rate_100_is_flagged(tiny_mnist_dir, tmp_path):
    report = run_sanity(tiny_cfg(tiny_mnist_dir, tmp_path, "optim.lr=100"))
    assert not report.passed
    ratio = by_check(report, "update_ratio")[0]
    assert ratio.level == "fail" and "optim.lr=100 is too high" in ratio.message
    overfit = by_check(report, "overfit")[0]
    assert overfit.level == "fail" and "too high" in overfit.message


@pytest.fixture
def zero_init():
    """The deliberately broken init, as a user selects it: ``model.init=zero``."""
    from cnnlab.models.init import INITS

    assert "zero" in INITS
    return "zero"


def test_all_zero_weights_are_flagged_as_symmetry_never_broken(tiny_mnist_dir, tmp_path, zero_init):
    report = run_sanity(tiny_cfg(tiny_mnist_dir, tmp_path, "model.init=zero", "monitor.overfit_steps=10"))
    symmetry = by_check(report, "symmetry")[0]
    assert symmetry.level == "fail"
    assert "symmetry is never broken" in symmetry.message and "zero" in symmetry.message
    assert symmetry.values["layers"] == ["conv1", "conv2", "fc1"]
    assert by_check(report, "overfit")[0].level == "fail"  # it cannot learn either
    assert not report.passed


def test_raw_pixels_into_sigmoid_units_are_flagged(tiny_mnist_dir, tmp_path):
    report = run_sanity(tiny_cfg(tiny_mnist_dir, tmp_path, SIGMOID_NET, "data.normalize=none"), overfit=False)
    saturated = [f for f in by_check(report, "activations") if f.level == "fail"]
    assert saturated and saturated[0].values["layer"] == "sigmoid1"
    assert saturated[0].values["saturated_fraction"] > 0.9
    assert "255" in saturated[0].message and "data.normalize=standardize" in saturated[0].message
    assert by_check(report, "input_scale")[0].level == "warn"
    assert not report.passed


def test_saturation_of_loaded_weights_names_where_they_come_from(tiny_mnist_dir, tmp_path):
    """Pre-trained (DBN) or init_from weights: the advice is not "use Xavier init"."""
    import dataclasses

    from cnnlab.monitor.sanity import check_activations, starting_weights

    cfg = tiny_cfg(tiny_mnist_dir, tmp_path, SIGMOID_NET, "data.normalize=none")
    report_probe = probe_network(cfg, _sigmoid_model(cfg), *_raw_batch(cfg))
    calm_input = dict(input_rms=1.0, input_min=-3.0, input_max=3.0)  # so the input is not the cause
    scheme = check_activations(dataclasses.replace(report_probe, **calm_input))
    loaded = check_activations(dataclasses.replace(report_probe, **calm_input, weights_from="pretrain.method=dbn"))
    assert scheme and "use Xavier init" in scheme[0].message
    assert loaded and "pretrain.method=dbn" in loaded[0].message and "Xavier" not in loaded[0].message
    assert starting_weights(cfg) == ""
    assert starting_weights(load_config("dbn-mnist")) == "pretrain.method=dbn"


def _sigmoid_model(cfg):
    from cnnlab.models import build_model

    torch.manual_seed(0)
    return build_model(cfg.model, (1, 28, 28), 10)


def _raw_batch(cfg):
    from cnnlab.data import load_data

    test = load_data(cfg.data, cfg.seed).test
    return test.images[:64].float(), test.labels[:64]


def test_same_sigmoid_net_on_standardized_input_passes(tiny_mnist_dir, tmp_path):
    report = run_sanity(tiny_cfg(tiny_mnist_dir, tmp_path, SIGMOID_NET), overfit=False)
    assert report.passed
    assert by_check(report, "input_scale")[0].ok


def test_initial_loss_far_above_ln_c_names_a_cause():
    from cnnlab.monitor.sanity import check_initial_loss

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 10))
    nn.init.normal_(model[1].weight, std=10.0)  # far too large: scores of hundreds
    probe = probe_network(load_config(), model, torch.randn(64, 1, 3, 4), torch.randint(0, 10, (64,)))
    finding = check_initial_loss(probe)[0]
    assert finding.level == "warn" and "too high" in finding.message and "weights too large" in finding.message


@pytest.mark.parametrize("scale, level", [(1.0, "ok"), (100.0, "warn")])
def test_input_scale_is_judged_on_the_rms_not_the_tail(scale, level):
    """A sparse image (one lit pixel of 1024, like a jet image) at unit RMS has a pixel 32 units
    out: nothing to fix. The same input at RMS 100 (raw-pixel scale) is flagged."""
    from cnnlab.monitor.sanity import check_input_scale

    torch.manual_seed(0)
    x = torch.zeros(64, 1, 32, 32)
    x.view(64, -1)[torch.arange(64), torch.randint(0, 1024, (64,))] = 32.0 * scale  # RMS = scale
    probe = probe_network(load_config(), nn.Sequential(nn.Flatten(), nn.Linear(1024, 2)), x,
                          torch.randint(0, 2, (64,)))
    assert probe.input_rms == pytest.approx(scale, rel=1e-5)
    assert probe.input_max == pytest.approx(32.0 * scale)
    finding = check_input_scale(probe)[0]
    assert finding.level == level
    assert f"RMS {scale:.3g}" in finding.message


def test_overfit_reports_a_loss_that_does_not_go_down(tiny_mnist_dir, tmp_path):
    cfg = tiny_cfg(tiny_mnist_dir, tmp_path, "optim.lr=1e-7")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    x, y = torch.randn(20, 1, 28, 28), torch.arange(20) % 10
    finding = overfit_check(cfg, model, x, y, steps=10)
    assert finding.level == "fail" and "did not go down" in finding.message
    assert finding.values["steps"] == 10


# -- the command ------------------------------------------------------------------------------
def test_sanity_command_json_and_exit_codes(tiny_mnist_dir, tmp_path, capsys):
    overrides = tiny_overrides(tiny_mnist_dir, tmp_path) + ["monitor.overfit_steps=30"]
    assert main(["sanity", *overrides, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] and out["probe"]["num_classes"] == 10
    assert [l["layer"] for l in out["probe"]["layers"]] == ["conv1", "conv2", "fc1", "fc2"]

    assert main(["sanity", *overrides, "optim.lr=100", "--no-overfit"]) == 1
    text = capsys.readouterr().out
    assert "FAIL" in text and "optim.lr=100 is too high" in text and "sanity FAILED" in text

    assert main(["sanity", *overrides, "monitor.overfit_step=3"]) == 2
    assert "monitor.overfit_steps" in capsys.readouterr().err  # did-you-mean on the key


def test_sanity_builds_the_net_for_what_preprocessing_emits(tiny_mnist_dir, tmp_path):
    """PCA changes the network's input shape; the probe must build the net as the trainer does."""
    report = run_sanity(tiny_cfg(tiny_mnist_dir, tmp_path, "data.normalize=pca", "model.arch=fc50 relu fc"),
                        overfit=False)
    assert report.passed and report.probe.layers == ["fc1", "fc2"]
