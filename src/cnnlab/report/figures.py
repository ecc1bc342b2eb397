"""The report's plots, one function per element, each ``fn(run) -> Figure | None`` (None: not
applicable to this run, e.g. ROC for ten classes). Built on matplotlib's object API (no pyplot
state, no display needed). :data:`RUN_FIGURES` lists them in page order."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cnnlab.metrics import auc, roc_curve
from cnnlab.monitor.visual import feature_maps, image_grid, to_display
from cnnlab.monitor.visual import first_layer_filters as first_layer_weights
from cnnlab.report.responses import example_saliency, filter_responses as response_data
from cnnlab.report.collect import RunData

HEALTHY_UPDATE_RATIO = 1e-3


def _axes(width: float = 6.4, height: float = 3.6, ncols: int = 1):
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    for ax in np.atleast_1d(axes):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    return fig, axes


def loss_curves(run: RunData) -> Figure:
    """Data loss and total loss (data + regularisation) per epoch: seeds/000 fig. 2.4 (b),
    "each model has two costs, one with L2 regularization terms and one without them"."""
    fig, ax = _axes()
    epochs, data = run.column("train_loss")
    ax.plot(epochs, data, "o-", label="train data loss")
    t_epochs, total = run.column("train_total_loss")
    if total and not np.allclose(total, data[: len(total)]):
        ax.plot(t_epochs, total, "s--", label="train total loss (with regularisation)")
    else:
        ax.plot([], [], " ", label="total loss = data loss (no regularisation)")
    v_epochs, val = run.column("val_loss")
    if val:
        ax.plot(v_epochs, val, "^-", label="validation loss")
    ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def error_curves(run: RunData) -> Figure:
    """Training vs validation error per epoch (seeds/002: a big gap is overfitting, no gap
    means the model could use more capacity), with the test error of the reported checkpoint."""
    fig, ax = _axes()
    epochs, acc = run.column("train_acc")
    ax.plot(epochs, [100 * (1 - a) for a in acc], "o-", label="train error")
    v_epochs, vacc = run.column("val_acc")
    if vacc:
        ax.plot(v_epochs, [100 * (1 - a) for a in vacc], "^-", label="validation error")
    ax.plot([run.trained.checkpoint_epoch], [100 * run.test.error], "r*", markersize=12,
            label=f"test error {100 * run.test.error:.2f}% (epoch {run.trained.checkpoint_epoch} weights)")
    ax.set(xlabel="epoch", ylabel="error (%)", title="Train vs validation error")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def lr_curve(run: RunData) -> Figure:
    fig, ax = _axes(height=3.0)
    epochs, lr = run.column("lr")
    ax.plot(epochs, lr, "o-")
    if lr and min(lr) > 0 and max(lr) / min(lr) > 10:
        ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="learning rate (end of epoch)", title="Learning rate")
    ax.grid(alpha=0.3)
    return fig


def _layer_series(run: RunData, key: str) -> dict[str, tuple[list[int], list[float]]]:
    series: dict[str, tuple[list[int], list[float]]] = {}
    for row in run.layers:
        value = row.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            epochs, values = series.setdefault(row["layer"], ([], []))
            epochs.append(row["epoch"])
            values.append(float(value))
    return series


def gradient_norms(run: RunData) -> Figure | None:
    """Per-layer gradient norm ||dL/dW|| and update/weight ratio per epoch (layers.csv);
    vanishing gradients show as norms shrinking toward the input (seeds/002), a healthy ratio
    sits near 1e-3 (cs231n)."""
    grads, ratios = _layer_series(run, "grad_norm"), _layer_series(run, "update_ratio")
    if not grads:
        return None
    fig, (left, right) = _axes(width=10, height=3.8, ncols=2)
    for name, (epochs, values) in grads.items():
        left.plot(epochs, values, "o-", label=name)
    left.set(xlabel="epoch", ylabel="||dL/dW|| (mean over the epoch)", yscale="log",
             title="Gradient norm per layer")
    for name, (epochs, values) in ratios.items():
        if all(v > 0 for v in values):
            right.plot(epochs, values, "o-", label=name)
    right.axhline(HEALTHY_UPDATE_RATIO, color="grey", linestyle="--", label="1e-3 (healthy)")
    right.set(xlabel="epoch", ylabel="||dW|| / ||W|| per step", yscale="log", title="Update / weight ratio")
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    return fig


def unit_health(run: RunData) -> Figure | None:
    """Dead ReLU fraction and saturated tanh/sigmoid fraction per layer and epoch."""
    dead, saturated = _layer_series(run, "dead_fraction"), _layer_series(run, "saturated_fraction")
    if not dead and not saturated:
        return None
    fig, ax = _axes(height=3.2)
    for name, (epochs, values) in {**dead, **saturated}.items():
        kind = "dead" if name in dead else "saturated"
        ax.plot(epochs, [100 * v for v in values], "o-", label=f"{name} {kind}")
    ax.set(xlabel="epoch", ylabel="% of units / outputs", title="Dead ReLUs and saturated units",
           ylim=(-2, 102))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def first_layer_filters(run: RunData) -> Figure | None:
    """First-layer weights as images; trained filters should look like edge and blob detectors
    (seeds/004), noisy ones hint at too little training or too high a learning rate."""
    # the network's input: the image, or what whitening/PCA turned it into
    found = first_layer_weights(run.trained.model, run.trained.preprocess.output_shape(run.trained.input_shape))
    if found is None:
        return None
    name, weights = found
    fig, ax = _axes(width=5, height=5)
    ax.imshow(image_grid(to_display(weights)), interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"{name}: {weights.shape[0]} filters of {'x'.join(map(str, weights.shape[1:]))} "
                 "(each scaled to its own range)", fontsize=9)
    return fig


def feature_map_grid(run: RunData, channels: int = 12) -> Figure | None:
    """One test image and its feature maps through the network's conv stages (seeds/004)."""
    x = run.trained.preprocess(run.test_images[:1].to(run.trained.device))
    maps = feature_maps(run.trained.model, x)
    if not maps:
        return None
    rows = len(maps) + 1
    fig = Figure(figsize=(1.1 * (channels + 1), 1.25 * rows), layout="constrained")
    axes = fig.subplots(rows, channels + 1, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    label = run.classes[int(run.test.labels[0])]
    axes[0, 0].imshow(to_display(run.test_images[:1])[0], interpolation="nearest")
    axes[0, 0].set_title(f"input ({label})", fontsize=8)
    for r, (name, fmap) in enumerate(maps, start=1):
        axes[r, 0].text(0.5, 0.5, f"{name}\n{fmap.shape[0]}x{fmap.shape[1]}x{fmap.shape[2]}",
                        ha="center", va="center", fontsize=8)
        for c in range(min(channels, fmap.shape[0])):
            axes[r, c + 1].imshow(fmap[c].numpy(), cmap="viridis", interpolation="nearest")
    return fig


def filter_responses(run: RunData) -> Figure | None:
    """Per conv layer, its most active filters: the input that maximises each filter's mean
    activation (gradient ascent from seeded noise, L2 decay and jitter; Yosinski et al. 2015) and
    the 9 training patches, each the unit's receptive field, that activate it most (seeds/004)."""
    found = response_data(run)
    if not found:
        return None
    per_layer = max(len(layer["filters"]) for layer in found)
    fig = Figure(figsize=(2.0 * per_layer * 2, 2.1 * len(found)), layout="constrained")
    panels = fig.subfigures(len(found), 2 * per_layer, squeeze=False)
    for r, layer in enumerate(found):
        for c in range(2 * per_layer):
            panels[r, c].subplots().set_axis_off()
        for c, item in enumerate(layer["filters"]):
            left, right = panels[r, 2 * c].axes[0], panels[r, 2 * c + 1].axes[0]
            left.imshow(to_display(item["maximizer"][None])[0], interpolation="nearest")
            left.set_title(f"{layer['name']} filter {item['filter']}\nmax input", fontsize=7)
            right.imshow(image_grid(to_display(item["patches"]), columns=3), interpolation="nearest")
            right.set_title(f"top 9 patches ({item['patches'].shape[-1]}px field)", fontsize=7)
    return fig


def saliency_map(run: RunData) -> Figure | None:
    """The example test image (the feature maps' one) and its saliency, |d score / d pixel| maxed
    over channels for the predicted class (Simonyan et al. 2014): the pixels the score depends on."""
    found = example_saliency(run)
    if found is None:
        return None
    smap, label = found
    fig, axes = _axes(width=6, height=3.2, ncols=2)
    axes[0].imshow(to_display(run.test_images[:1])[0], interpolation="nearest")
    axes[0].set_title(f"test image ({run.classes[int(run.test.labels[0])]})", fontsize=9)
    axes[1].imshow(smap.numpy(), cmap="hot", interpolation="nearest")
    axes[1].set_title(f"saliency for '{run.classes[label]}'", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    return fig


def confusion_matrix(run: RunData) -> Figure:
    n = len(run.classes)
    cm = run.test.confusion_matrix(n).numpy()
    size = min(10, 2.5 + 0.45 * n)
    fig, ax = _axes(width=size + 1, height=size)
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ticks = range(n)
    ax.set_xticks(ticks, run.classes, rotation=45 if n > 4 else 0, fontsize=8)
    ax.set_yticks(ticks, run.classes, fontsize=8)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set(xlabel="predicted class", ylabel="true class",
           title=f"Confusion matrix (test, {len(run.test.labels)} images)")
    return fig


def confident_mistakes(run: RunData, count: int = 16) -> Figure | None:
    """The misclassified test images the network was most sure about."""
    probs, labels = run.test.probabilities, run.test.labels
    confidence, predicted = probs.max(1)
    wrong = (predicted != labels).nonzero().flatten()
    if len(wrong) == 0:
        return None
    order = wrong[confidence[wrong].argsort(descending=True)][:count]
    images = to_display(run.test_images[order])
    columns = min(8, len(order))
    rows = math.ceil(len(order) / columns)
    fig = Figure(figsize=(1.5 * columns, 1.75 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, i, image in zip(axes.flat, order.tolist(), images):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(f"{run.classes[int(labels[i])]} -> {run.classes[int(predicted[i])]}\n"
                     f"p={float(confidence[i]):.3f}", fontsize=8)
    fig.suptitle("Most confidently wrong test images (true -> predicted, confidence)", fontsize=10)
    return fig


def roc(run: RunData) -> Figure | None:
    """Two-class problems: ROC of the class-1 probability, with its area (cnnlab.metrics)."""
    if len(run.classes) != 2:
        return None
    labels = run.test.labels.numpy()
    if labels.min() == labels.max():
        return None
    fpr, tpr, _ = roc_curve(labels == 1, run.test.probabilities[:, 1].numpy())
    area = auc(fpr, tpr)
    run.extra["auc"] = area
    fig, ax = _axes(width=4.8, height=4.5)
    ax.plot(fpr, tpr, label=f"AUC = {area:.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set(xlabel=f"false positive rate ({run.classes[0]} called {run.classes[1]})",
           ylabel=f"true positive rate ({run.classes[1]})", title="ROC curve (test)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def physics_rejection(run: RunData) -> Figure | None:
    """Two-class problems with per-example features (jets): background rejection 1/eff vs signal
    efficiency of the network and of the classic discriminants (multiplicity, width, mass) on
    the same test examples, with each AUC; the physicists' way of judging a tagger."""
    from cnnlab.physics.metrics import physics_report

    if len(run.classes) != 2 or not run.test_features:
        return None
    report = physics_report(run.test.labels.numpy(), run.test.probabilities.numpy(), run.classes,
                            run.test_features)
    if len(report["taggers"]) < 2:
        return None
    if "margin" in report:
        run.extra["auc_margin_over_best_classic"] = report["margin"]["auc"]
    fig, ax = _axes(width=5.6, height=4.4)
    for name, m in report["taggers"].items():
        eff_s = np.array(m["roc"]["quark_efficiency"])
        eff_b = np.array(m["roc"]["gluon_efficiency"])
        keep = eff_b > 0
        ax.plot(eff_s[keep], 1 / eff_b[keep], marker="o", ms=3, lw=2 if name == "CNN" else 1,
                label=f"{name}: AUC {m['auc']:.3f}, rejection@50% {m['gluon_rejection_at_q50']:.1f}")
    ax.set_yscale("log")
    ax.set(xlabel=f"{report['signal_class']} efficiency",
           ylabel=f"{report['background_class']} rejection (1/efficiency)",
           title=f"Tagger comparison, {report['test_examples']} test examples")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


def pretrain_monitors(run: RunData) -> Figure | None:
    """The RBMs of DBN pre-training per epoch (epoch 0: before training): reconstruction error
    and pseudo-likelihood on the monitored examples (pretrain.csv)."""
    rows = run.extra.get("pretrain")
    if not rows:
        return None
    fig, (err_ax, pl_ax) = _axes(width=9, ncols=2)
    for rbm in sorted({r["rbm"] for r in rows}):
        own = [r for r in rows if r["rbm"] == rbm]
        label = f"rbm{rbm} ({own[0]['layer']}: {own[0]['visible']} x {own[0]['hidden']})"
        err_ax.plot([r["epoch"] for r in own], [r["recon_error"] for r in own], marker="o", label=label)
        pl = [(r["epoch"], r["pseudo_likelihood"]) for r in own if isinstance(r["pseudo_likelihood"], float)]
        if pl:
            pl_ax.plot(*zip(*pl), marker="o", label=label)
    for ax, what in ((err_ax, "reconstruction error (sum of squares per example)"),
                     (pl_ax, "log pseudo-likelihood per example")):
        ax.set_xlabel("RBM epoch")
        ax.set_title(what, fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def rbm_samples(run: RunData) -> Figure | None:
    """The first RBM's Gibbs chains (rows), started at training examples, after 0, 1, 10, 100
    and 1000 steps (columns): ``E[v | h]`` shown as images of the network's input shape."""
    stored = run.extra.get("pretrain_samples")
    shape = run.trained.preprocess.output_shape(run.trained.input_shape)
    if not stored or stored["samples"].shape[-1] != math.prod(shape):
        return None
    samples, steps = stored["samples"], stored["steps"]
    chains = samples.reshape(-1, *shape)
    fig, ax = _axes(width=1.1 * len(steps) + 1, height=1.1 * samples.shape[0] + 0.5)
    ax.imshow(image_grid(to_display(chains), columns=len(steps)), interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"Gibbs steps: {', '.join(map(str, steps))} (left to right)", fontsize=9)
    return fig


@dataclass(frozen=True)
class FigureSpec:
    key: str
    title: str
    make: Callable[[RunData], Figure | None]
    missing: str  # why it can be absent


RUN_FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("loss", "Loss per epoch", loss_curves, ""),
    FigureSpec("error", "Train vs validation error", error_curves, ""),
    FigureSpec("lr", "Learning rate", lr_curve, ""),
    FigureSpec("gradients", "Per-layer gradient norms and update ratios", gradient_norms,
               "no layers.csv in this run (monitor.layer_stats was off)"),
    FigureSpec("units", "Dead and saturated units", unit_health,
               "no ReLU/tanh/sigmoid statistics in layers.csv"),
    FigureSpec("filters", "First-layer filters", first_layer_filters,
               "the first layer is neither a conv layer nor an fc layer on the image"),
    FigureSpec("feature_maps", "Feature maps of one test image", feature_map_grid,
               "the network has no convolutional feature maps"),
    FigureSpec("filter_responses", "What filters respond to: maximising inputs and top-9 training patches",
               filter_responses, "the network has no conv layers"),
    FigureSpec("saliency", "Saliency map of the example image", saliency_map,
               "the first test image's class score has no gradient"),
    FigureSpec("pretrain", "DBN pre-training: the RBMs' monitors", pretrain_monitors,
               "no pre-training in this run (pretrain.method=none)"),
    FigureSpec("rbm_samples", "Samples of the first RBM: Gibbs chains from training examples", rbm_samples,
               "no pre-training in this run, or its first RBM is not on the input image"),
    FigureSpec("confusion", "Confusion matrix", confusion_matrix, ""),
    FigureSpec("mistakes", "Most confidently wrong test images", confident_mistakes,
               "no test image is misclassified"),
    FigureSpec("roc", "ROC curve", roc, "ROC needs a two-class problem"),
    FigureSpec("physics", "Rejection vs efficiency: network vs classic discriminants", physics_rejection,
               "needs a two-class dataset with per-example features (the jets sources)"),
)


def error_comparison(runs: list[RunData]) -> Figure:
    """Several runs: validation (solid) and training (dashed) error per epoch on one plot, as
    seeds/000 compares its CIFAR-10 models (figs. 2.4 (a), 2.8)."""
    fig, ax = _axes(width=8, height=4.2)
    for i, run in enumerate(runs):
        color = f"C{i % 10}"
        v_epochs, vacc = run.column("val_acc")
        epochs, acc = run.column("train_acc")
        if vacc:
            ax.plot(v_epochs, [100 * (1 - a) for a in vacc], "-", color=color, label=f"{run.name} validation")
        ax.plot(epochs, [100 * (1 - a) for a in acc], "--", color=color, alpha=0.7, label=f"{run.name} train")
    ax.set(xlabel="epoch", ylabel="error (%)", title="Error per epoch, all runs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig
