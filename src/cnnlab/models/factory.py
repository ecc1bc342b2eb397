"""``ModelConfig`` -> ``nn.Module``: resolve the architecture, set dropout rates, build and
initialise (the implementation of :mod:`cnnlab.models`' interface)."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.build import Network
from cnnlab.models.config import ModelConfig
from cnnlab.models.init import INITS
from cnnlab.models.spec import DropoutParams, LayerSpec, SpecError
from cnnlab.models.zoo import ZooModel, resolve_arch

#: Defaults for architectures given as specs (zoo models carry their own).
SPEC_DEFAULTS = ZooModel(name="", spec="", source="", init="glorot", zero_last=False,
                         dropout_mode="inverted", pool_round="strict")


def _with_rates(specs: list[LayerSpec], rates: list[float], key: str, counter: list[int]) -> list[LayerSpec]:
    out = []
    for spec in specs:
        if spec.kind == "dropout":
            mode = spec.params.mode
            spec = LayerSpec("dropout", DropoutParams(**{key: rates[counter[0]]}, mode=mode))
            counter[0] += 1
        elif spec.kind == "res":
            spec = LayerSpec("res", spec.params, tuple(_with_rates(list(spec.body), rates, key, counter)))
        out.append(spec)
    return out


def set_dropout_rates(specs: list[LayerSpec], keep: list[float] | None = None,
                      drop: list[float] | None = None, arch_name: str = "the arch") -> list[LayerSpec]:
    """Replace the rates of the dropout layers, in order, by ``keep`` or ``drop`` probabilities."""
    key, rates = ("keep", keep) if keep is not None else ("drop", drop)
    if rates is None:
        return specs
    from cnnlab.models.spec import walk

    sites = [s for s in walk(specs) if s.kind == "dropout"]
    if len(sites) != len(rates):
        current = [s.token for s in sites]
        raise SpecError(f"model.{key} has {len(rates)} probabilities but {arch_name} has {len(sites)} dropout "
                        f"layers ({', '.join(current) or 'none'}); give one per layer, or add keep<p>/drop<q> "
                        f"layers to a spec")
    return _with_rates(specs, list(rates), key, [0])


def initialize(layers: list, scheme: str, zero_last: bool = False) -> None:
    """Initialise the linear layers (:class:`~cnnlab.models.build.LayerInfo` of conv/fc) of a
    network: weights by ``scheme`` (:data:`~cnnlab.models.init.INITS`), biases zero, and the last
    layer all zero if ``zero_last``."""
    fill = INITS.get(scheme)
    with torch.no_grad():  # the schemes fill the weights in place
        for info in layers:
            fill(info.module.weight, info.activation)
            info.module.bias.zero_()
        if zero_last and layers:
            layers[-1].module.weight.zero_()


def build_model(cfg: ModelConfig, input_shape: tuple[int, int, int], num_classes: int,
                copies: int = 1) -> nn.Module:
    """Build ``cfg.arch`` for inputs of ``input_shape`` (C, H, W) and ``num_classes`` outputs;
    ``copies`` float32 copies of its parameters must fit in the available memory (training:
    :data:`~cnnlab.models.build.TRAINING_COPIES`), checked before anything is allocated."""
    entry, specs = resolve_arch(cfg.arch)
    if specs is None:
        options = [k for k in ("init", "zero_last", "dropout_mode", "keep", "drop") if getattr(cfg, k) is not None]
        if options:
            raise ConfigError(f"model '{cfg.arch}' is a custom factory; model.{', model.'.join(options)} "
                              f"only apply to zoo models and specs")
        return entry(tuple(input_shape), num_classes)
    defaults = entry or SPEC_DEFAULTS
    name = f"zoo model '{entry.name}'" if entry else "the spec"
    specs = set_dropout_rates(specs, cfg.keep, cfg.drop, name)
    net = Network(specs, input_shape, num_classes,
                  dropout_mode=cfg.dropout_mode or defaults.dropout_mode,
                  pool_round=defaults.pool_round, arch_name=entry.name if entry else None, copies=copies)
    initialize(net.linear_layers(), cfg.init or defaults.init,
               defaults.zero_last if cfg.zero_last is None else cfg.zero_last)
    return net
