"""Hostile input and faults (issue 13): every case a clear error, nothing lost, nothing silently wrong.

Every hostile file is written by the test that uses it. The ``cli`` fixture runs one command and
asserts the contract of a failure: the exit code, one message naming the file or key, no
traceback, and no file of an existing run (a copy of a finished one, under the same runs_dir)
changed, nor any new run directory left behind.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.train import start_run
from tests.helpers import tiny_overrides, write_idx_subset


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def small_idx(tmp_path_factory) -> Path:
    """300 train / 100 test MNIST images as IDX files (every class in both)."""
    folder = tmp_path_factory.mktemp("small-idx")
    write_idx_subset(folder, n_train=300, n_test=100)
    return folder


def small_overrides(folder: Path, runs: Path, **extra) -> list[str]:
    return tiny_overrides(folder, runs, **{"data.val_size": 50, "train.epochs": 1,
                                           "monitor.sanity_at_start": "false", **extra})


@pytest.fixture(scope="session")
def finished_run(small_idx, tmp_path_factory) -> Path:
    """A finished 1-epoch run (kept pristine: tests use a copy)."""
    runs = tmp_path_factory.mktemp("pristine-runs")
    cfg = load_config(None, small_overrides(small_idx, runs))
    return start_run(cfg, show_progress=False, echo=lambda line: None).fit().run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    target = tmp_path / "runs" / finished_run.name
    shutil.copytree(finished_run, target)
    return target


@pytest.fixture
def runs_dir(run_copy) -> Path:
    return run_copy.parent


@pytest.fixture
def cli(capsys, run_copy):
    """``cli(args, code, *names)``: run ``cnnlab args``; assert the failure contract; the message."""
    def run(args: list[str], code: int, *names) -> str:
        before, listing = snapshot(run_copy), sorted(p.name for p in run_copy.parent.iterdir())
        got = main([str(a) for a in args])
        captured = capsys.readouterr()
        err = captured.err
        assert got == code, f"exit {got}, expected {code}:\n{err}"
        assert "Traceback" not in err and "Traceback" not in captured.out
        for name in names:
            assert str(name) in err, f"{name!r} not in the message:\n{err}"
        assert snapshot(run_copy) == before, "a file of the existing run changed"
        assert sorted(p.name for p in run_copy.parent.iterdir()) == listing, "a run directory was left behind"
        return err
    return run
