"""Physics metrics against brute-force references."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.physics.metrics import best_cut_error, format_report, physics_report, tagger_metrics
from cnnlab.metrics import roc_curve


def mann_whitney_auc(labels, scores):
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size


def test_tagger_metrics_against_references():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 600)
    scores = rng.normal(labels * 1.0, 1.0).round(1)  # rounding makes ties
    m = tagger_metrics(labels, scores)
    assert m["auc"] == pytest.approx(mann_whitney_auc(labels, scores), abs=1e-12)
    # brute force best cut error over every threshold (predict quark if score >= t)
    cuts = np.r_[np.unique(scores), np.inf]
    errors = [np.mean((scores >= t) != labels.astype(bool)) for t in cuts]
    assert m["error"] == pytest.approx(min(errors))
    assert m["error_kind"] == "best cut"
    assert m["gluon_rejection_at_q50"] == pytest.approx(1 / m["gluon_efficiency_at_q50"])


def test_rejection_at_half_quark_efficiency_exact_case():
    # quark scores 4 distinct high values + gluons; cut keeping 2 of 4 quarks passes 1 of 10 gluons
    labels = np.array([1, 1, 1, 1] + [0] * 10)
    scores = np.array([10, 8, 6, 1, 9, 5, 4, 3, 2, 0.5, 0.4, 0.3, 0.2, 0.1])
    m = tagger_metrics(labels, scores)
    fpr, tpr, _ = roc_curve(labels, scores)
    assert 0.5 in tpr
    assert m["gluon_efficiency_at_q50"] == pytest.approx(fpr[list(tpr).index(0.5)])
    assert m["gluon_efficiency_at_q50"] == pytest.approx(0.1)
    assert m["gluon_rejection_at_q50"] == pytest.approx(10.0)


def test_physics_report_compares_with_classic_discriminants():
    rng = np.random.default_rng(1)
    n = 2000
    labels = rng.integers(0, 2, n)
    multiplicity = rng.poisson(np.where(labels == 1, 30, 40))       # gluons: more constituents
    girth = rng.normal(np.where(labels == 1, 0.05, 0.06), 0.02)
    mass = rng.normal(np.where(labels == 1, 40.0, 45.0), 10)
    p_quark = 1 / (1 + np.exp(-(labels - 0.5) * 3 + rng.normal(0, 1, n)))
    probs = np.stack([1 - p_quark, p_quark], 1)
    report = physics_report(labels, probs, ["gluon", "quark"],
                            {"multiplicity": multiplicity, "girth": girth, "mass": mass})
    taggers = report["taggers"]
    assert set(taggers) == {"CNN", "multiplicity", "width (girth)", "mass"}
    assert taggers["multiplicity"]["auc"] == pytest.approx(mann_whitney_auc(labels, -multiplicity.astype(float)))
    assert taggers["CNN"]["error"] == pytest.approx(np.mean(probs.argmax(1) != labels))
    best = max(("multiplicity", "width (girth)", "mass"), key=lambda k: taggers[k]["auc"])
    assert report["best_classic"] == best
    assert report["margin"]["auc"] == pytest.approx(taggers["CNN"]["auc"] - taggers[best]["auc"])
    text = format_report(report)
    assert "| multiplicity |" in text and "best classic discriminant" in text


def test_features_of_another_length_are_ignored():
    labels = np.array([0, 1, 0, 1])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    report = physics_report(labels, probs, ["cat", "dog"], {"multiplicity": np.arange(7)})
    assert set(report["taggers"]) == {"CNN"} and "margin" not in report
    assert report["taggers"]["CNN"]["auc"] == 1.0
    with pytest.raises(ValueError, match="N x 2"):
        physics_report(labels, probs[:, :1], ["a", "b"])


def test_best_cut_error_brute_force():
    labels = np.array([1, 0, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    fpr, tpr, _ = roc_curve(labels, scores)
    assert best_cut_error(labels, fpr, tpr) == pytest.approx(0.2)


def test_roc_plot_is_written(tmp_path):
    import json

    from cnnlab.physics.plots import main as plot_main

    labels = np.array([0, 1] * 50)
    probs = np.stack([1 - labels * 0.6 - 0.2, labels * 0.6 + 0.2], 1)
    report = physics_report(labels, probs, ["gluon", "quark"], {"multiplicity": 30 - labels * 5.0})
    (tmp_path / "eval.json").write_text(json.dumps({"physics": report}))
    assert plot_main([str(tmp_path / "eval.json"), str(tmp_path / "roc.png")]) == 0
    assert (tmp_path / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "other.json").write_text(json.dumps({"test_error": 0.1}))
    assert plot_main([str(tmp_path / "other.json"), str(tmp_path / "x.png")]) == 2
