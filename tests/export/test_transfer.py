"""model.init_from and model.freeze (issue 17): strict matching by layer name and shape, the
report table, frozen layers without gradient, update or weight decay, and the resume rules."""

from __future__ import annotations

import pytest
import torch

from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.errors import CheckpointError, ConfigError
from cnnlab.train import resume_run, start_run
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.experiment import build_experiment
from tests.export.conftest import QUIET, overrides


def _best_weights(run_dir) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "best.pt")["model"]


def test_new_head_for_other_classes_loads_the_body_and_reports_the_head(digits, pretrained_run, tmp_path):
    """Same 5 classes count here, so use another head width to force a mismatch: fc64 vs fc32."""
    cfg = load_config(None, overrides(digits["high"], tmp_path, **{"model.init_from": str(pretrained_run)}))
    x = build_experiment(cfg)
    source = _best_weights(pretrained_run)
    for name, value in x.model.state_dict().items():
        assert torch.equal(value, source[name]), name  # 5 -> 5 classes: every layer loads
    assert [r.status for r in x.init_report.rows] == ["loaded"] * 4

    wider = load_config(None, overrides(digits["high"], tmp_path, **{
        "model.init_from": str(pretrained_run), "model.arch": "'conv5-8 relu pool2 conv5-16 relu pool2 fc64 relu fc'"}))
    x = build_experiment(wider)
    status = {r.layer: r.status for r in x.init_report.rows}
    assert status == {"conv1": "loaded", "conv2": "loaded", "fc1": "skipped", "fc2": "skipped"}
    assert torch.equal(x.model.conv2.weight, source["conv2.weight"])
    assert not torch.equal(x.model.fc1.weight[:32], source["fc1.weight"])  # never cut to fit
    lines = "\n".join(x.init_report.lines())
    assert "fc1" in lines and "64x256" in lines and "source 32x256" in lines
    assert "2 layers loaded, 2 skipped (shape differs), 0 new" in lines


def test_ten_class_head_is_new_size_and_the_table_is_in_train_log(pretrained_run, tiny_mnist_dir, tmp_path):
    """The common case: a source with 5 classes, a task with 10."""
    from tests.helpers import tiny_overrides

    cfg = load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path, **{
        "model.arch": "'conv5-8 relu pool2 conv5-16 relu pool2 fc32 relu fc'", "train.epochs": 1,
        "model.init_from": str(pretrained_run / "checkpoints" / "last.pt"),
        "monitor.sanity_at_start": "false"}))
    trainer = start_run(cfg, **QUIET)
    rows = {r.layer: (r.status, r.shapes, r.source_shapes) for r in trainer.experiment.init_report.rows}
    assert rows["fc2"] == ("skipped", "10x32, 10", "5x32, 5")
    assert rows["fc1"][0] == "loaded"
    log = trainer.run.log_path.read_text()
    assert "init_from" in log and "fc2" in log and "3 layers loaded, 1 skipped" in log


def test_frozen_layers_get_no_gradient_no_update_and_no_weight_decay(digits, pretrained_run, tmp_path):
    cfg = load_config(None, overrides(digits["high"], tmp_path, **{
        "model.init_from": str(pretrained_run), "model.freeze": "[body]", "optim.l2": 0.01,
        "train.epochs": 1, "optim.layer_lr": "{-1: 2.0}"}))
    trainer = start_run(cfg, **QUIET)
    x = trainer.experiment
    assert x.frozen == ["conv1", "conv2", "fc1"]
    trained = {n for g in x.optimizer.param_groups for n in g["names"]}
    assert trained == {"fc2.weight", "fc2.bias"}
    # layer indices count frozen layers: -1 is still the head, with its multiplier
    assert [g["lr_mult"] for g in x.optimizer.param_groups] == [2.0]
    from cnnlab.optim import regularization

    penalty = regularization(cfg.optim, x.model)
    assert penalty.item() == pytest.approx(0.5 * 0.01 * x.model.fc2.weight.pow(2).sum().item(), rel=1e-5)
    before = {k: v.clone() for k, v in x.model.state_dict().items()}
    trainer.fit()
    after = _best_weights(trainer.run.path)
    for name in ("conv1.weight", "conv1.bias", "conv2.weight", "fc1.weight", "fc1.bias"):
        assert torch.equal(after[name], before[name]), name
    assert not torch.equal(after["fc2.weight"], before["fc2.weight"])
    assert all(p.grad is None for n, p in x.model.named_parameters() if not n.startswith("fc2"))
    assert "frozen (no gradient, no weight decay): conv1, conv2, fc1" in trainer.run.log_path.read_text()


@pytest.mark.parametrize("extra, error, message", [
    ({"model.init_from": "/no/such/run"}, ConfigError, "no such run directory or file"),
    ({"model.freeze": "[conv9]"}, ConfigError, "model.freeze: no layer 'conv9'"),
    ({"model.freeze": "['*']"}, ConfigError, "freezes every layer"),
    ({"model.arch": "mlp"}, CheckpointError, "no layer of this network matches"),
])
def test_bad_sources_and_patterns_name_the_key(digits, pretrained_run, tmp_path, extra, error, message):
    extra = {"model.init_from": str(pretrained_run), **extra}
    cfg = load_config(None, overrides(digits["high"], tmp_path, **extra))
    with pytest.raises(error, match=message.replace("*", r"\*")):
        build_experiment(cfg)


def test_resume_does_not_read_the_source_and_refuses_to_change_it(digits, pretrained_run, tmp_path, capsys):
    import shutil

    source = tmp_path / "source"
    shutil.copytree(pretrained_run, source)
    cfg = load_config(None, overrides(digits["high"], tmp_path / "runs", **{
        "model.init_from": str(source), "model.freeze": "[conv1]", "train.epochs": 1}))
    run_dir = start_run(cfg, **QUIET).fit().run_dir
    shutil.rmtree(source)  # the resume must not need it
    trainer = resume_run(run_dir, ["train.epochs=2"], **QUIET)
    assert trainer.experiment.init_report is None and trainer.experiment.frozen == ["conv1"]
    trainer.fit()
    for change, why in (("model.init_from=/elsewhere", "init_from only sets where a new run starts"),
                        ("model.freeze=[]", "start a new run with model.init_from=THIS_RUN")):
        assert main(["train", "--resume", str(run_dir), "--quiet", change]) == 2
        assert why in capsys.readouterr().err
