"""Run files read back (config.yaml, metrics.csv, layers.csv, sanity.json, resumes.yaml, the
checkpoints): damaged, cut short, of the wrong types or shapes -> exit 2 naming the file, the run
as it was (the ``cli`` fixture checks that no file of the run changed)."""

from __future__ import annotations

import pytest
import torch

from cnnlab.errors import CheckpointError


def resume(run):
    return ["train", "--resume", run, "--quiet", "train.epochs=2"]


def report(run):
    return ["report", run, "--device", "cpu", "--out", run.parent / "r.html"]


def evaluate(run):
    return ["evaluate", run, "--device", "cpu"]


def export(run):
    return ["export", run, "--format", "safetensors", "--out", run.parent / "m.safetensors"]


COMMANDS = {"resume": resume, "report": report, "evaluate": evaluate, "export": export}


def _cut(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


# -- layers.csv --------------------------------------------------------------------------------
LAYERS = {
    "garbage": lambda p: p.write_bytes(b"\x00\xff\x12garbage\x80"),
    "empty": lambda p: p.write_bytes(b""),
    "other columns": lambda p: p.write_bytes(b"a,b\n1,2\n"),
    "cut mid-row": _cut,
    "word for a number": lambda p: p.write_text(p.read_text().replace(",conv,", ",conv,abc", 1)),
    "word for the epoch": lambda p: p.write_text(p.read_text().replace("\n1,", "\nx,", 1)),
}


@pytest.mark.parametrize("damage", LAYERS)
@pytest.mark.parametrize("command", ["resume", "report"])
def test_damaged_layers_csv(run_copy, cli, damage, command):
    LAYERS[damage](run_copy / "layers.csv")
    cli(COMMANDS[command](run_copy), 2, run_copy / "layers.csv")


# -- metrics.csv -------------------------------------------------------------------------------
def test_metrics_csv_without_its_columns_on_report(run_copy, cli):
    (run_copy / "metrics.csv").write_text("epoch,step\n1,5\n")
    cli(report(run_copy), 2, run_copy / "metrics.csv", "train_loss")


def test_metrics_csv_cut_mid_row_on_report(run_copy, cli):
    _cut(run_copy / "metrics.csv", 0.8)
    cli(report(run_copy), 2, run_copy / "metrics.csv")


@pytest.mark.parametrize("content", ["", "epoch,step,train_loss,train_total_loss,train_acc,val_loss,val_acc,lr,seconds\n"])
def test_metrics_csv_without_the_checkpoints_rows_on_resume(run_copy, cli, content):
    """Resuming would write epoch 2 alone: epoch 1's row silently lost."""
    (run_copy / "metrics.csv").write_text(content)
    cli(resume(run_copy), 2, run_copy / "metrics.csv")


def _grown(path, rows: int) -> None:
    """metrics.csv with its last row repeated ``rows`` times more (valid content, epochs counted on)."""
    lines = path.read_text().splitlines(keepends=True)
    epoch, rest = lines[-1].split(",", 1)
    path.write_text("".join(lines) + "".join(f"{int(epoch) + i},{rest}" for i in range(1, rows + 1)))


@pytest.mark.parametrize("command", ["resume", "report"])
def test_huge_metrics_csv_is_refused_before_it_is_read(run_copy, cli, command):
    """200 MB (sparse: no disk written) against the real cap: refused at once, not parsed for
    minutes into gigabytes of rows."""
    path = run_copy / "metrics.csv"
    with path.open("r+b") as f:
        f.truncate(200 << 20)
    cli(COMMANDS[command](run_copy), 2, path, "209,715,200 bytes")


@pytest.mark.parametrize("command", ["resume", "report"])
def test_metrics_csv_over_the_cap_is_refused(run_copy, cli, monkeypatch, command):
    """A well-formed file over a lowered cap (the cap, not the content, refuses it)."""
    import cnnlab.train.rundir as rundir

    path = run_copy / "metrics.csv"
    _grown(path, 2000)
    size = path.stat().st_size
    monkeypatch.setattr(rundir, "MAX_METRICS_BYTES", size - 1)
    cli(COMMANDS[command](run_copy), 2, path, f"{size:,} bytes", f"{size - 1:,}")
    monkeypatch.setattr(rundir, "MAX_METRICS_BYTES", size)
    rows = rundir.RunDir.open(run_copy).read_metrics()
    assert len(rows) == 2001 and rows[-1]["epoch"] == rows[0]["epoch"] + 2000


# -- sanity.json -------------------------------------------------------------------------------
@pytest.mark.parametrize("content", ['{"findings": 5}', '{"findings": [1, "a"]}',
                                     '{"findings": [{"check": 1, "level": "ok", "message": "m"}]}', "[]"])
def test_sanity_json_of_the_wrong_shape_on_report(run_copy, cli, content):
    (run_copy / "sanity.json").write_text(content)
    cli(report(run_copy), 2, run_copy / "sanity.json")


# -- resumes.yaml ------------------------------------------------------------------------------
@pytest.mark.parametrize("content", ["", "- 1\n", "original: 5\nresumes: 7\n", "original: {}\nresumes: {a: 1}\n"])
def test_damaged_resume_history_is_not_overwritten(run_copy, cli, content):
    """Rewriting it would lose the config the run started with."""
    (run_copy / "resumes.yaml").write_text(content)
    cli(resume(run_copy), 2, run_copy / "resumes.yaml")


# -- config.yaml -------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["resume", "evaluate", "export"])
def test_config_yaml_cut_short(run_copy, cli, command):
    """A cut config still parses; without the check its missing sections would be the defaults."""
    _cut(run_copy / "config.yaml", 0.5)
    cli(COMMANDS[command](run_copy), 2, run_copy / "config.yaml")


def test_config_yaml_cut_short_through_the_api(run_copy):
    import cnnlab

    _cut(run_copy / "config.yaml", 0.5)
    with pytest.raises(CheckpointError, match="config.yaml"):
        cnnlab.load_run(run_copy).config


def test_config_yaml_error_is_one_line(run_copy, cli):
    (run_copy / "config.yaml").write_bytes(b"\x00" * 10)
    err = cli(evaluate(run_copy), 2, run_copy / "config.yaml")
    assert len(err.strip().splitlines()) == 1 and "<unicode string>" not in err


# -- checkpoints -------------------------------------------------------------------------------
@pytest.mark.parametrize("state", [{"model": 5}, {"epoch": 1, "step": 5, "model": {}, "input_shape": [1, 28]},
                                   "no input_shape"])
@pytest.mark.parametrize("command", ["resume", "evaluate"])
def test_checkpoint_of_the_wrong_shape(run_copy, cli, state, command):
    path = run_copy / "checkpoints" / ("last.pt" if command == "resume" else "best.pt")
    if state == "no input_shape":
        state = {k: v for k, v in torch.load(path, weights_only=True).items() if k != "input_shape"}
    torch.save({**state, "format": "cnnlab-checkpoint/1"}, path)
    cli(COMMANDS[command](run_copy), 2, path)


def test_checkpoint_with_a_foreign_optimizer_state_on_resume(run_copy, cli):
    path = run_copy / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)
    state["optimizer"] = {"state": {}, "param_groups": [{"params": [0]}]}
    torch.save(state, path)
    cli(resume(run_copy), 2, path)
