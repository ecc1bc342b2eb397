"""``cnnlab summary``: the seeds' tables (figures 2.2 and 1.1), cs231n memory accounting, FLOPs."""

from __future__ import annotations

import json
import math

import pytest

from cnnlab.cli import main
from cnnlab.models import ModelConfig, build_model
from cnnlab.models.summary import summarize


def _summary(arch, shape, batch=1, classes=10):
    return summarize(build_model(ModelConfig(arch=arch), shape, classes), batch)


def test_convnet_matches_seed_figure_2_2():
    s = _summary("convnet", (3, 32, 32))
    rows = [(r["layer"], r["output"], r["weights"]) for r in s["rows"]]
    assert rows == [("INPUT", "32x32x3", 0),
                    ("CONV5-16P2", "32x32x16", (5 * 5 * 3) * 16), ("POOL2", "16x16x16", 0),
                    ("CONV5-20P2", "16x16x20", (5 * 5 * 16) * 20), ("POOL2", "8x8x20", 0),
                    ("CONV5-20P2", "8x8x20", (5 * 5 * 20) * 20), ("POOL2", "4x4x20", 0),
                    ("FC-10", "1x1x10", (4 * 4 * 20) * 10)]
    assert s["totals"]["weights"] == 22_400  # "TOTAL params: 22,400" (weights only)
    assert [r["formula"] for r in s["rows"] if r["formula"]] == ["(5*5*3)*16", "(5*5*16)*20", "(5*5*20)*20",
                                                                 "(4*4*20)*10"]  # as the figure writes them
    assert s["totals"]["biases"] == 16 + 20 + 20 + 10
    assert [r["activation"] for r in s["rows"][1:3]] == ["relu", "max-pooling"]
    assert s["rows"][-1]["activation"] == "softmax (in the loss)"


def test_lenet5_seed_figure_1_1_and_its_true_mnist_numbers():
    # The figure's counts (1,500 for conv1, 431,500 in all) are those of a 3-channel 28x28 input ...
    seed = _summary("lenet5", (3, 28, 28))
    assert [r["weights"] for r in seed["rows"]] == [0, 1_500, 0, 25_000, 0, 400_000, 5_000]
    assert seed["totals"]["weights"] == 431_500
    # ... MNIST has one channel: 500 weights in conv1, 430,500 weights + 580 biases.
    mnist = _summary("lenet5", (1, 28, 28))
    assert [r["output"] for r in mnist["rows"]] == ["28x28x1", "24x24x20", "12x12x20", "8x8x50", "4x4x50",
                                                   "1x1x500", "1x1x10"]
    assert mnist["totals"]["weights"] == 430_500 and mnist["totals"]["biases"] == 580


def test_memory_is_cs231n_accounting_and_flops_count_multiply_adds():
    s = _summary("convnet", (3, 32, 32), batch=50)
    volumes = [32 * 32 * 3, 32 * 32 * 16, 16 * 16 * 16, 16 * 16 * 20, 8 * 8 * 20, 8 * 8 * 20, 4 * 4 * 20, 10]
    assert s["activation_values_per_image"] == sum(volumes)
    assert s["activation_bytes_per_image"] == 4 * 2 * sum(volumes)  # 4 bytes, forward + backward
    assert s["activation_bytes_per_batch"] == 50 * s["activation_bytes_per_image"]
    conv_macs = [75 * 16 * 32 * 32, 400 * 20 * 16 * 16, 500 * 20 * 8 * 8]
    assert s["flops_per_image"] == 2 * (sum(conv_macs) + 320 * 10)
    assert s["flops_per_batch"] == 50 * s["flops_per_image"]


def test_maxout_and_batchnorm_rows_fold_into_their_layer():
    s = _summary("conv3-8p1 bn maxout2 pool2 keep0.5 fc", (3, 8, 8))
    conv = s["rows"][1]
    assert conv["output"] == "8x8x8" and conv["weights"] == 27 * 16 and conv["biases"] == 16
    assert conv["other"] == 2 * 16 and conv["activation"] == "bn, maxout2"
    assert s["rows"][2]["activation"] == "max-pooling, keep0.5"
    assert s["totals"]["params"] == sum(p.numel() for p in build_model(
        ModelConfig(arch="conv3-8p1 bn maxout2 pool2 keep0.5 fc"), (3, 8, 8), 10).parameters())


def test_every_zoo_models_totals_equal_its_parameter_count():
    from cnnlab.models import MODELS

    for name in MODELS.names():
        model = build_model(ModelConfig(arch=name), (3, 32, 32), 10)
        assert summarize(model)["totals"]["params"] == sum(p.numel() for p in model.parameters()), name


def test_cli_summary_text_and_json(capsys):
    assert main(["summary", "convnet", "--input", "3x32x32"]) == 0
    text = capsys.readouterr().out
    assert "CONV5-16P2  32x32x16    1,200" in text and "TOTAL" in text and "22,400" in text
    assert main(["summary", "conv5-16p2 relu pool2 fc", "--input", "3x32x32", "--batch", "8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["weights"] == 1200 + 16 * 16 * 16 * 10
    assert data["activation_bytes_per_batch"] == 8 * data["activation_bytes_per_image"]
    assert math.prod(data["rows"][1]["shape"]) == 16 * 32 * 32


@pytest.mark.parametrize("argv, message", [
    (["summary", "convnet", "--input", "3x32"], "--input '3x32': give C x H x W"),
    (["summary", "lenet55"], "unknown model 'lenet55'. Did you mean 'lenet5'"),
    (["summary", "conv3-16s2 relu fc", "--input", "3x10x10"], "= 4.5 is not an integer on input volume 10x10x3"),
])
def test_cli_summary_user_errors_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
