"""Loading a finished run for evaluation and prediction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnlab.config import ExperimentConfig, build_config
from cnnlab.data import make_preprocess
from cnnlab.errors import DataError
from cnnlab.models import build_model
from cnnlab.train.checkpoint import load_checkpoint, load_model_weights
from cnnlab.train.device import resolve_device
from cnnlab.train.rundir import RunDir


@dataclass
class TrainedModel:
    cfg: ExperimentConfig
    model: torch.nn.Module
    preprocess: torch.nn.Module
    classes: list[str]
    input_shape: tuple[int, int, int]
    device: torch.device
    checkpoint_epoch: int

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities for stored-format images (uint8 N x C x H x W)."""
        self.model.eval()
        return self.model(self.preprocess(images.to(self.device))).float().softmax(1).cpu()


def load_trained(path: str | Path, which: str = "best", device: str = "auto") -> TrainedModel:
    run = RunDir.open(path)
    cfg = build_config(run.read_config(), str(run.config_path))
    dev = resolve_device(device if device != "auto" else cfg.device)
    ckpt_path = run.checkpoint(which)
    state = load_checkpoint(ckpt_path, dev)
    input_shape = tuple(int(v) for v in state["input_shape"])
    classes = list(state["classes"])
    preprocess = make_preprocess(cfg.data, input_shape[0]).to(dev)
    preprocess.load_state_dict(state["preprocess"])
    # PCA / patch whitening change the network's input shape: build for what preprocessing emits.
    model = build_model(cfg.model, preprocess.output_shape(input_shape), len(classes)).to(dev)
    load_model_weights(model, state["model"], str(ckpt_path))
    model.eval()
    return TrainedModel(cfg, model, preprocess, classes, input_shape, dev, int(state["epoch"]))


def evaluate_trained(path: str | Path, which: str = "best", device: str = "auto", tta: str | None = None):
    """Load a run's checkpoint and evaluate it on the run's test split, the one way `evaluate`,
    `report` and the Python API do it; ``tta``: test-time augmentation (none | flip |
    flip_translate; None = the run's ``train.tta``). Returns (trained model, data splits, test
    SplitResult)."""
    from cnnlab.data import load_data
    from cnnlab.train.evaluation import evaluate_split

    trained = load_trained(path, which, device)
    splits = load_data(trained.cfg.data, trained.cfg.seed)
    test = evaluate_split(trained.model, splits.test.to(trained.device), trained.preprocess,
                          trained.cfg.train.eval_batch_size, tta or trained.cfg.train.tta)
    return trained, splits, test


def evaluate_run(run_dir: str | Path, checkpoint: str = "best", device: str = "auto",
                 tta: str | None = None) -> dict:
    """What ``cnnlab evaluate --json`` prints: test error, per-class accuracy, confusion matrix,
    and for two classes the physics ROC report. ``tta``: as :func:`evaluate_trained`."""
    from cnnlab.physics.metrics import physics_report

    trained, splits, test = evaluate_trained(run_dir, checkpoint, device, tta)
    n = len(trained.classes)
    return {
        "run_dir": str(run_dir), "checkpoint": checkpoint, "epoch": trained.checkpoint_epoch,
        "tta": tta or trained.cfg.train.tta,
        "test_examples": len(test.labels), "test_loss": test.loss,
        "test_accuracy": test.accuracy, "test_error": test.error,
        "classes": trained.classes,
        "per_class_accuracy": dict(zip(trained.classes, test.per_class_accuracy(n))),
        "confusion_matrix": test.confusion_matrix(n).tolist(),
        **({"physics": physics_report(test.labels.numpy(), test.probabilities.numpy(), trained.classes,
                                      splits.extras.get("test"))} if n == 2 else {}),
    }


def load_image(path: str | Path, input_shape: tuple[int, int, int]) -> torch.Tensor:
    """Decode an image file into a 1 x C x H x W uint8 tensor of the model's shape, as the folder
    source decodes (16-bit scaled, decompression bombs refused), resized if its size differs."""
    from PIL import Image

    from cnnlab.data.decode import MODES, decode_image

    channels, height, width = input_shape
    if channels not in MODES:
        raise DataError(f"{path}: the model takes {channels}-channel input; images can only be "
                        f"predicted for {', '.join(map(str, MODES))}-channel models")
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror})") from None
    array = decode_image(data, str(path), channels)
    if array.shape[:2] != (height, width):
        image = Image.fromarray(array[:, :, 0] if channels == 1 else array, MODES[channels])
        array = np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.uint8)
        array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(array.transpose(2, 0, 1).copy()).unsqueeze(0)
