"""Export a trained run: ``safetensors`` (weights), ``onnx`` or ``torchscript`` (a whole classifier).

What each format holds:

=============  ===========================================================================
format         content
=============  ===========================================================================
onnx           the classifier as one graph, **preprocessing baked in**: input ``images``, uint8
               ``N x C x H x W`` pixel values as the run stored them (0-255), any batch size;
               output ``logits`` ``N x K`` (softmax them for probabilities). Metadata
               (``metadata_props``): ``cnnlab`` = the JSON below.
torchscript    the same classifier traced with ``torch.jit.trace`` (``torch.jit.load`` runs it
               without cnnlab); the JSON in the archive's extra file ``cnnlab.json``.
safetensors    the network's weights under their layer names (what ``model.init_from`` reads)
               and, **beside them in the same file**, the fitted preprocessing's tensors under
               ``preprocess.*`` (``init_from`` ignores those); the JSON in the header's
               ``cnnlab`` entry, with the run's config to rebuild network and preprocessing.
=============  ===========================================================================

The JSON (``format: cnnlab-export/1``): ``classes``, ``input_shape`` (C, H, W), ``input``
and ``output`` (what they are), ``preprocessing`` (the steps, and whether they are baked in),
``arch`` (the spec), ``run``, ``checkpoint``, ``epoch``, ``cnnlab_version``, ``config``.

``fully_convolutional=True`` (onnx, torchscript) exports the FC-to-conv form
(:mod:`cnnlab.models.fullconv`): input of any size at least the training size, output
``scores`` ``N x K x H' x W'``, plus ``window`` and ``stride`` in the JSON.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from cnnlab import __version__
from cnnlab.atomic import atomic_write, check_output
from cnnlab.errors import UserError
from cnnlab.train.inference import TrainedModel
from cnnlab.train.transfer import PREPROCESS_PREFIX

FORMAT = "cnnlab-export/1"
FORMATS = ("safetensors", "onnx", "torchscript")
SUFFIXES = {"safetensors": ".safetensors", "onnx": ".onnx", "torchscript": ".pt"}


class Classifier(nn.Module):
    """Stored-format images -> logits: the fitted preprocessing, then the network."""

    def __init__(self, preprocess: nn.Module, model: nn.Module):
        super().__init__()
        self.preprocess, self.model = preprocess, model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self.preprocess(images))


def _need(package: str):
    try:
        return __import__(package)
    except ImportError:
        raise UserError(f"exporting needs the {package} package: pip install 'cnnlab[export]'") from None


def metadata(trained: TrainedModel, run_dir: str | Path, which: str, fmt: str, network: nn.Module) -> dict:
    """The JSON every export carries (module docstring)."""
    from cnnlab.models.fullconv import FullyConvolutional

    c, h, w = trained.input_shape
    fullconv = isinstance(network, FullyConvolutional)
    steps = repr(trained.preprocess)
    meta = {
        "format": FORMAT, "classes": trained.classes, "input_shape": [c, h, w],
        "input": (f"uint8 images N x {c} x H x W (H >= {h}, W >= {w}), pixel values 0-255" if fullconv
                  else f"uint8 images N x {c} x {h} x {w}, pixel values 0-255 as stored by the run"),
        "output": ("class scores N x K x H' x W' (K = len(classes)): one score vector per window position"
                   if fullconv else "logits N x K (K = len(classes)); softmax gives probabilities"),
        "preprocessing": (f"{steps}, baked into the graph" if fmt != "safetensors"
                          else f"{steps}; its fitted tensors are stored under '{PREPROCESS_PREFIX}*'"),
        "arch": getattr(trained.model, "spec", str(trained.cfg.model.arch)),
        "run": str(run_dir), "checkpoint": which, "epoch": trained.checkpoint_epoch,
        "cnnlab_version": __version__, "config": trained.cfg.to_dict(),
    }
    if fullconv:
        meta.update(window=list(network.window), stride=network.stride, exact_sliding=network.exact)
    return meta


def _onnx_bytes(module: nn.Module, example: torch.Tensor, output: str, dynamic_size: bool) -> bytes:
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_size else {0: "batch"}
    out_axes = {0: "batch", 2: "rows", 3: "cols"} if dynamic_size else {0: "batch"}
    buffer = io.BytesIO()
    # The TorchScript-based exporter (deprecated in torch, still exact): the dynamo one needs
    # onnxscript, and these graphs are plain Sequentials.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=["images"], output_names=[output],
                          dynamic_axes={"images": axes, output: out_axes}, opset_version=17)
    return buffer.getvalue()


def export_run(run_dir: str | Path, fmt: str, out: str | Path | None = None, *, which: str = "best",
               fully_convolutional: bool = False) -> tuple[Path, dict]:
    """Write ``run_dir``'s ``which`` checkpoint as ``fmt``; returns the path and its metadata.

    Default path: ``RUN_DIR/export/model[-fullconv].{safetensors,onnx,pt}``."""
    from cnnlab.models.fullconv import fully_convolutional as convert
    from cnnlab.train.inference import load_trained

    if fmt not in FORMATS:
        raise UserError(f"unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if fully_convolutional and fmt == "safetensors":
        raise UserError("--fully-convolutional changes the graph, not the weights: use --format onnx or "
                        "torchscript (safetensors stores the weights, which model.init_from reads as they are)")
    trained = load_trained(run_dir, which, "cpu")
    network = convert(trained.model) if fully_convolutional else trained.model
    if fully_convolutional and not trained.preprocess.pointwise_per_channel:
        raise UserError(f"the run's preprocessing {trained.preprocess!r} depends on the image size (per pixel "
                        "or whitening); a fully convolutional export needs per-channel steps only")
    path = Path(out) if out else (Path(run_dir) / "export" /
                                  f"model{'-fullconv' if fully_convolutional else ''}{SUFFIXES[fmt]}")
    check_output(path, f"the {fmt} export", "give --out FILE elsewhere", runs=[run_dir],
                 own=[Path(run_dir) / "export"])
    meta = metadata(trained, run_dir, which, fmt, network)
    text = json.dumps(meta, default=str)
    classifier = Classifier(trained.preprocess, network).eval()
    example = torch.zeros(2, *trained.input_shape, dtype=torch.uint8)
    if fmt == "safetensors":
        _need("safetensors")
        from safetensors.torch import save

        tensors = {k: v.contiguous() for k, v in trained.model.state_dict().items()}
        tensors.update({PREPROCESS_PREFIX + k: v.contiguous() for k, v in trained.preprocess.state_dict().items()})
        data = save(tensors, metadata={"cnnlab": text})
    elif fmt == "onnx":
        onnx = _need("onnx")
        model = onnx.load_from_string(_onnx_bytes(classifier, example, "scores" if fully_convolutional else "logits",
                                                  fully_convolutional))
        model.metadata_props.add(key="cnnlab", value=text)
        model.doc_string = f"cnnlab classifier: {meta['input']} -> {meta['output']}"
        data = model.SerializeToString()
    else:
        buffer = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():  # torch.jit is deprecated, still supported
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.trace(classifier, example), buffer, _extra_files={"cnnlab.json": text})
        data = buffer.getvalue()
    with atomic_write(path) as f:
        f.write(data)
    return path, meta


def read_metadata(path: str | Path) -> dict:
    """The ``cnnlab`` JSON of an exported file, whatever its format."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            return json.loads(f.metadata()["cnnlab"])
    if path.suffix == ".onnx":
        model = _need("onnx").load(str(path))
        return json.loads(next(p.value for p in model.metadata_props if p.key == "cnnlab"))
    files = {"cnnlab.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.load(str(path), _extra_files=files)
    return json.loads(files["cnnlab.json"])
