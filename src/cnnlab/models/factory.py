"""``ModelConfig`` -> ``nn.Module``: resolve the architecture, set dropout rates, build and
initialise (the implementation of :mod:`cnnlab.models`' interface)."""

from __future__ import annotations

from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.build import Network
from cnnlab.models.config import ModelConfig
from cnnlab.models.init import INITS, initialize
from cnnlab.models.spec import DropoutParams, LayerSpec, SpecError, format_spec, parse_spec
from cnnlab.models.zoo import MODELS, ZooModel
from cnnlab.registry import did_you_mean

#: Defaults for architectures given as specs (zoo models carry their own).
SPEC_DEFAULTS = ZooModel(name="", spec="", source="", init="glorot", zero_last=False,
                         dropout_mode="inverted", pool_round="strict")


def resolve_arch(arch) -> tuple[ZooModel | None, list[LayerSpec] | None]:
    """``model.arch`` -> (zoo entry or None, layers). Raises :class:`SpecError`.

    A registry entry that is not a :class:`ZooModel` is a plain factory
    ``(input_shape, num_classes) -> nn.Module`` (custom models, test doubles): no layers."""
    if isinstance(arch, str) and arch.strip() in MODELS:
        entry = MODELS.get(arch.strip())
        return entry, (entry.layers if isinstance(entry, ZooModel) else None)
    try:
        return None, parse_spec(arch, "model.arch")
    except SpecError as exc:
        if isinstance(arch, str) and len(arch.split()) == 1:
            raise SpecError(f"unknown model '{arch}'.{did_you_mean(arch, MODELS.names())} "
                            f"Models: {', '.join(MODELS.names())}. (Nor is it a layer spec: {exc})") from None
        raise


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


def build_model(cfg: ModelConfig, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Build ``cfg.arch`` for inputs of ``input_shape`` (C, H, W) and ``num_classes`` outputs."""
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
                  pool_round=defaults.pool_round, arch_name=entry.name if entry else None)
    initialize(net.linear_layers(), cfg.init or defaults.init,
               defaults.zero_last if cfg.zero_last is None else cfg.zero_last)
    return net
