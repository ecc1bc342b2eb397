"""train.memory_format / precision / compile (issue 15): the layout and precision change speed,
not results; checkpoints stay plain fp32 NCHW-loadable state dicts."""

from __future__ import annotations

import pytest
import torch

from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.train import start_run
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.experiment import build_experiment
from tests.helpers import tiny_overrides

QUIET = dict(show_progress=False, echo=lambda line: None)


def _run(tiny_mnist_dir, tmp_path, *extra):
    cfg = load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path, **{"monitor.sanity_at_start": "false",
                                                                         "train.epochs": 1}) + list(extra))
    return start_run(cfg, **QUIET).fit()


def test_auto_layout_is_channels_last_for_conv_nets_only(tiny_mnist_dir, tmp_path):
    conv = build_experiment(load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path)))
    assert conv.speed.memory_format == torch.channels_last
    assert conv.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    mlp = build_experiment(load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path, **{"model": "mlp"})))
    assert mlp.speed.memory_format == torch.contiguous_format
    forced = build_experiment(load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path,
                                                               **{"train.memory_format": "contiguous"})))
    assert forced.model.conv1.weight.is_contiguous()


def test_channels_last_trains_the_same_network(tiny_mnist_dir, tmp_path):
    a = _run(tiny_mnist_dir, tmp_path / "a", "train.memory_format=channels_last")
    b = _run(tiny_mnist_dir, tmp_path / "b", "train.memory_format=contiguous")
    wa = load_checkpoint(a.run_dir / "checkpoints" / "last.pt", "cpu")["model"]
    wb = load_checkpoint(b.run_dir / "checkpoints" / "last.pt", "cpu")["model"]
    assert wa.keys() == wb.keys()
    for key in wa:  # 40 SGD steps: the layouts differ only in summation order
        assert torch.allclose(wa[key], wb[key], atol=1e-4), key
    assert a.metrics[-1]["val_acc"] == pytest.approx(b.metrics[-1]["val_acc"], abs=0.01)


def test_bf16_trains_on_the_cpu_and_keeps_fp32_weights(tiny_mnist_dir, tmp_path):
    fp32 = _run(tiny_mnist_dir, tmp_path / "fp32")
    bf16 = _run(tiny_mnist_dir, tmp_path / "bf16", "train.precision=bf16")
    weights = load_checkpoint(bf16.run_dir / "checkpoints" / "last.pt", "cpu")["model"]
    assert all(w.dtype == torch.float32 for w in weights.values())
    assert bf16.metrics[-1]["val_acc"] > 0.8  # it learns (fp32: see the next line)
    assert bf16.metrics[-1]["val_acc"] == pytest.approx(fp32.metrics[-1]["val_acc"], abs=0.05)


def test_fp16_on_the_cpu_is_a_clear_error(tiny_mnist_dir, tmp_path, capsys):
    args = ["train", "--quiet", *tiny_overrides(tiny_mnist_dir, tmp_path), "train.precision=fp16"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "train.precision=fp16 needs a CUDA device" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # no run directory left behind


@pytest.mark.slow
def test_compiled_training_matches_eager_and_saves_plain_weights(tiny_mnist_dir, tmp_path):
    eager = _run(tiny_mnist_dir, tmp_path / "eager")
    compiled = _run(tiny_mnist_dir, tmp_path / "compiled", "train.compile=true")
    weights = load_checkpoint(compiled.run_dir / "checkpoints" / "last.pt", "cpu")["model"]
    assert not any(k.startswith("_orig_mod.") for k in weights)
    assert compiled.metrics[-1]["val_acc"] == pytest.approx(eager.metrics[-1]["val_acc"], abs=0.01)
    assert "torch.compile: the first step took" in (compiled.run_dir / "train.log").read_text()
