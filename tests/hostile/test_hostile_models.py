"""Layers too large for memory: the parameter count is checked on torch's meta device before
anything is allocated (was an OOM kill or an allocator traceback), naming the layer, its
parameter count and the memory available."""

from __future__ import annotations

import pytest

from cnnlab.models import ModelConfig, build_model
from cnnlab.models.build import TRAINING_COPIES, check_parameters_fit
from cnnlab.models.spec import SpecError
from tests.hostile.conftest import small_overrides


@pytest.mark.parametrize("spec, layer, count", [
    ("fc99999999 fc", "layer 1 'fc99999999'", "78,499,999,215"),  # 784 x 99999999 + 99999999
    ("conv3-99999999 fc", "layer 2 'fc'", "675,999,993,250"),  # the conv fits; the fc after it does not
])
def test_summary_of_a_layer_beyond_memory(cli, spec, layer, count):
    err = cli(["summary", spec, "--input", "1x28x28"], 2, layer, count, "memory is available")
    assert len(err.strip().splitlines()) == 1


def test_summary_of_a_layer_beyond_torch_sizes(cli):
    cli(["summary", "fc9999999999999999999999 fc", "--input", "1x28x28"], 2, "layer 1", "64-bit")


def test_train_with_a_layer_beyond_memory(small_idx, runs_dir, cli):
    cli(["train", "--quiet", *small_overrides(small_idx, runs_dir, **{"model.arch": "fc99999999 fc"})], 2,
        "layer 1 'fc99999999'", "78,499,999,215", "gradients and the optimizer's state")


def test_training_counts_gradients_and_optimizer_state(monkeypatch):
    """A network whose weights fit but whose training copies do not: refused for training only."""
    import cnnlab.data.limits as limits

    params = 784 * 1000 + 1000 + 1000 * 10 + 10
    monkeypatch.setattr(limits, "available_memory", lambda: params * 4 * 2)
    cfg = ModelConfig(arch="fc1000 fc")
    assert sum(p.numel() for p in build_model(cfg, (1, 28, 28), 10).parameters()) == params
    with pytest.raises(SpecError, match=f"x{TRAINING_COPIES} for training"):
        build_model(cfg, (1, 28, 28), 10, copies=TRAINING_COPIES)


def test_gradcheck_of_a_layer_beyond_memory(cli):
    cli(["gradcheck", "fc99999999 fc"], 2, "layer 1 'fc99999999'", "float64")


def test_the_check_names_the_largest_layer():
    net = build_model(ModelConfig(arch="conv3-4 fc50 fc"), (1, 8, 8), 10)
    expected = (r"layer 2 'fc50' has 7,250 parameters \(on input volume 6x6x4; the network 7,800\): "
                r"30.5 KiB as float32, but 1.0 KiB of memory is available")
    with pytest.raises(SpecError, match=expected):
        check_parameters_fit(net.infos, free=1024)
    check_parameters_fit(net.infos, free=7800 * 4)  # exactly fits
