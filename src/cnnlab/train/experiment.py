"""One experiment, assembled in one place: config -> everything a run trains with.

    cfg -> device
        -> load_data (train / val / test splits)
        -> fit preprocessing on train only
        -> seed, build the model for the preprocessing's output shape
        -> model.init_from (trained weights, matched by name and shape), model.freeze
        -> pretrain (stacked RBMs initialise the hidden fc layers: train/pretrain.py)
        -> optimizer (param groups with layer_lr), schedule, loader (augmentation, balancing)
        -> the loss (label smoothing, class weights, regularisation)
        -> callbacks

The trainer, ``cnnlab sanity``, ``augment-preview``, the benchmarks and the search all call
:func:`build_experiment`; what one of them builds is what `cnnlab train` trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from cnnlab.config import ExperimentConfig
from cnnlab.data import DatasetSplits, build_train_loader, fit_preprocess, load_data, loss_weights
from cnnlab.models import build_model
from cnnlab.models.build import TRAINING_COPIES
from cnnlab.optim import LRScheduler, build_optimizer
from cnnlab.train.callbacks import Callback, build_callbacks, check_callbacks
from cnnlab.train.device import resolve_device
from cnnlab.train.distributed import Group, current_group
from cnnlab.train.loss import Loss
from cnnlab.train.pretrain import PretrainReport, pretrain_dbn
from cnnlab.train.speed import StepSettings, step_settings
from cnnlab.train.transfer import InitReport, freeze, init_from

_STORAGE_DTYPES = {"uint8": None, "float16": torch.float16, "float32": torch.float32}


def to_storage(images: torch.Tensor, dtype_name: str, device: torch.device) -> torch.Tensor:
    """Training images as held on the device (``data.device_dtype``; uint8 stays uint8)."""
    dtype = _STORAGE_DTYPES[dtype_name]
    if dtype is None and images.dtype == torch.uint8:
        return images.to(device)
    return images.to(device, dtype or images.dtype)


@dataclass
class Experiment:
    """Everything one run trains with. Plain parts, no behaviour of its own."""

    cfg: ExperimentConfig
    device: torch.device
    splits: DatasetSplits          # train on the device; val/test moved there once, by the trainer
    preprocess: torch.nn.Module    # fitted on the training split
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loader: object                 # DeviceLoader or StreamingLoader over the training split
    scheduler: LRScheduler
    loss: Loss
    callbacks: list[Callback] = field(default_factory=list)
    steps_per_epoch: int = 0
    total_steps: int = 0
    init_report: InitReport | None = None  # what model.init_from loaded (None: a fresh init)
    frozen: list[str] = field(default_factory=list)  # layers model.freeze froze
    pretrain_report: PretrainReport | None = None  # what pretrain did (None: no pre-training)
    speed: StepSettings | None = None  # memory format, autocast, loss scaler, compiled forward
    group: Group = field(default_factory=Group)  # DDP ranks (train/distributed.py)

    @property
    def epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)

    @property
    def model_input_shape(self) -> tuple[int, int, int]:
        return self.preprocess.output_shape(tuple(self.splits.input_shape))


def build_experiment(cfg: ExperimentConfig, callbacks: list[Callback] = (),
                     device: str | torch.device | None = None, pretrained: bool = True,
                     show_progress: bool = False) -> Experiment:
    """Build the experiment ``cfg`` describes (data loaded, preprocessing fitted, model seeded).

    ``pretrained=False`` skips ``model.init_from`` and the pre-training: a resume, whose weights
    come from its own checkpoint (and whose source may be gone by then). ``show_progress``: the
    pre-training's progress bars."""
    group = current_group()  # torchrun's ranks (world 1 without torchrun)
    dev = group.device(torch.device(device) if device is not None else resolve_device(cfg.device))
    splits = load_data(cfg.data, cfg.seed)
    preprocess = fit_preprocess(cfg.data, splits).to(dev)
    splits.train.images = to_storage(splits.train.images, cfg.data.device_dtype, dev)
    splits.train.labels = splits.train.labels.to(dev)

    torch.manual_seed(cfg.seed)  # the initial weights depend on the seed only
    model_input = preprocess.output_shape(splits.input_shape)  # whitening may reshape
    model = build_model(cfg.model, model_input, splits.num_classes, copies=TRAINING_COPIES)
    report = init_from(model, cfg.model.init_from) if cfg.model.init_from and pretrained else None
    frozen = freeze(model, cfg.model.freeze)  # before the optimizer: frozen layers join no group
    model = model.to(dev)
    pretrain_report = None
    if cfg.pretrain.method == "dbn" and pretrained:  # before the layout and DDP wrapping of the model
        pretrain_report = pretrain_dbn(model, model.specs, cfg.pretrain, splits.train.images, preprocess,
                                       cfg.seed, show_progress and group.main)
    speed = step_settings(cfg.train, cfg.optim, model, dev, group, cfg.model.sync_bn)  # layout (in place), precision, DDP, compile
    tc = cfg.train
    optimizer = build_optimizer(cfg.optim, model, tc.batch_size)  # batch: optim.per_1024
    loader = build_train_loader(cfg.data, splits.train, tc.batch_size, preprocess, splits.num_classes)
    steps_per_epoch = len(loader)  # seeds/003: iterations_per_epoch = ceil(num_train / batch_size)
    total_steps = tc.iterations or tc.epochs * steps_per_epoch
    scheduler = LRScheduler(cfg.schedule, optimizer, steps_per_epoch, total_steps)
    loss = Loss(cfg.optim, loss_weights(cfg.data, splits, dev))  # data.balance: weight
    return Experiment(cfg, dev, splits, preprocess, model, optimizer, loader, scheduler, loss,
                      on_this_rank(check_callbacks(build_callbacks(cfg) + list(callbacks)), group),
                      steps_per_epoch, total_steps,
                      report, frozen, pretrain_report, speed, group)


def on_this_rank(callbacks: list[Callback], group: Group) -> list[Callback]:
    """Rank 0 runs every callback; the other ranks only those that must decide alike everywhere
    (``all_ranks = True``: early stopping), so that files are written once."""
    return callbacks if group.main else [cb for cb in callbacks if cb.all_ranks]
