"""The report's DBN figures: the RBMs' monitors (pretrain.csv) and the first RBM's Gibbs chains."""

from __future__ import annotations

from cnnlab.config import load_config
from cnnlab.report.collect import collect_run
from cnnlab.report.figures import pretrain_monitors, rbm_samples
from cnnlab.train import start_run
from cnnlab.train.pretrain import SAMPLE_CHAINS, SAMPLE_STEPS
from tests.helpers import tiny_overrides

QUIET = dict(show_progress=False, echo=lambda line: None)


def test_pretraining_figures_are_drawn_from_the_run_directory(tiny_mnist_dir, tmp_path):
    extra = {"model.arch": "'fc16 sigmoid fc8 sigmoid fc'", "data.normalize": "scale", "pretrain": "dbn",
             "pretrain.epochs": 1, "train.epochs": 1, "monitor.sanity_at_start": "false"}
    result = start_run(load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path, **extra)), **QUIET).fit()
    run = collect_run(result.run_dir, device="cpu")
    assert [r["epoch"] for r in run.extra["pretrain"]] == [0, 1, 0, 1]
    samples = run.extra["pretrain_samples"]["samples"]
    assert samples.shape == (SAMPLE_CHAINS, len(SAMPLE_STEPS), 784)
    assert samples.min() >= 0 and samples.max() <= 1  # E[v | h] of binary units
    assert pretrain_monitors(run) is not None and rbm_samples(run) is not None

    plain = start_run(load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path, **{
        **extra, "pretrain": "none"})), **QUIET).fit()
    run = collect_run(plain.run_dir, device="cpu")
    assert pretrain_monitors(run) is None and rbm_samples(run) is None
