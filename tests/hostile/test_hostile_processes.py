"""Faults met for real, not simulated: a read-only run directory (chmod) and Ctrl-C (SIGINT
sent to a `cnnlab train` process), which then resumes to the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnlab.cli import main
from tests.hostile.conftest import small_overrides, snapshot

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root, whose writes chmod does not block; "
                           "test_read_only_run_directory_on_resume covers the case by denying os.access")
@pytest.mark.parametrize("folder", ["", "checkpoints"])
def test_read_only_run_directory_for_real(run_copy, cli, folder):
    target = run_copy / folder
    target.chmod(0o555)
    try:
        cli(["train", "--resume", run_copy, "--quiet", "train.epochs=2"], 2, target, "not writable")
    finally:
        target.chmod(0o755)


def _cnnlab(*args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "cnnlab", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigint_to_train_says_how_to_resume_and_the_run_resumes(small_idx, tmp_path, capsys):
    runs = tmp_path / "runs"
    proc = _cnnlab("train", "--quiet", *small_overrides(small_idx, runs, **{"train.epochs": 200}))
    try:
        deadline = time.monotonic() + 60
        while not list(runs.glob("*/checkpoints/last.pt")):  # an epoch has finished
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    (run,) = runs.iterdir()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"interrupted; continue with: cnnlab train --resume {run}" in err
    done = len((run / "metrics.csv").read_text().splitlines()) - 1
    assert 1 <= done < 200
    assert main(["train", "--resume", str(run), "--quiet", f"train.epochs={done + 1}"]) == 0
    epochs = [line.split(",")[0] for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert epochs == [str(e) for e in range(1, done + 2)]
    assert "Traceback" not in capsys.readouterr().err
