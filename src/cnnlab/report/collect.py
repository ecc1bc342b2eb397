"""Everything a report shows about one run, read from its run directory: metrics.csv (the
source of truth), layers.csv, sanity.json, pretrain.csv (DBN pre-training), and the test-set
predictions of its checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from cnnlab.errors import CheckpointError
from cnnlab.monitor.layerlog import FILENAME as LAYERS_FILE, read_layers
from cnnlab.runfiles import read_json_object
from cnnlab.train.evaluation import SplitResult
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.inference import TrainedModel
from cnnlab.train.pretrain import PRETRAIN_FILE, SAMPLES_FILE
from cnnlab.train.rundir import RunDir

#: what pretrain_samples.pt holds (the trainer writes it with save_checkpoint)
SAMPLES_FIELDS = {"samples": torch.Tensor, "steps": list}
TRAIN_SAMPLE = 1000  # training images kept for the top-9 patches of each filter


def training_sample(images: torch.Tensor, n: int = TRAIN_SAMPLE) -> torch.Tensor:
    """``n`` training images drawn with a fixed seed (splits may be sorted by class), CPU."""
    index = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:n].sort().values
    return images[index.to(images.device)].cpu()


@dataclass
class RunData:
    path: Path
    name: str
    metrics: list[dict]
    layers: list[dict]
    sanity: dict | None
    trained: TrainedModel
    test: SplitResult
    test_images: torch.Tensor           # stored format (uint8 N x C x H x W), CPU
    extra: dict = field(default_factory=dict)
    test_features: dict | None = None   # per-example side data of the test split (jet features)
    train_images: torch.Tensor | None = None  # a seeded sample of the training images (stored format, CPU): filter patches

    @property
    def cfg(self):
        return self.trained.cfg

    @property
    def classes(self) -> list[str]:
        return self.trained.classes

    def column(self, key: str) -> tuple[list[int], list[float]]:
        """(epochs, values) of a metrics.csv column, skipping empty cells."""
        pairs = [(r["epoch"], r[key]) for r in self.metrics if isinstance(r.get(key), (int, float))]
        return [p[0] for p in pairs], [float(p[1]) for p in pairs]

    def final_numbers(self) -> dict:
        """The row of the "all results" table (seeds/000 fig. 2.8)."""
        last = self.metrics[-1]
        val = [r["val_acc"] for r in self.metrics if isinstance(r.get("val_acc"), (int, float))]
        arch = self.cfg.model.arch if isinstance(self.cfg.model.arch, str) else "(layer list)"
        return {
            "run": self.name, "model": arch, "optimizer": self.cfg.optim.name, "lr": self.cfg.optim.lr,
            "epochs": int(last["epoch"]), "checkpoint_epoch": self.trained.checkpoint_epoch,
            "parameters": sum(p.numel() for p in self.trained.model.parameters()),
            "train_error": 1.0 - float(last["train_acc"]),
            "best_val_error": (1.0 - max(val)) if val else None,
            "test_error": self.test.error, "test_loss": self.test.loss,
            "train_seconds": sum(float(r.get("seconds") or 0.0) for r in self.metrics),
        }


def collect_run(path: str | Path, checkpoint: str = "best", device: str = "auto") -> RunData:
    from cnnlab.train.inference import evaluate_trained

    run = RunDir.open(path)
    metrics = run.read_metrics()
    if not metrics:
        raise CheckpointError(f"{path}: no finished epoch yet ({run.metrics_path.name} is missing or "
                              "empty); nothing to report")
    trained, splits, test = evaluate_trained(run.path, checkpoint, device)
    sanity_path = run.path / "sanity.json"
    sanity = read_sanity(sanity_path) if sanity_path.is_file() else None
    return RunData(run.path, run.path.name, metrics, read_layers(run.path / LAYERS_FILE), sanity,
                   trained, test, splits.test.images.cpu(), extra=read_pretraining(run),
                   test_features=splits.extras.get("test"), train_images=training_sample(splits.train.images))


def read_pretraining(run: RunDir) -> dict:
    """``pretrain`` (pretrain.csv's rows) and ``pretrain_samples`` (the first RBM's Gibbs chains,
    with their ``steps``) of a run with DBN pre-training; {} without."""
    rows = run.read_csv(PRETRAIN_FILE)
    if not rows:
        return {}
    samples = run.path / SAMPLES_FILE
    return {"pretrain": rows, "pretrain_samples": load_checkpoint(samples, fields=SAMPLES_FIELDS) if samples.is_file() else None}


def read_sanity(path: Path) -> dict:
    """A run's sanity.json; a CheckpointError naming it if it is damaged."""
    return read_json_object(path, {"findings": ("check", "level", "message")},
                            "; delete it to report without the sanity checks")
