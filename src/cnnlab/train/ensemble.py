"""Ensembles of trained runs: the members' test-set predictions combined.

Two combination rules (seeds/004: Nielsen's committee of five network3 networks, 99.67%)::

    mean  (default)   p(c | x) = (1/M) sum_m p_m(c | x),     prediction argmax_c p(c | x)
    vote              prediction = the class most members predict (argmax_c #{m : argmax p_m(x) = c});
                      a tie goes to the tied class with the larger mean probability

Every member is evaluated on its own run's test split with its own fitted preprocessing; the
split must be the same images and labels for all members (a DataError naming the member if not),
since an ensemble of networks that saw different test sets is not a number about either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.errors import ConfigError, DataError

METHODS = ("mean", "vote")


@dataclass
class MemberResult:
    run_dir: str
    test_error: float
    probabilities: torch.Tensor  # N x C on the CPU


def combine(probabilities: list[torch.Tensor], method: str = "mean") -> torch.Tensor:
    """The ensemble's predicted class per example from the members' N x C probabilities."""
    if method not in METHODS:
        raise ConfigError(f"ensemble method '{method}' is not one of {', '.join(METHODS)}")
    mean = torch.stack(probabilities).mean(0)
    if method == "mean":
        return mean.argmax(1)
    votes = torch.zeros_like(mean)
    for p in probabilities:
        votes.scatter_add_(1, p.argmax(1, keepdim=True), torch.ones_like(mean[:, :1]))
    # ties: the most votes first, then the larger mean probability (mean < 1 never outweighs a vote)
    return (votes + mean).argmax(1)


def ensemble_runs(run_dirs: list[str | Path], method: str = "mean", checkpoint: str = "best",
                  device: str = "auto") -> dict:
    """Evaluate each run on the test split and the ensemble of all of them (what ``cnnlab
    ensemble --json`` prints): each member's test error beside the ensemble's."""
    from cnnlab.data import load_data
    from cnnlab.train.evaluation import evaluate_split
    from cnnlab.train.inference import load_trained

    if not run_dirs:
        raise ConfigError("an ensemble needs at least one run directory")
    if method not in METHODS:
        raise ConfigError(f"ensemble method '{method}' is not one of {', '.join(METHODS)}")
    splits_cache: dict[str, object] = {}
    members: list[MemberResult] = []
    reference = None  # (run, classes, test images, test labels) of the first member
    for path in run_dirs:
        trained = load_trained(path, checkpoint, device)
        key = json.dumps([trained.cfg.data.model_dump(mode="json"), trained.cfg.seed], sort_keys=True)
        if key not in splits_cache:
            splits_cache[key] = load_data(trained.cfg.data, trained.cfg.seed).test
        test = splits_cache[key]
        if reference is None:
            reference = (str(path), trained.classes, test)
        else:
            first, classes, first_test = reference
            if trained.classes != classes:
                raise DataError(f"{path}: its classes {trained.classes[:5]}... differ from {first}'s "
                                f"{classes[:5]}...; ensemble members must classify the same classes")
            if test is not first_test and not (test.labels.shape == first_test.labels.shape
                                               and torch.equal(test.labels, first_test.labels)
                                               and torch.equal(test.images, first_test.images)):
                raise DataError(f"{path}: its test split is not {first}'s (data section "
                                f"{trained.cfg.data.source}, {len(test.labels)} test images); ensemble "
                                "members must be evaluated on the same test images")
        result = evaluate_split(trained.model, test.to(trained.device), trained.preprocess,
                                trained.cfg.train.eval_batch_size)
        members.append(MemberResult(str(path), result.error, result.probabilities))
    labels = reference[2].labels.cpu()
    predicted = combine([m.probabilities for m in members], method)
    error = float((predicted != labels).double().mean()) if len(labels) else 0.0
    return {"method": method, "checkpoint": checkpoint, "test_examples": int(len(labels)),
            "classes": list(reference[1]), "test_error": error,
            "members": [{"run_dir": m.run_dir, "test_error": m.test_error} for m in members]}
