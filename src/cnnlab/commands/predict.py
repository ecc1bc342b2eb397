"""Classify image files (PNG/JPEG) with a trained run: the top-k classes and probabilities."""

from __future__ import annotations

from cnnlab.cli import emit_json

NAME = "predict"
HELP = "top-k classes of image files with a trained run"


def add_arguments(p) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-k", "--top-k", type=int, default=3, help="classes to show per image (default 3)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    import torch

    from cnnlab.errors import UserError
    from cnnlab.train.inference import load_image, load_trained

    if args.top_k < 1:
        raise UserError("--top-k must be at least 1")
    trained = load_trained(args.run_dir, args.checkpoint, args.device)
    batch = torch.cat([load_image(path, trained.input_shape) for path in args.images])
    probs = trained.predict_proba(batch)
    k = min(args.top_k, len(trained.classes))
    top = probs.topk(k, dim=1)
    results = [
        {"image": path, "top": [{"class": trained.classes[int(i)], "probability": float(p)}
                                for p, i in zip(values, indices)]}
        for path, values, indices in zip(args.images, top.values, top.indices)
    ]
    if args.json:
        emit_json(results)
    else:
        for r in results:
            print(r["image"] + ": " + ", ".join(f"{t['class']} {100 * t['probability']:.1f}%" for t in r["top"]))
    return 0
