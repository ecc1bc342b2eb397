"""Export a trained run for use outside cnnlab.

  safetensors  the network's weights by layer name (what model.init_from reads), the fitted
               preprocessing's tensors beside them (preprocess.*), metadata in the header
  onnx         the whole classifier, preprocessing baked in: uint8 N x C x H x W -> logits
  torchscript  the same, traced (torch.jit.load runs it without cnnlab)

Every file carries the classes, input shape, preprocessing, arch and the run's config
(`cnnlab-export/1` JSON). --fully-convolutional (onnx, torchscript) writes the FC-to-conv form:
images of any size at least the training size -> a score map per window position.

examples:
  cnnlab export runs/lenet5-mnist-20261123-104419 --format onnx
  cnnlab export RUN --format safetensors --out weights.safetensors
  cnnlab train convnet-cifar10 model.init_from=weights.safetensors
  cnnlab export RUN --format onnx --fully-convolutional
"""

from __future__ import annotations

from cnnlab.cli import emit_json

NAME = "export"
HELP = "write a run as safetensors, ONNX or TorchScript (optionally fully convolutional)"


def add_arguments(p) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", required=True, choices=["safetensors", "onnx", "torchscript"])
    p.add_argument("--out", metavar="PATH", help="output file (default RUN_DIR/export/model[-fullconv].EXT)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--fully-convolutional", action="store_true",
                   help="convert the FC layers after the last conv/pool to convolutions (onnx, torchscript)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from cnnlab.export import export_run

    path, meta = export_run(args.run_dir, args.format, args.out, which=args.checkpoint,
                            fully_convolutional=args.fully_convolutional)
    summary = {"path": str(path), "format": args.format, "bytes": path.stat().st_size,
               **{k: v for k, v in meta.items() if k != "config"}}
    if args.json:
        emit_json(summary)
    else:
        c, h, w = meta["input_shape"]
        extra = (f", score map stride {meta['stride']} over {w}x{h} windows" if "stride" in meta else "")
        print(f"wrote {path} ({args.format}, {summary['bytes']:,} bytes): {len(meta['classes'])} classes, "
              f"input {c}x{h}x{w}{extra}; {meta['preprocessing']}")
    return 0
