"""Print a network's layer table before training: output volumes (W x H x D, as the seeds
print them), weights, biases, activations, totals, activation memory (cs231n accounting:
4 bytes per value, forward + backward) and FLOPs.

  cnnlab summary convnet --input 3x32x32
  cnnlab summary "conv5-16p2 relu pool2 conv5-20p2 relu pool2 fc" --input 3x32x32 --json
"""

from __future__ import annotations

import re

from cnnlab.cli import emit_json
from cnnlab.errors import ConfigError

NAME = "summary"
HELP = "layer table of a zoo model or spec: volumes, weights, memory, FLOPs"


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """``3x32x32`` (C x H x W, torch's order) -> (3, 32, 32)."""
    match = re.fullmatch(r"\s*(\d+)\s*[x,]\s*(\d+)\s*[x,]\s*(\d+)\s*", text)
    if not match or min(int(g) for g in match.groups()) < 1:
        raise ConfigError(f"--input '{text}': give C x H x W with positive sizes, e.g. 1x28x28 or 3x32x32")
    shape = tuple(int(g) for g in match.groups())
    from cnnlab.data.limits import check_image_size

    check_image_size(shape[1], shape[2], "--input", shape[0])
    return shape


def add_arguments(p) -> None:
    p.add_argument("arch", metavar="MODEL_OR_SPEC", help="a zoo name (cnnlab list models) or a spec string")
    p.add_argument("--input", default="1x28x28", metavar="CxHxW", help="input volume, channels first (default 1x28x28)")
    p.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    p.add_argument("--batch", type=int, default=64, help="batch size for the per-batch memory and FLOPs (default 64)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from cnnlab.models import ModelConfig, build_model
    from cnnlab.models.summary import format_summary, summarize

    if args.classes < 1 or args.batch < 1:
        raise ConfigError("--classes and --batch must be positive")
    shape = parse_input_shape(args.input)
    try:
        cfg = ModelConfig(arch=args.arch)
    except ValueError as exc:  # pydantic's ValidationError: report the spec error itself
        raise ConfigError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
    summary = summarize(build_model(cfg, shape, args.classes), args.batch)
    if args.json:
        emit_json(summary)
    else:
        print(format_summary(summary))
    return 0
