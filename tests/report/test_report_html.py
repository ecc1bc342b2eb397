"""`cnnlab report`: a self-contained HTML page whose plots show the run's own numbers
(metrics.csv, layers.csv, test predictions), every embedded image decodes and is not blank."""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.train import start_run
from tests.helpers import idx_bytes, tiny_overrides, write_idx_subset

_RUNS: dict[str, Path] = {}


def write_two_class_subset(folder: Path, n_train: int, n_test: int) -> None:
    """MNIST zeros and ones only (labels 0/1: a two-class problem for the ROC curve)."""
    from cnnlab.data.idx import read_idx
    from cnnlab.data.sources import BUNDLED_DIR

    src = BUNDLED_DIR / "mnist"
    for split, count in (("train", n_train), ("t10k", n_test)):
        images = read_idx(src / f"{split}-images-idx3-ubyte.gz")
        labels = read_idx(src / f"{split}-labels-idx1-ubyte.gz")
        keep = np.flatnonzero(labels <= 1)[:count]
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images[keep])))
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels[keep])))


def trained_run(tmp_path_factory, key: str) -> Path:
    """A finished run, trained once per session (the browser test shares it):
    ``lenet``: LeNet-5 on 10 MNIST classes, 2 epochs; ``binary``: an fc-relu net with L2 on
    MNIST zeros vs ones, 2 epochs (so the total loss differs from the data loss, and ROC applies)."""
    if key in _RUNS:
        return _RUNS[key]
    root = tmp_path_factory.mktemp(f"report-{key}")
    if key == "lenet":
        write_idx_subset(root, n_train=700, n_test=200)
        overrides = tiny_overrides(root, root / "runs", **{"data.val_size": 200, "name": "lenet"})
    else:
        write_two_class_subset(root, n_train=400, n_test=200)
        overrides = tiny_overrides(root, root / "runs", **{"data.val_size": 100, "name": "binary",
                                                           "model.arch": "fc32 relu fc", "optim.l2": 0.01})
    trainer = start_run(load_config(None, overrides + ["train.log_every=4"]), show_progress=False,
                        echo=lambda line: None)
    trainer.fit()
    _RUNS[key] = trainer.run.path
    return _RUNS[key]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {key: trained_run(tmp_path_factory, key) for key in ("lenet", "binary")}


@pytest.fixture(scope="module")
def collected(runs):
    from cnnlab.report import collect_run

    return {key: collect_run(path, device="cpu") for key, path in runs.items()}


def embedded_images(html: str) -> list[np.ndarray]:
    from PIL import Image

    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(u))).convert("RGB")) for u in uris]


def blank(image: np.ndarray) -> bool:
    """True when one colour covers (almost) the whole image."""
    _, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
    return counts.max() / counts.sum() > 0.995


# -- the page ---------------------------------------------------------------------------------
def test_report_of_two_runs_has_every_element_and_only_valid_images(runs, tmp_path, capsys):
    out = tmp_path / "sub" / "all.html"
    assert main(["report", str(runs["lenet"]), str(runs["binary"]), "--out", str(out), "--device", "cpu",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    html = out.read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained
    for title in ("All results", "Loss per epoch", "Train vs validation error", "Learning rate",
                  "Per-layer gradient norms and update ratios", "Dead and saturated units",
                  "First-layer filters", "Feature maps of one test image", "Confusion matrix",
                  "Most confidently wrong test images", "ROC curve", "Sanity checks at the start",
                  "What filters respond to: maximising inputs and top-9 training patches",
                  "Saliency map of the example image"):
        assert title in html
    images = embedded_images(html)
    # lenet: 11 of the 12 plots (no ROC); binary: ROC but no feature maps and no filter responses
    # (an fc net), and the mistakes only if it makes any (zeros vs ones is easy); + the comparison plot
    binary_mistakes = result["runs"][1]["test_error"] > 0
    assert len(images) == result["figures"] == 11 + 9 + binary_mistakes + 1
    for image in images:
        assert image.shape[0] > 100 and image.shape[1] > 100
        assert not blank(image)
    assert "not shown (the network has no convolutional feature maps)" in html
    assert "not shown (the network has no conv layers)" in html
    assert "not shown (ROC needs a two-class problem)" in html
    assert ("not shown (no test image is misclassified)" in html) != binary_mistakes
    # the "All results" table: one row per run with the test error of `cnnlab evaluate`
    assert [r["run"] for r in result["runs"]] == [runs["lenet"].name, runs["binary"].name]
    for row, key in zip(result["runs"], ("lenet", "binary")):
        assert main(["evaluate", str(runs[key]), "--json", "--device", "cpu"]) == 0
        evaluated = json.loads(capsys.readouterr().out)
        assert row["test_error"] == pytest.approx(evaluated["test_error"])
        assert f"{100 * row['test_error']:.2f}" in html
    assert 0.5 < result["runs"][1]["auc"] <= 1.0


def test_single_run_report_defaults_to_the_run_directory(runs, capsys):
    assert main(["report", str(runs["lenet"]), "--device", "cpu"]) == 0
    assert f"wrote {runs['lenet'] / 'report.html'}" in capsys.readouterr().out
    html = (runs["lenet"] / "report.html").read_text()
    assert "Error per epoch, all runs" not in html  # the comparison needs several runs
    assert all(not blank(image) for image in embedded_images(html))


# -- the plots show the run's numbers ---------------------------------------------------------
def line(ax, label_part: str):
    return next(l for l in ax.get_lines() if label_part in str(l.get_label()))


def test_loss_plot_shows_data_and_total_loss_from_metrics_csv(collected):
    from cnnlab.report.figures import loss_curves

    run = collected["binary"]
    ax = loss_curves(run).axes[0]
    rows = run.metrics
    np.testing.assert_allclose(line(ax, "data loss").get_ydata(), [r["train_loss"] for r in rows])
    np.testing.assert_allclose(line(ax, "total loss").get_ydata(), [r["train_total_loss"] for r in rows])
    assert all(r["train_total_loss"] > r["train_loss"] for r in rows)  # l2 = 0.01 adds a penalty
    np.testing.assert_allclose(line(ax, "validation").get_ydata(), [r["val_loss"] for r in rows])


def test_error_and_lr_plots_show_metrics_csv(collected):
    from cnnlab.report.figures import error_curves, lr_curve

    run = collected["lenet"]
    ax = error_curves(run).axes[0]
    np.testing.assert_allclose(line(ax, "train error").get_ydata(), [100 * (1 - r["train_acc"]) for r in run.metrics])
    np.testing.assert_allclose(line(ax, "validation error").get_ydata(), [100 * (1 - r["val_acc"]) for r in run.metrics])
    np.testing.assert_allclose(lr_curve(run).axes[0].get_lines()[0].get_ydata(), [r["lr"] for r in run.metrics])


def test_gradient_plot_shows_layers_csv(collected):
    from cnnlab.monitor.layerlog import read_layers
    from cnnlab.report.figures import gradient_norms

    run = collected["lenet"]
    rows = read_layers(run.path / "layers.csv")
    grads_ax, ratio_ax = gradient_norms(run).axes[:2]
    for name in ("conv1", "conv2", "fc1", "fc2"):
        expected = [r["grad_norm"] for r in rows if r["layer"] == name]
        assert len(expected) == 2
        np.testing.assert_allclose(line(grads_ax, name).get_ydata(), expected)
        np.testing.assert_allclose(line(ratio_ax, name).get_ydata(),
                                   [r["update_ratio"] for r in rows if r["layer"] == name])


def test_confusion_matrix_and_mistakes_follow_the_test_predictions(collected):
    from cnnlab.report.figures import confident_mistakes, confusion_matrix

    run = collected["lenet"]
    probs, labels = run.test.probabilities.numpy(), run.test.labels.numpy()
    pred = probs.argmax(1)
    counts = np.zeros((10, 10), int)
    np.add.at(counts, (labels, pred), 1)
    texts = [int(t.get_text()) for t in confusion_matrix(run).axes[0].texts]
    assert texts == counts.ravel().tolist()
    wrong = np.flatnonzero(pred != labels)
    top = wrong[np.argsort(-probs[wrong].max(1), kind="stable")][:16]
    titles = [ax.get_title() for ax in confident_mistakes(run).axes if ax.get_title()]
    assert titles == [f"{labels[i]} -> {pred[i]}\np={probs[i].max():.3f}" for i in top]


def test_roc_auc_equals_the_mann_whitney_statistic(collected):
    from scipy.stats import mannwhitneyu

    from cnnlab.report.figures import roc

    run = collected["binary"]
    fig = roc(run)
    scores = run.test.probabilities[:, 1].numpy()
    labels = run.test.labels.numpy()
    u = mannwhitneyu(scores[labels == 1], scores[labels == 0]).statistic
    expected = u / ((labels == 1).sum() * (labels == 0).sum())
    assert run.extra["auc"] == pytest.approx(expected, abs=1e-9)
    assert f"AUC = {expected:.4f}" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert roc(collected["lenet"]) is None


def test_first_layer_filters_of_an_fc_net_are_its_rows_as_images(collected):
    from cnnlab.monitor.visual import first_layer_filters

    name, weights = first_layer_filters(collected["binary"].trained.model, (1, 28, 28))
    assert name == "fc1" and tuple(weights.shape) == (32, 1, 28, 28)
    fc1 = collected["binary"].trained.model.state_dict()["fc1.weight"]
    assert torch.equal(weights.reshape(32, -1), fc1)


# -- errors -----------------------------------------------------------------------------------
def test_report_errors_name_the_directory(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    from cnnlab.train.rundir import RunDir

    empty = RunDir.create(tmp_path, "empty", "name: empty\n")
    assert main(["report", str(empty.path)]) == 2
    assert "no finished epoch yet" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "not a cnnlab run directory" in capsys.readouterr().err
