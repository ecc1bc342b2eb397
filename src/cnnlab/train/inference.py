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


def load_image(path: str | Path, input_shape: tuple[int, int, int]) -> torch.Tensor:
    """Decode a PNG/JPEG with Pillow into a 1 x C x H x W uint8 tensor of the model's shape."""
    from PIL import Image, UnidentifiedImageError

    channels, height, width = input_shape
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise DataError(f"{path}: the model takes {channels}-channel input; images can only be "
                        "predicted for 1- or 3-channel models")
    try:
        with Image.open(path) as image:
            image = image.convert(mode)
            if image.size != (width, height):
                image = image.resize((width, height), Image.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None
    tensor = torch.from_numpy(array.copy())
    tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return tensor.unsqueeze(0)
