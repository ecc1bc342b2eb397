"""Faults (full disk, read-only folders, damaged run files, Ctrl-C) and misleading messages and
leftovers of issue 13: one clear line, exit 1 or 2, the run as it was."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from tests.hostile.conftest import small_overrides, snapshot


# -- faults ------------------------------------------------------------------------------------
def test_disk_full_while_writing_a_checkpoint(run_copy, monkeypatch, capsys):
    import shutil

    checkpoints = {name: snapshot(run_copy / "checkpoints")[name] for name in ("last.pt", "best.pt")}

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")
    monkeypatch.setattr(torch, "save", full_disk)
    real_usage = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real_usage(p)._replace(free=0))
    code = main(["train", "--resume", str(run_copy), "--quiet", "train.epochs=2"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "inline_container" not in err
    last = run_copy / "checkpoints" / "last.pt"
    assert "no space left on device" in err and f"last good checkpoint is {last} (epoch 1)" in err
    assert f"--resume {run_copy}" in err
    after = snapshot(run_copy / "checkpoints")
    assert {name: after[name] for name in checkpoints} == checkpoints
    assert not [p for p in (run_copy / "checkpoints").iterdir() if p.suffix == ".part"]


def test_no_space_for_metrics_csv(run_copy, monkeypatch, capsys):
    real_fsync = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith("metrics.csv"):
            raise OSError(28, "No space left on device")
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    before = snapshot(run_copy)
    code = main(["train", "--resume", str(run_copy), "--quiet", "train.epochs=2"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert f"{run_copy / 'metrics.csv'}: No space left on device" in err
    kept = ("metrics.csv", "checkpoints/last.pt", "checkpoints/best.pt")  # the epoch's own writes
    assert {k: snapshot(run_copy)[k] for k in kept} == {k: before[k] for k in kept}


def _read_only(monkeypatch, folder):
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and str(path).startswith(str(folder)):
            return False
        return real_access(path, mode, *args, **kwargs)
    monkeypatch.setattr(os, "access", access)  # tests run as root, for whom chmod does not bite


def test_read_only_run_directory_on_resume(run_copy, monkeypatch, cli):
    _read_only(monkeypatch, run_copy)
    cli(["train", "--resume", run_copy, "--quiet", "train.epochs=2"], 2, run_copy, "not writable")


def test_read_only_run_directory_on_report(run_copy, monkeypatch, cli):
    _read_only(monkeypatch, run_copy)
    cli(["report", run_copy, "--device", "cpu"], 2, run_copy, "--out")


def test_runs_dir_that_is_a_file(tmp_path, small_idx, cli):
    runs = tmp_path / "runs-file"
    runs.write_text("not a folder")
    cli(["train", "--quiet", *small_overrides(small_idx, runs)], 2, "runs_dir", runs)


@pytest.mark.parametrize("content", [b"epoch,step\n1,20\ngarbage,\x00\n", b"\xff\xfe\x00\x80 not text",
                                     b"epoch,step\n1,20,3,4,5,6,7,8,9,10,11\n"])
@pytest.mark.parametrize("command", ["resume", "report"])
def test_damaged_metrics_csv(run_copy, capsys, content, command):
    (run_copy / "metrics.csv").write_bytes(content)
    before = snapshot(run_copy)
    args = (["train", "--resume", str(run_copy), "--quiet", "train.epochs=2"] if command == "resume"
            else ["report", str(run_copy), "--device", "cpu", "--out", str(run_copy.parent / "r.html")])
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and str(run_copy / "metrics.csv") in err
    assert snapshot(run_copy) == before


def test_damaged_sanity_json_on_report(run_copy, cli):
    (run_copy / "sanity.json").write_bytes(b"{not json")
    cli(["report", run_copy, "--device", "cpu", "--out", run_copy.parent / "r.html"], 2, run_copy / "sanity.json")


# -- misleading messages -----------------------------------------------------------------------
class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_malicious_checkpoint_gets_no_weights_only_false_advice(run_copy, cli):
    path = run_copy / "checkpoints" / "best.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "cnnlab-checkpoint/1", "evil": _Evil()}, f, protocol=2)
    err = cli(["evaluate", run_copy, "--device", "cpu"], 2, path, "refused", "system")
    assert "weights_only" not in err and "pwned" not in err


def test_interrupt_says_how_to_resume(run_copy, monkeypatch, capsys):
    from cnnlab.train.trainer import Trainer

    def interrupted(self):
        raise KeyboardInterrupt
    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    checkpoints = snapshot(run_copy / "checkpoints")
    assert main(["train", "--resume", str(run_copy), "--quiet", "train.epochs=3"]) == 130
    err = capsys.readouterr().err
    assert f"interrupted; continue with: cnnlab train --resume {run_copy}" in err
    assert snapshot(run_copy / "checkpoints") == checkpoints


def test_nan_in_the_first_epoch_is_logged_and_names_no_missing_checkpoint(tmp_path, capsys):
    x = np.full((60, 1, 8, 8), 1e30, np.float32)
    x[::2] *= 2
    path = tmp_path / "large.npz"
    np.savez(path, x_train=x, y_train=np.arange(60) % 2, x_test=x[:20], y_test=np.arange(20) % 2)
    runs = tmp_path / "runs"
    code = main(["train", "--quiet", *small_overrides(path, runs, **{
        "data.source": "npz", "data.val_size": 10, "data.normalize": "none", "model": "fc",
        "train.batch_size": 10, "train.epochs": 2})])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "No checkpoint was written" in err and "last.pt" not in err
    (run,) = runs.iterdir()
    assert "loss became nan" in (run / "train.log").read_text()


# -- leftovers ---------------------------------------------------------------------------------
def test_failed_start_leaves_no_run_directory(tmp_path, small_idx, cli, runs_dir):
    cli(["train", "--quiet", *small_overrides(small_idx, runs_dir), "model.arch=conv5-8 nonsense"], 2, "model.arch")
    cli(["train", "--quiet", *small_overrides(tmp_path / "missing", runs_dir)], 2, tmp_path / "missing")


def test_failed_jets_generation_leaves_no_file(tmp_path, cli):
    pytest.importorskip("pythia8mc")
    out = tmp_path / "jets.h5"
    cli(["data", "jets", "--jets", "5", "--out", out, "--quiet", "--pythia", "HardQCD:nonsense = on"], 2,
        "HardQCD:nonsense")
    assert not out.exists()


def test_jets_file_with_no_committed_block_is_made_anew(tmp_path):
    pytest.importorskip("h5py")
    from cnnlab.physics.settings import JetSettings
    from cnnlab.physics.store import JetFile

    out = tmp_path / "jets.h5"
    with JetFile.open(out, JetSettings(pixels=16), 0, {}):
        pass  # killed before its first block
    with JetFile.open(out, JetSettings(pixels=32), 1, {}) as f:  # other settings: not refused
        assert f.n_blocks == 0 and f.h5["images"].shape[-1] == 32
