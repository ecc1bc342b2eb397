"""The results table: rows and their recipes, the runner's skip/resume/restart, the table read
back from run directories, and `cnnlab ensemble` (issue 16)."""

from __future__ import annotations

import json
import shutil
import statistics

import pytest
import torch

from cnnlab.cli import main
from cnnlab.config import list_recipes, load_config
from cnnlab.errors import CnnlabError
from cnnlab.results.rows import ROWS, TABLE
from cnnlab.results.runner import ENSEMBLE_FILE, Job, jobs_for, run_job, select_rows
from cnnlab.results.table import render
from cnnlab.train.ensemble import combine, ensemble_runs
from tests.helpers import tiny_overrides


# -- rows -------------------------------------------------------------------------------------
def test_every_row_names_recipes_that_load_as_themselves():
    assert [r.key for r in TABLE] and sorted(r.key for r in TABLE) == ROWS.names()
    for row in TABLE:
        assert row.recipes, row.key
        for recipe in row.recipes:
            assert recipe in list_recipes(), (row.key, recipe)
            assert load_config(recipe).name == recipe


def test_seed_recipes_keep_the_seeds_numbers():
    """Spot checks of the as-written settings (seeds/000, 001, 004)."""
    adadelta = load_config("convnet-cifar10-seed")
    assert (adadelta.optim.name, adadelta.optim.lr, adadelta.optim.rho, adadelta.optim.eps) == ("adadelta", 0.01, 0.95, 1e-6)
    assert adadelta.train.batch_size == 4 and adadelta.train.epochs == 25
    assert load_config("convnet-l2-cifar10-seed").optim.l2 == 0.075
    logreg = load_config("logreg-mnist-seed")
    assert (logreg.optim.lr, logreg.optim.momentum, logreg.train.epochs, logreg.train.batch_size) == (0.5, 0.0, 100, 50000)
    mlp = load_config("mlp-mnist-seed")
    assert (mlp.data.train_size, mlp.optim.lr, mlp.model.init) == (5000, 2.0, "small")
    maxout = load_config("maxout-net-cifar10-seed")
    assert (maxout.optim.name, maxout.optim.lr, maxout.optim.rho, maxout.schedule.gamma) == ("rmsprop", 1e-4, 0.999, 0.7)


def test_jobs_follow_rows_seeds_and_needs():
    row = ROWS.get("network3-dropout")
    jobs = jobs_for([row])
    assert [(j.recipe, j.seed) for j in jobs] == [("network3-dropout-seed", 0)] + [("network3-mnist", s) for s in range(5)]
    cpu_only = jobs_for([row], include={"cpu"})
    assert all(j.recipe == "network3-mnist" for j in cpu_only) and len(cpu_only) == 5
    assert [j.seed for j in jobs_for([ROWS.get("lenet5-mnist")], seeds=[7])] == [7, 7]
    assert [(j.recipe, j.seed) for j in jobs_for([ROWS.get("lenet5-mnist")])] == \
        [("lenet5-mnist-seed", 0)] + [("lenet5-mnist", s) for s in range(3)]
    assert [j.recipe for j in jobs_for(select_rows(["lenet5-mnist-seed"]), recipes={"lenet5-mnist-seed"})] == ["lenet5-mnist-seed"]
    assert {r.needs for r in select_rows([])} == {"cpu"}
    with pytest.raises(CnnlabError, match="'lenet' is neither a results row.*Did you mean"):
        select_rows(["lenet"])


# -- the runner -------------------------------------------------------------------------------
def test_run_job_trains_skips_resumes_and_restarts(tiny_mnist_dir, tmp_path):
    overrides = tuple(tiny_overrides(tiny_mnist_dir, tmp_path / "unused", **{"train.epochs": 1}))
    job = Job("lenet5-mnist", 3)
    assert job.state(tmp_path) == "new"
    first = run_job(job, tmp_path, progress=False, echo=lambda s: None, overrides=overrides)
    path = job.path(tmp_path)
    assert job.state(tmp_path) == "done" and path == tmp_path / "lenet5-mnist" / "seed3"
    assert load_config(str(path / "config.yaml")).seed == 3
    assert first["epochs"] == 1 and 0 <= first["test_error"] <= 1 and first["hardware"].startswith("CPU")
    # interrupted after its last checkpoint: resumed, the same test error again
    (path / "test.json").unlink()
    assert job.state(tmp_path) == "interrupted"
    again = run_job(job, tmp_path, progress=False, echo=lambda s: None)
    assert again["test_error"] == pytest.approx(first["test_error"], abs=1e-12)
    # a start that failed before any checkpoint: started anew
    shutil.rmtree(path / "checkpoints")
    (path / "test.json").unlink()
    assert job.state(tmp_path) == "new"
    fresh = run_job(job, tmp_path, progress=False, echo=lambda s: None, overrides=overrides)
    assert fresh["test_error"] == pytest.approx(first["test_error"], abs=1e-6)  # same seed, same data


def test_results_run_skips_what_is_done(tmp_path, capsys):
    for seed in range(3):  # logreg-mnist-seed and logreg-mnist finished at seeds 0..2
        for recipe in ("logreg-mnist-seed", "logreg-mnist"):
            _fake_summary(tmp_path, recipe, seed, 0.1)
    assert main(["results", "run", "--dir", str(tmp_path), "--quiet", "logreg-mnist"]) == 0
    assert "6 runs, 6 already done, 0 to train" in capsys.readouterr().out


# -- the table --------------------------------------------------------------------------------
def _fake_summary(results, recipe, seed, error, epochs=5, seconds=60.0):
    path = results / recipe / f"seed{seed}"
    path.mkdir(parents=True)
    (path / "test.json").write_text(json.dumps({
        "epochs": epochs, "steps": 10, "best_epoch": epochs, "best_val_acc": 0.9, "test_loss": 0.1,
        "test_acc": 1 - error, "test_error": error, "train_seconds": seconds, "hardware": "CPU, 1 torch thread",
        "world_size": 1, "finished": "2026-12-07T00:00:00"}))


def test_table_shows_mean_std_over_seeds_ensembles_and_what_is_missing(tmp_path):
    for seed, error in enumerate([0.0080, 0.0090, 0.0070]):
        _fake_summary(tmp_path, "lenet5-mnist", seed, error, seconds=90)
    _fake_summary(tmp_path, "lenet5-mnist-seed", 0, 0.0100, epochs=50)
    for seed in range(5):
        _fake_summary(tmp_path, "network3-mnist", seed, 0.006)
    (tmp_path / "network3-mnist" / ENSEMBLE_FILE).write_text(json.dumps(
        {"test_error": 0.0042, "members": [{"run_dir": f"seed{s}", "test_error": 0.006} for s in range(5)]}))
    (tmp_path / "lenet5-mnist" / "seed9").mkdir()  # unfinished: not counted
    text = render(tmp_path)
    line = next(l for l in text.splitlines() if l.startswith("| LeNet-5, MNIST"))
    mean, std = statistics.mean([0.8, 0.9, 0.7]), statistics.stdev([0.8, 0.9, 0.7])
    assert f"{mean:.2f} ± {std:.2f}% (3 seeds), 5 ep, 1.5 min" in line
    assert "1.00% (1 seed), 50 ep" in line and "0.9%" in line and "0.92% (Theano tutorial)" in line
    assert "ensemble of 5: **0.42%**" in text
    logreg = next(l for l in text.splitlines() if l.startswith("| logistic regression"))
    assert "not yet run: `cnnlab results run logreg-mnist-seed`" in logreg
    assert "a GPU job" in next(l for l in text.splitlines() if l.startswith("| Maxout Network"))
    assert text.count("| `lenet5-mnist` |") == 3 and "CPU, 1 torch thread" in text


def test_results_table_command_writes_the_file(tmp_path, capsys):
    _fake_summary(tmp_path, "mlp-mnist", 0, 0.05)
    out = tmp_path / "RESULTS.md"
    assert main(["results", "table", "--dir", str(tmp_path), "--out", str(out)]) == 0
    assert "5.00% (1 seed)" in out.read_text()


def test_damaged_summary_is_one_line_naming_the_file(tmp_path, capsys):
    (tmp_path / "mlp-mnist" / "seed0").mkdir(parents=True)
    (tmp_path / "mlp-mnist" / "seed0" / "test.json").write_text("{not json")
    assert main(["results", "table", "--dir", str(tmp_path), "--out", str(tmp_path / "R.md")]) == 2
    err = capsys.readouterr().err
    assert "mlp-mnist/seed0/test.json" in err and "Traceback" not in err
    assert not (tmp_path / "R.md").exists()


# -- ensembles --------------------------------------------------------------------------------
def test_combine_mean_and_vote_by_hand():
    a = torch.tensor([[0.6, 0.4, 0.0], [0.1, 0.5, 0.4]])
    b = torch.tensor([[0.0, 0.9, 0.1], [0.2, 0.3, 0.5]])
    c = torch.tensor([[0.1, 0.8, 0.1], [0.4, 0.2, 0.4]])
    assert combine([a, b, c], "mean").tolist() == [1, 2]          # means [.23 .7 .07], [.23 .33 .43]
    assert combine([a, b, c], "vote").tolist() == [1, 2]          # votes 0,1,1 -> 1; 1,2,0 tie -> larger mean: 2
    assert combine([a], "vote").tolist() == combine([a], "mean").tolist() == [0, 1]
    with pytest.raises(CnnlabError, match="not one of mean, vote"):
        combine([a], "median")


@pytest.fixture(scope="module")
def two_runs(tiny_mnist_dir, tmp_path_factory):
    import cnnlab

    runs = tmp_path_factory.mktemp("ensemble-runs")
    return [cnnlab.train(None, *tiny_overrides(tiny_mnist_dir, runs, **{"train.epochs": 1, "seed": s}),
                         quiet=True, progress=False).path for s in (0, 1)]


def test_ensemble_of_identical_members_is_the_member(two_runs):
    import cnnlab

    member = cnnlab.load_run(two_runs[0]).evaluate(device="cpu")["test_error"]
    result = ensemble_runs([two_runs[0]] * 3, device="cpu")
    assert result["test_error"] == pytest.approx(member, abs=1e-12)
    assert [m["test_error"] for m in result["members"]] == [pytest.approx(member, abs=1e-12)] * 3


def test_ensemble_of_two_is_the_averaged_softmax(two_runs):
    import cnnlab
    from cnnlab.data import load_data

    runs = [cnnlab.load_run(p) for p in two_runs]
    test = load_data(runs[0].config.data, runs[0].config.seed).test
    mean = (runs[0].predict(test.images, device="cpu") + runs[1].predict(test.images, device="cpu")) / 2
    expected = (mean.argmax(1) != test.labels).double().mean().item()
    result = ensemble_runs(two_runs, device="cpu")
    assert result["test_error"] == pytest.approx(expected, abs=1e-12)
    # the members differ (else this would only re-test the identical-members case)
    assert not torch.equal(runs[0].predict(test.images[:50], device="cpu"), runs[1].predict(test.images[:50], device="cpu"))


def test_ensemble_command_and_its_errors(two_runs, tiny_mnist_dir, tmp_path, capsys):
    assert main(["ensemble", str(two_runs[0]), str(two_runs[1]), "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "mean" and len(out["members"]) == 2 and out["test_examples"] == 500
    assert main(["ensemble", str(two_runs[0]), str(two_runs[1]), "--method", "vote", "--device", "cpu"]) == 0
    assert "ensemble of 2 (vote): test error" in capsys.readouterr().out
    assert main(["ensemble", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such run directory" in capsys.readouterr().err
    # a member evaluated on other test images is refused, naming it
    from tests.helpers import write_idx_subset

    other = tmp_path / "other-data"
    other.mkdir()
    write_idx_subset(other, n_train=1000, n_test=300)
    import cnnlab

    odd = cnnlab.train(None, *tiny_overrides(other, tmp_path / "runs", **{"train.epochs": 1}), quiet=True, progress=False)
    assert main(["ensemble", str(two_runs[0]), str(odd.path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert str(odd.path) in err and "test split" in err and "Traceback" not in err
