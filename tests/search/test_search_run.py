"""`cnnlab search` end to end on a tiny MNIST (issue 14): trials are run directories, trial k has
the same values with 1 or 2 workers, a re-run continues, Ctrl-C stops at a trial boundary,
pruned and diverged trials are marked, best.yaml re-runs the best trial."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
import yaml

from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.errors import UserError
from cnnlab.search.runner import run_search
from cnnlab.search.study import Search
from cnnlab.search.spec import load_search
from cnnlab.search.trial import run_trial

ROOT = Path(__file__).resolve().parents[2]
QUIET = dict(echo=lambda line: None, progress=False)


def search_file(folder: Path, tiny_mnist_dir: Path, trials: int = 4, extra: str = "", epochs: int = 1) -> Path:
    text = textwrap.dedent(f"""
        base: lenet5-mnist
        overrides: [model=logreg, data.source=idx, "data.path={tiny_mnist_dir}", data.val_size=500,
                    train.batch_size=50, device=cpu, monitor.sanity_at_start=false]
        metric: val_acc
        seed: 3
        space:
          optim.lr: {{log_uniform: [1.0e-4, 1.0e-1]}}
          train.batch_size: {{choice: [25, 50]}}
        stages: [{{trials: {trials}, train.epochs: {epochs}}}]
    """) + extra
    path = folder / "tiny.yaml"
    path.write_text(text)
    return path


def _complete(study_dir: Path, stage: int = 1) -> dict[int, dict]:
    out = {}
    for record in sorted((study_dir / f"stage{stage}" / "trials").glob("*/trial.yaml")):
        data = yaml.safe_load(record.read_text())
        if data["state"] == "complete":
            out[data["number"]] = data
    return out


@pytest.fixture(scope="module")
def one_worker(tiny_mnist_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("search1")
    spec = load_search(search_file(folder, tiny_mnist_dir))
    result = run_search(spec, folder / "study", "tiny", **QUIET)
    return folder, result


def test_trials_are_run_directories_with_their_values(one_worker):
    folder, result = one_worker
    trials = _complete(folder / "study")
    assert sorted(trials) == [0, 1, 2, 3] and result.completed
    for number, record in trials.items():
        run_dir = folder / "study" / "stage1" / "trials" / f"{number:04d}"
        config = load_config(str(run_dir / "config.yaml"))
        assert config.optim.lr == record["values"]["optim.lr"]
        assert config.train.batch_size == record["values"]["train.batch_size"]
        assert config.seed == record["seed"] and config.train.epochs == 1
        assert (run_dir / "checkpoints" / "best.pt").is_file() and (run_dir / "metrics.csv").is_file()
    assert len({r["seed"] for r in trials.values()}) == 4  # a seed per trial


def test_best_yaml_is_the_best_trial_config(one_worker):
    folder, result = one_worker
    trials = _complete(folder / "study")
    best_number = max(trials, key=lambda n: trials[n]["value"])
    assert result.best["number"] == best_number
    rerun = load_config(str(folder / "study" / "best.yaml")).to_dict()
    trial = load_config(str(folder / "study" / "stage1" / "trials" / f"{best_number:04d}" / "config.yaml")).to_dict()
    assert {**rerun, "name": None} == {**trial, "name": None}


def test_two_workers_draw_the_same_trials(one_worker, tiny_mnist_dir, tmp_path):
    folder, _ = one_worker
    spec = load_search(search_file(tmp_path, tiny_mnist_dir))
    result = run_search(spec, tmp_path / "study", "tiny", workers=2, **QUIET)
    assert result.completed
    one, two = _complete(folder / "study"), _complete(tmp_path / "study")
    assert sorted(two) == [0, 1, 2, 3]
    for n in range(4):
        assert two[n]["values"] == one[n]["values"] and two[n]["seed"] == one[n]["seed"]
        assert two[n]["value"] == pytest.approx(one[n]["value"], abs=0.02)  # threads: 2 vs 1 each


def test_rerun_continues_without_repeating(one_worker):
    folder, _ = one_worker
    spec = load_search(folder / "tiny.yaml")
    before = sorted(p.name for p in (folder / "study" / "stage1" / "trials").iterdir())
    lines = []
    result = run_search(spec, folder / "study", "tiny", echo=lines.append, progress=False)
    assert result.completed and sorted(p.name for p in (folder / "study" / "stage1" / "trials").iterdir()) == before
    assert any("4 trials already finished" in line for line in lines)


def test_another_search_in_the_same_directory_is_refused(one_worker, tiny_mnist_dir, tmp_path):
    folder, _ = one_worker
    spec = load_search(search_file(tmp_path, tiny_mnist_dir, trials=5))
    with pytest.raises(UserError, match="holds another search .*stages"):
        run_search(spec, folder / "study", "tiny", **QUIET)


def test_cli_json_and_trial_lines(one_worker, capsys):
    folder, _ = one_worker
    assert main(["search", str(folder / "tiny.yaml"), "--dir", str(folder / "study"), "--study", "tiny",
                 "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["completed"] and data["best"]["config"].endswith("best.yaml")
    assert "top trials of stage 1" in captured.err


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def _one_trial(spec, tmp_path, pruner=None) -> optuna.trial.FrozenTrial:
    search = Search(spec, "tiny", tmp_path / "study")
    study = optuna.create_study(direction="maximize", pruner=pruner)
    study.optimize(lambda t: run_trial(t, search.context(0, spec.params)), n_trials=1)
    return study.trials[0]


def test_a_pruned_trial_stops_at_an_epoch_end_and_says_so(tiny_mnist_dir, tmp_path):
    spec = load_search(search_file(tmp_path, tiny_mnist_dir), ["train.epochs=3"])
    trial = _one_trial(spec, tmp_path, _AlwaysPrune())
    assert trial.state == optuna.trial.TrialState.PRUNED
    run_dir = Path(trial.user_attrs["run_dir"])
    record = yaml.safe_load((run_dir / "trial.yaml").read_text())
    assert record["state"] == "pruned" and record["reason"] == "pruned after epoch 1"
    assert len((run_dir / "metrics.csv").read_text().strip().splitlines()) == 2  # header + epoch 1


def test_a_diverging_trial_is_pruned_not_retried(tiny_mnist_dir, tmp_path):
    spec = load_search(search_file(tmp_path, tiny_mnist_dir), ["data.normalize=none"])
    spec.space = {"optim.lr": {"log_uniform": [1.0e+6, 1.0e+7]}}
    trial = _one_trial(spec, tmp_path)
    assert trial.state == optuna.trial.TrialState.PRUNED and trial.user_attrs["reason"] == "diverged"
    record = yaml.safe_load((Path(trial.user_attrs["run_dir"]) / "trial.yaml").read_text())
    assert record["state"] == "pruned" and record["reason"].startswith("diverged")


def test_ctrl_c_stops_at_a_trial_boundary_and_a_rerun_finishes(tiny_mnist_dir, tmp_path):
    path = search_file(tmp_path, tiny_mnist_dir, trials=6)
    study = tmp_path / "study"
    command = [sys.executable, "-m", "cnnlab", "search", str(path), "--dir", str(study), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 120
    while not (study / "stage1" / "trials" / "0000" / "trial.yaml").is_file() and time.time() < deadline:
        time.sleep(0.1)
    finished_before = len(_complete(study))
    proc.send_signal(signal.SIGINT)  # a trial is running
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "stopping after the running trial" in out and "re-run the same command" in out
    done = _complete(study)
    # the running trial finished (nothing half-done), then the search stopped
    assert finished_before < len(done) <= finished_before + 1 < 6, out
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert sorted(_complete(study)) == list(range(6))
    assert {n: r["values"] for n, r in _complete(study).items() if n in done} == \
        {n: r["values"] for n, r in done.items()}  # nothing re-run


def test_a_killed_search_is_continued_and_its_running_trial_rerun(tiny_mnist_dir, tmp_path):
    """The journal file has no heartbeat: a re-run finds the dead process's running trial, fails
    it and re-queues it with the same values."""
    path = search_file(tmp_path, tiny_mnist_dir, trials=3, epochs=10)  # seconds per trial: killed mid-trial
    study = tmp_path / "study"
    command = [sys.executable, "-m", "cnnlab", "search", str(path), "--dir", str(study), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline, running = time.time() + 120, []
    while not running and time.time() < deadline:
        running = [yaml.safe_load(p.read_text()) for p in (study / "stage1" / "trials").glob("*/trial.yaml")]
        running = [r for r in running if r and r["state"] == "running"]
        time.sleep(0.05)
    proc.kill()  # SIGKILL mid-trial: the trial stays RUNNING in the journal
    proc.wait()
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=400)
    assert again.returncode == 0, again.stderr
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(study / "study.journal")))
    trials = optuna.load_study(study_name="tiny.stage1", storage=storage).trials
    killed = running[0]["number"]
    assert trials[killed].state == optuna.trial.TrialState.FAIL
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == killed]
    assert retry.state == optuna.trial.TrialState.COMPLETE and retry.user_attrs["values"] == running[0]["values"]
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 3


def test_an_unreachable_database_exits_2_and_leaves_no_study_directory(tiny_mnist_dir, tmp_path, capsys):
    path = search_file(tmp_path, tiny_mnist_dir)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["search", str(path), "--dir", str(tmp_path / "study"), "--quiet",
                 "--storage", f"postgresql+psycopg://nobody@127.0.0.1:{port}/none"])
    assert code == 2 and "cannot open the study database" in capsys.readouterr().err
    assert not (tmp_path / "study").exists()
