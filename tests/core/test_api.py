"""The Python API (cnnlab.train / load_run / Run): same config rules as the CLI, same run dirs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError
from tests.helpers import tiny_overrides

README = Path(__file__).resolve().parents[2] / "README.md"


def test_train_evaluate_predict_report_resume(tiny_mnist_dir, tmp_path):
    run = cnnlab.train(None, *tiny_overrides(tiny_mnist_dir, tmp_path), quiet=True, progress=False,
                       train={"epochs": 1}, optim={"lr": 0.02})
    assert run.config.optim.lr == 0.02 and run.config.optim.l2 == 0.0005  # merged, not replaced
    assert len(run.metrics) == 1 and 0 <= run.test_error <= 1
    evaluated = run.evaluate(device="cpu")
    assert evaluated["test_error"] == pytest.approx(run.test_error, abs=1e-9)
    probs = run.predict(torch.zeros(3, 1, 28, 28, dtype=torch.uint8), device="cpu")
    assert probs.shape == (3, 10) and torch.allclose(probs.sum(1), torch.ones(3))
    page = run.report(tmp_path / "r.html")
    assert page.is_file() and "<html" in page.read_text()[:200].lower()
    again = cnnlab.load_run(run.path).resume(train={"epochs": 2}, quiet=True, progress=False)
    assert [r["epoch"] for r in again.metrics] == [1, 2]
    assert "test error" in repr(again)


def test_api_errors_are_the_clis(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'optim.lrr'"):
        cnnlab.train(optim={"lrr": 0.1})
    with pytest.raises(Exception, match="no such run directory"):
        cnnlab.load_run(tmp_path / "nowhere")


@pytest.mark.slow
def test_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    """The README's Python example, executed verbatim (one epoch of the main job, ~30 s)."""
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
