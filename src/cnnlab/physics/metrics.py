"""How physicists judge a quark/gluon tagger, and the classic discriminants it must beat.

For a score s (higher = more quark-like) and a cut t, the quark efficiency is
eps_q(t) = P(s > t | quark) and the gluon efficiency (mistag rate) eps_g(t) = P(s > t | gluon);
the ROC curve is eps_g against eps_q (cnnlab.metrics.roc_curve with quark = positive), AUC its
area, and the gluon rejection at 50% quark efficiency is 1 / eps_g(t) where eps_q(t) = 0.5
(linear interpolation along the ROC curve). Error rate: the CNN's at its argmax; for a single
variable, that of its best cut (chosen on the same test jets, one parameter).

Classic discriminants (Gallicchio & Schwartz, PRL 107 (2011) 172001): constituent
multiplicity, girth ("width") and jet mass, each larger for gluons, so the quark score is minus
the variable. All are evaluated on the same test jets as the CNN.
"""

from __future__ import annotations

import numpy as np

from cnnlab.metrics import auc, roc_curve

#: discriminant name -> (per-jet feature, sign turning it into a quark-like score)
DISCRIMINANTS = {"multiplicity": ("multiplicity", -1.0), "width (girth)": ("girth", -1.0),
                 "mass": ("mass", -1.0)}
#: quark efficiencies at which the ROC curve is reported
ROC_POINTS = np.round(np.linspace(0.05, 1.0, 20), 2)


def efficiency_at(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """eps_g at eps_q = target, interpolated linearly along the ROC curve."""
    return float(np.interp(target, tpr, fpr))


def best_cut_error(labels: np.ndarray, fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Lowest error over all cuts: (n_q (1 - eps_q) + n_g eps_g) / n."""
    n_q = labels.sum()
    n_g = len(labels) - n_q
    return float(np.min(n_q * (1 - tpr) + n_g * fpr) / len(labels))


def tagger_metrics(labels: np.ndarray, scores: np.ndarray, error: float | None = None) -> dict:
    """ROC, AUC, rejection at 50% and 1/eps_g at other points, error (best cut if not given)."""
    labels = np.asarray(labels).astype(bool)
    fpr, tpr, _ = roc_curve(labels, scores)
    eps_g50 = efficiency_at(fpr, tpr, 0.5)
    return {
        "auc": auc(fpr, tpr),
        "gluon_efficiency_at_q50": eps_g50,
        "gluon_rejection_at_q50": (1.0 / eps_g50) if eps_g50 > 0 else float("inf"),
        "error": best_cut_error(labels, fpr, tpr) if error is None else float(error),
        "error_kind": "best cut" if error is None else "argmax",
        "roc": {"quark_efficiency": ROC_POINTS.tolist(),
                "gluon_efficiency": [efficiency_at(fpr, tpr, float(q)) for q in ROC_POINTS]},
    }


def physics_report(labels, probabilities, classes: list[str], features: dict | None = None) -> dict:
    """Physics metrics of a two-class classifier and, with per-jet ``features``, the classic
    discriminants on the same examples. ``probabilities`` is N x 2; class 1 is "signal" (the
    quark for jets). Returns plain data with a ``table`` of rows, best AUC first among the
    classic ones, and the CNN's margin over the best of them."""
    labels = np.asarray(labels).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] != 2:
        raise ValueError(f"physics metrics need N x 2 probabilities, got {probabilities.shape}")
    argmax_error = float((probabilities.argmax(1) != labels).mean())
    # log-odds, not p: same ordering, and no ties from saturated probabilities
    score = np.log(np.clip(probabilities[:, 1], 1e-300, None)) - np.log(np.clip(probabilities[:, 0], 1e-300, None))
    rows = {"CNN": tagger_metrics(labels, score, argmax_error)}
    for name, (key, sign) in DISCRIMINANTS.items():
        # features must be row-for-row with the labels (the source's test split, untouched)
        if features is not None and key in features and len(features[key]) == len(labels):
            rows[name] = tagger_metrics(labels, sign * np.asarray(features[key], dtype=np.float64))
    classic = {k: v for k, v in rows.items() if k != "CNN"}
    report = {"signal_class": classes[1], "background_class": classes[0],
              "test_examples": int(len(labels)), "signal_fraction": float(labels.mean()),
              "taggers": rows}
    if classic:
        best = max(classic, key=lambda k: classic[k]["auc"])
        cnn = rows["CNN"]
        report["best_classic"] = best
        report["margin"] = {
            "auc": cnn["auc"] - classic[best]["auc"],
            "gluon_rejection_ratio_at_q50": cnn["gluon_rejection_at_q50"] / classic[best]["gluon_rejection_at_q50"],
            "beats_best_classic": bool(cnn["auc"] > classic[best]["auc"]),
        }
    return report


def format_report(report: dict) -> str:
    """The ROC/AUC table as text (also valid Markdown)."""
    s, b = report["signal_class"], report["background_class"]
    lines = [f"physics metrics on {report['test_examples']} test examples "
             f"({100 * report['signal_fraction']:.1f}% {s}; signal = {s}):",
             f"| tagger | AUC | {b} eff. at 50% {s} eff. | {b} rejection at 50% | error |",
             "|---|---|---|---|---|"]
    for name, m in report["taggers"].items():
        lines.append(f"| {name} | {m['auc']:.4f} | {m['gluon_efficiency_at_q50']:.4f} | "
                     f"{m['gluon_rejection_at_q50']:.2f} | {100 * m['error']:.2f}% ({m['error_kind']}) |")
    if "margin" in report:
        m = report["margin"]
        verdict = "beats" if m["beats_best_classic"] else "does NOT beat"
        lines.append(f"CNN {verdict} the best classic discriminant ({report['best_classic']}): "
                     f"AUC {m['auc']:+.4f}, {b} rejection at 50% x{m['gluon_rejection_ratio_at_q50']:.3f}")
    return "\n".join(lines)
