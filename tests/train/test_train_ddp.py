"""Data-parallel training under torchrun (issue 15), on the CPU with gloo and 2 processes:
2 ranks and 1 process on the same global batches give the same weights and metrics; rank 0
alone writes the run; a run resumes on another number of ranks."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from tests.helpers import tiny_overrides

ROOT = Path(__file__).resolve().parents[2]


def _train(tiny_mnist_dir, runs: Path, *extra: str, nproc: int | None = None, resume: Path | None = None) -> Path:
    args = ["train", "--quiet"]
    if resume is not None:
        args += ["--resume", str(resume), *extra]
    else:
        args += [*tiny_overrides(tiny_mnist_dir, runs, **{"monitor.sanity_at_start": "false"}), *extra]
    if nproc is not None:
        args = [*args, "--nproc", str(nproc)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    if resume is not None:
        return resume
    (run,) = runs.iterdir()  # one run directory, written by rank 0 only (and no torchrun note left)
    return run


def _weights(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]


def _metrics(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_two_ranks_take_the_steps_of_one_process(tiny_mnist_dir, tmp_path):
    one = _train(tiny_mnist_dir, tmp_path / "one", "train.iterations=5")
    two = _train(tiny_mnist_dir, tmp_path / "two", "train.iterations=5", nproc=2)
    a, b = _weights(one), _weights(two)
    assert a.keys() == b.keys()
    for key in a:  # 5 steps: only the order of float summation differs (each rank sums half the batch)
        assert torch.allclose(a[key], b[key], atol=1e-6), (key, (a[key] - b[key]).abs().max())
    ma, mb = _metrics(one), _metrics(two)
    assert [r["val_acc"] for r in ma] == [r["val_acc"] for r in mb]  # the whole split on every rank
    # the epoch's training loss is summed over both ranks' shards: the whole epoch's mean
    assert abs(float(ma[0]["train_loss"]) - float(mb[0]["train_loss"])) < 1e-5
    log = (two / "train.log").read_text().splitlines()
    assert sum("test error" in line for line in log) == 1  # rank 0 alone writes


def test_a_ddp_run_resumes_on_one_process_and_back(tiny_mnist_dir, tmp_path):
    run = _train(tiny_mnist_dir, tmp_path / "runs", "train.epochs=1", nproc=2)
    _train(tiny_mnist_dir, tmp_path, "train.epochs=2", resume=run)
    _train(tiny_mnist_dir, tmp_path, "train.epochs=3", resume=run, nproc=2)
    rows = _metrics(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["val_acc"]) > 0.85


def test_nproc_below_one_is_a_clear_error(capsys):
    assert main(["train", "--nproc", "0"]) == 2
    assert "--nproc must be at least 1" in capsys.readouterr().err


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_a_killed_rank_is_restarted_by_torchrun_and_the_run_resumes(tiny_mnist_dir, tmp_path):
    import signal
    import time

    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "--max-restarts=1", "-m", "cnnlab", "train", "--quiet",
               *tiny_overrides(tiny_mnist_dir, runs, **{"monitor.sanity_at_start": "false", "train.epochs": 12})]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    agent = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for two finished epochs, then kill one rank mid-training
        rows = [p for p in runs.glob("*/metrics.csv") if len(p.read_text().splitlines()) >= 3]
        if rows:
            break
        time.sleep(0.1)
    ranks = _children(agent.pid)
    assert ranks, "no rank processes found"
    os.kill(ranks[-1], signal.SIGKILL)
    out, _ = agent.communicate(timeout=300)
    assert agent.returncode == 0, out
    (run,) = [p for p in runs.iterdir() if p.is_dir()]  # the restart continued the same run
    assert [int(r["epoch"]) for r in _metrics(run)] == list(range(1, 13))
    assert "resumed" in (run / "train.log").read_text()


def test_sync_bn_converts_batch_norm_in_place_keeping_parameters_and_keys():
    from cnnlab.errors import ConfigError
    from cnnlab.models import ModelConfig, build_model
    from cnnlab.train.distributed import sync_batch_norm

    model = build_model(ModelConfig(arch="conv3-4p1 bn:frozen:eps1e-12:m0.4 relu res(conv3-4p1 bn relu) fc",
                                    sync_bn=True), (2, 5, 5), 3)
    keys, bias, frozen = list(model.state_dict()), model.bn1.bias, model.bn1.weight
    with pytest.raises(ConfigError, match="model.sync_bn: torch's SyncBatchNorm runs on CUDA only"):
        sync_batch_norm(model, torch.device("cpu"))
    assert sync_batch_norm(model, torch.device("cuda")) is model  # the conversion itself needs no GPU
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 2 and all(isinstance(m, torch.nn.SyncBatchNorm) for m in norms)
    assert model.bn1.bias is bias and model.bn1.weight is frozen and not frozen.requires_grad
    assert (model.bn1.eps, model.bn1.momentum) == (1e-12, 0.4)
    assert list(model.state_dict()) == keys  # checkpoints load either way
