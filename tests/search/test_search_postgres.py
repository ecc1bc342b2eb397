"""Many workers, one study on a real PostgreSQL server (issue 14): two worker processes (two
"machines": each its own study directory) complete the trials with none lost or run twice; a
worker killed mid-trial has its trial failed by the heartbeat and retried; Ctrl-C and a re-run
continue the study."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from tests.search.test_search_run import search_file

ROOT = Path(__file__).resolve().parents[2]


def _worker(path: Path, study_dir: Path, url: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "cnnlab", "search", str(path), "--dir", str(study_dir), "--study", "pg",
               "--storage", url, "--quiet", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="pg.stage1", storage=url)
    return [t for t in study.trials if not t.user_attrs.get("surplus")]


def _records(*dirs: Path) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for d in dirs for p in sorted(d.glob("stage1/trials/*/trial.yaml"))]


def test_two_machines_complete_every_trial_once(tiny_mnist_dir, tmp_path, fresh_database):
    path = search_file(tmp_path, tiny_mnist_dir, trials=8)
    a = _worker(path, tmp_path / "machine-a", fresh_database)
    time.sleep(1.0)
    b = _worker(path, tmp_path / "machine-b", fresh_database)
    outs = [p.communicate(timeout=400)[0] for p in (a, b)]
    assert [a.returncode, b.returncode] == [0, 0], outs
    trials = _trials(fresh_database)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 8 and len(trials) == 8  # none lost, none failed, none extra
    assert sorted(t.number for t in complete) == list(range(8))
    records = [r for r in _records(tmp_path / "machine-a", tmp_path / "machine-b") if r["state"] == "complete"]
    assert sorted(r["number"] for r in records) == list(range(8))  # each ran once, on one machine
    assert all(len(o.strip()) for o in outs)  # both machines show the trials as they finish
    assert {r["number"] for r in _records(tmp_path / "machine-a")} and {r["number"] for r in _records(tmp_path / "machine-b")}


def test_a_killed_worker_trial_is_retried_by_the_heartbeat(tiny_mnist_dir, tmp_path, fresh_database):
    path = search_file(tmp_path, tiny_mnist_dir, trials=3, epochs=10)  # seconds per trial: killed mid-trial
    victim = _worker(path, tmp_path / "victim", fresh_database, "--heartbeat", "1")
    deadline = time.time() + 120
    while not [r for r in _records(tmp_path / "victim") if r and r["state"] == "running"] and time.time() < deadline:
        time.sleep(0.05)
    victim.kill()  # SIGKILL mid-trial: no cleanup, the trial stays RUNNING in the database
    victim.wait()
    (killed,) = [r for r in _records(tmp_path / "victim") if r["state"] == "running"]
    survivor = _worker(path, tmp_path / "survivor", fresh_database, "--heartbeat", "1")
    out = survivor.communicate(timeout=400)[0]
    assert survivor.returncode == 0, out
    trials = {t.number: t for t in _trials(fresh_database)}
    assert trials[killed["number"]].state == TrialState.FAIL  # failed by the heartbeat
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retries = [t for t in trials.values()
                   if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == killed["number"]]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].user_attrs["values"] == killed["values"]  # the same trial again
    assert sum(t.state == TrialState.COMPLETE for t in trials.values()) == 3


def test_ctrl_c_then_rerun_continues_the_database_study(tiny_mnist_dir, tmp_path, fresh_database):
    path = search_file(tmp_path, tiny_mnist_dir, trials=4)
    first = _worker(path, tmp_path / "study", fresh_database)
    deadline = time.time() + 120
    while not list((tmp_path / "study").glob("stage1/trials/*/trial.yaml")) and time.time() < deadline:
        time.sleep(0.1)
    first.send_signal(signal.SIGINT)
    out = first.communicate(timeout=200)[0]
    assert first.returncode == 130, out
    done_before = {t.number for t in _trials(fresh_database) if t.state == TrialState.COMPLETE}
    assert 1 <= len(done_before) < 4
    again = _worker(path, tmp_path / "study", fresh_database)
    out = again.communicate(timeout=300)[0]
    assert again.returncode == 0, out
    assert f"{len(done_before)} trials already finished" in out
    trials = _trials(fresh_database)
    assert sorted(t.number for t in trials if t.state == TrialState.COMPLETE) == [0, 1, 2, 3]
