"""cnnlab export (issue 17): the ONNX file run by onnxruntime and the TorchScript file match the
PyTorch logits on real test images; safetensors weights reload into a fresh run; metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.data import load_data
from cnnlab.export import read_metadata
from cnnlab.train.experiment import build_experiment
from cnnlab.train.inference import load_trained
from tests.export.conftest import overrides


@pytest.fixture(scope="module")
def reference(pretrained_run):
    """The run's real MNIST test images (uint8, as stored) and cnnlab's own logits for them."""
    trained = load_trained(pretrained_run, "best", "cpu")
    images = load_data(trained.cfg.data, trained.cfg.seed).test.images[:200]
    with torch.no_grad():
        logits = trained.model(trained.preprocess(images))
    return trained, images, logits


def _export(run_dir, tmp_path, fmt, *extra) -> dict:
    out = tmp_path / f"model.{fmt}"
    assert main(["export", str(run_dir), "--format", fmt, "--out", str(out), "--json", *extra]) == 0
    return out


def test_onnx_in_onnxruntime_matches_torch_logits(pretrained_run, reference, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    trained, images, logits = reference
    out = _export(pretrained_run, tmp_path, "onnx")
    summary = json.loads(capsys.readouterr().out)
    assert summary["classes"] == ["0", "1", "2", "3", "4"] and summary["input_shape"] == [1, 28, 28]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"images": images.numpy()})  # uint8 in: preprocessing is in the graph
    np.testing.assert_allclose(got, logits.numpy(), rtol=1e-5, atol=1e-5)
    assert (got.argmax(1) == logits.argmax(1).numpy()).all()
    meta = read_metadata(out)
    assert meta["format"] == "cnnlab-export/1" and "baked into the graph" in meta["preprocessing"]
    assert meta["config"]["model"]["arch"] == trained.cfg.model.arch


def test_torchscript_runs_without_cnnlab_and_matches(pretrained_run, reference, tmp_path):
    _, images, logits = reference
    out = _export(pretrained_run, tmp_path, "torchscript")
    files = {"cnnlab.json": ""}
    module = torch.jit.load(str(out), _extra_files=files)
    torch.testing.assert_close(module(images), logits, rtol=1e-6, atol=1e-6)
    assert json.loads(files["cnnlab.json"])["classes"] == ["0", "1", "2", "3", "4"]


def test_safetensors_reload_into_a_fresh_run(pretrained_run, reference, digits, tmp_path):
    pytest.importorskip("safetensors")
    from safetensors.torch import load_file

    trained, images, logits = reference
    out = _export(pretrained_run, tmp_path, "safetensors")
    tensors = load_file(str(out))
    assert {k for k in tensors if not k.startswith("preprocess.")} == set(trained.model.state_dict())
    assert torch.equal(tensors["preprocess.steps.0.mean"], trained.preprocess.state_dict()["steps.0.mean"])
    assert "preprocess.*" in read_metadata(out)["preprocessing"]
    # the same data (the preprocessing refitted on it), a fresh run started from the file
    cfg = load_config(None, overrides(digits["low"], tmp_path, **{"model.init_from": str(out)}))
    x = build_experiment(cfg)
    assert [r.status for r in x.init_report.rows] == ["loaded"] * 4 and x.init_report.unused == []
    for name, value in x.model.state_dict().items():
        assert torch.equal(value, trained.model.state_dict()[name]), name
    x.model.eval()
    with torch.no_grad():  # refitting sums in another order: equal to float32 rounding
        torch.testing.assert_close(x.model(x.preprocess(images)), logits, rtol=1e-5, atol=1e-5)


def test_fully_convolutional_onnx_scores_larger_images(pretrained_run, reference, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from cnnlab.models.fullconv import fully_convolutional, sliding_reference

    trained, images, logits = reference
    out = _export(pretrained_run, tmp_path, "onnx", "--fully-convolutional")
    meta = read_metadata(out)
    assert meta["stride"] == 4 and meta["window"] == [28, 28] and meta["exact_sliding"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (same,) = session.run(None, {"images": images[:20].numpy()})
    np.testing.assert_allclose(same[:, :, 0, 0], logits[:20].numpy(), rtol=1e-5, atol=1e-5)
    big = torch.nn.functional.pad(images[:4], (4, 8, 0, 4))  # 32 x 40 images
    (scores,) = session.run(None, {"images": big.numpy()})
    with torch.no_grad():
        want = sliding_reference(trained.model, trained.preprocess(big), (28, 28), 4)
    assert scores.shape == (4, 5, 2, 4)
    np.testing.assert_allclose(scores, want.numpy(), rtol=1e-5, atol=1e-5)
    assert fully_convolutional(trained.model).map_size(32, 40) == (2, 4)


def test_bad_requests_exit_2(pretrained_run, tmp_path, capsys):
    assert main(["export", str(pretrained_run), "--format", "safetensors", "--fully-convolutional"]) == 2
    assert "use --format onnx or torchscript" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--format", "onnx"]) == 2
