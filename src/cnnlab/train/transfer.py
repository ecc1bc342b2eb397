"""Start a run from trained weights (``model.init_from``) and freeze layers (``model.freeze``).

seeds/004: "don't be a hero" -- take a network trained elsewhere and fine-tune it. The source
is a run directory (its ``checkpoints/best.pt``), a checkpoint or plain state-dict ``.pt``
file, or a ``.safetensors`` file (``cnnlab export --format safetensors``). Matching is strict
and by layer name: a layer (``conv1``, ``fc2``: a module owning parameters or buffers) is

- **loaded** when the source has every one of its tensors under the same names with the same
  shapes;
- **skipped** (keeps its fresh init) when a name matches but a shape differs -- the common case
  is a new head for another number of classes (``fc``: 5 units in the source, 10 here);
- **new** when the source has none of its tensors.

Tensors are never cut or padded to fit. A source that fills no layer at all is an error (it is
for another architecture). :func:`init_from` returns an :class:`InitReport` whose table the
trainer prints and writes to ``train.log``.

``model.freeze`` takes the keys of ``optim.layer_lr`` (layer names, prefixes, globs, indices)
and ``body`` (every parameter layer but the last, i.e. all but the head). A frozen layer's
parameters get ``requires_grad = False``: no gradient is computed, and since the optimizer's
groups and the L2/L1/max-norm terms only take trainable parameters
(:func:`cnnlab.optim.groups.param_groups`, :func:`cnnlab.optim.regularizers.regularized_parameters`),
no update and no weight decay either. Batch-norm *running statistics* of a frozen layer still
follow the new data in training mode (they are buffers, not parameters).

The preprocessing is not taken from the source: the new run fits its own on its own training
split (``data.normalize``), as any run does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import CheckpointError, ConfigError
from cnnlab.optim.groups import describe_layers, parameter_layers, select_layers

#: tensors of a safetensors export that belong to the preprocessing, not to the network
PREPROCESS_PREFIX = "preprocess."


def read_weights(source: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """The network tensors stored at ``source`` and a description of where they came from."""
    path = Path(source)
    if path.is_dir():
        best = path / "checkpoints" / "best.pt"
        if not best.is_file():
            raise ConfigError(f"model.init_from={source}: a directory but not a finished run "
                              f"(no {best.relative_to(path)}); give a run directory, a .pt or a .safetensors file")
        path = best
    if not path.is_file():
        raise ConfigError(f"model.init_from={source}: no such run directory or file")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ConfigError("model.init_from: reading .safetensors needs the safetensors package: "
                              "pip install 'cnnlab[export]'") from None
        try:
            tensors = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types for damaged files
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
        return {k: v for k, v in tensors.items() if not k.startswith(PREPROCESS_PREFIX)}, str(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint or state dict ({exc.__class__.__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):  # a cnnlab checkpoint
        epoch = state.get("epoch")
        return state["model"], f"{path}" + (f" (epoch {epoch})" if epoch is not None else "")
    if isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values()):
        return state, str(path)
    raise CheckpointError(f"{path}: neither a cnnlab checkpoint nor a state dict of tensors")


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(d) for d in t.shape) or "scalar"


@dataclass
class LayerRow:
    """One layer of the report: its status and the shapes of its tensors (here, in the source)."""

    layer: str
    status: str  # loaded | skipped | new
    shapes: str
    source_shapes: str = ""


@dataclass
class InitReport:
    source: str
    rows: list[LayerRow] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)  # source tensors no layer here has

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    def lines(self) -> list[str]:
        """The table the trainer prints: one line per layer, then a summary."""
        width = max([len(r.layer) for r in self.rows] + [5])
        out = [f"init_from {self.source}:", f"  {'layer':<{width}}  status   shape (source)"]
        for r in self.rows:
            extra = f"  (source {r.source_shapes})" if r.status == "skipped" else ""
            out.append(f"  {r.layer:<{width}}  {r.status:<7}  {r.shapes}{extra}")
        summary = (f"  {self.count('loaded')} layers loaded, {self.count('skipped')} skipped (shape differs), "
                   f"{self.count('new')} new")
        if self.unused:
            summary += f"; unused in the source: {', '.join(self.unused[:8])}{' ...' if len(self.unused) > 8 else ''}"
        return out + [summary]

    def to_dict(self) -> dict:
        return {"source": self.source, "layers": [r.__dict__ for r in self.rows], "unused": self.unused}


def _tensor_layers(model: nn.Module) -> dict[str, list[str]]:
    """Layer (module) name -> the state-dict keys it owns directly (parameters and buffers)."""
    layers: dict[str, list[str]] = {}
    for name, module in model.named_modules():
        own = [*module._parameters, *(b for b in module._buffers if b not in module._non_persistent_buffers_set)]
        keys = [f"{name}.{t}" if name else t for t in own
                if (module._parameters.get(t) if t in module._parameters else module._buffers.get(t)) is not None]
        if keys:
            layers[name] = keys
    return layers


def init_from(model: nn.Module, source: str | Path) -> InitReport:
    """Copy the matching layers of ``source`` into ``model`` (see the module docstring)."""
    weights, origin = read_weights(source)
    own = model.state_dict()
    report = InitReport(origin)
    chosen: dict[str, torch.Tensor] = {}
    for layer, keys in _tensor_layers(model).items():
        shapes = ", ".join(_shape(own[k]) for k in keys if own[k].ndim)
        present = [k for k in keys if k in weights]
        if not present:
            report.rows.append(LayerRow(layer, "new", shapes))
            continue
        src_shapes = ", ".join(_shape(weights[k]) for k in present if weights[k].ndim)
        if len(present) == len(keys) and all(weights[k].shape == own[k].shape for k in keys):
            chosen.update({k: weights[k] for k in keys})
            report.rows.append(LayerRow(layer, "loaded", shapes, src_shapes))
        else:
            report.rows.append(LayerRow(layer, "skipped", shapes, src_shapes or "missing tensors"))
    report.unused = sorted(k for k in weights if k not in own)
    if not chosen:
        raise CheckpointError(
            f"model.init_from={source}: no layer of this network matches the source by name and shape "
            f"(network: {', '.join(r.layer for r in report.rows)}; source: {', '.join(list(weights)[:8])}); "
            "it is for another architecture")
    with torch.no_grad():
        for key, value in chosen.items():
            own[key].copy_(value)
    return report


def freeze(model: nn.Module, patterns: list[str | int]) -> list[str]:
    """Set ``requires_grad = False`` on the layers ``patterns`` select; returns their names."""
    layers = parameter_layers(model)
    frozen: list[str] = []
    for pattern in patterns:
        selected = layers[:-1] if str(pattern).strip() == "body" else select_layers(pattern, layers)
        if not selected:
            raise ConfigError(f"model.freeze: no layer '{pattern}' in {type(model).__name__}. "
                              f"Layers (index: name): {describe_layers(layers)}; 'body' = all but the last")
        frozen += [name for name in selected if name not in frozen]
    modules = dict(model.named_modules())
    for name in frozen:
        for p in modules[name].parameters(recurse=False):
            p.requires_grad_(False)
    if frozen and len(frozen) == len(layers):
        raise ConfigError(f"model.freeze={patterns} freezes every layer ({', '.join(layers)}); nothing would "
                          "train. Leave the head out (e.g. model.freeze=[body])")
    return [name for name in layers if name in frozen]
