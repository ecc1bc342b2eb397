"""Classify image files (PNG/JPEG) with a trained run: the top-k classes and probabilities.

Images are resized to the training size. With --sliding, each image is kept at its own size
(or resized to --size HxW; each side at least the training size) and the run's network,
converted to its fully convolutional form (FC layers as convolutions, cs231n), scores every
window of the training size at the network's stride in one pass; the class scores (logits)
are averaged over the positions, then turned into probabilities (seeds/004: "resize bigger,
average the class scores")."""

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
    p.add_argument("--sliding", action="store_true",
                   help="score every window position of the image (FC-to-conv) and average the class scores")
    p.add_argument("--size", metavar="HxW", help="with --sliding: resize each image to HxW first "
                                                 "(default: its own size, each side at least the training size)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _size(text: str) -> tuple[int, int]:
    from cnnlab.errors import UserError

    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size {text}: give HxW, e.g. 64x64") from None
    if h < 1 or w < 1:
        raise UserError(f"--size {text}: both sides must be at least 1")
    return h, w


def sliding_probabilities(trained, paths: list[str], size: tuple[int, int] | None) -> tuple[list, list]:
    """Per image: class probabilities from the position-averaged scores, and the map's size."""
    import torch
    from PIL import Image

    from cnnlab.data.limits import check_image_size
    from cnnlab.errors import UserError
    from cnnlab.models.fullconv import fully_convolutional
    from cnnlab.train.inference import load_image

    if not trained.preprocess.pointwise_per_channel:
        raise UserError(f"--sliding: the run's preprocessing {trained.preprocess!r} depends on the image size "
                        "(per pixel or whitening); it only works with per-channel steps")
    net = fully_convolutional(trained.model)
    c, h, w = trained.input_shape
    probs, maps = [], []
    for path in paths:
        if size is None:
            try:
                with Image.open(path) as image:
                    width, height = image.size
            except (OSError, ValueError):
                width, height = w, h  # load_image reports what is wrong with the file
            target = (max(height, h), max(width, w))
        else:
            target = size
        if target[0] < h or target[1] < w:
            raise UserError(f"--size {target[0]}x{target[1]} is smaller than the training size {h}x{w}")
        widest = max((p.shape[0] for p in net.parameters() if p.ndim == 4), default=1)
        check_image_size(target[0], target[1], f"{path}: sliding at", widest)
        image = load_image(path, (c, *target)).to(trained.device)
        with torch.no_grad():
            scores = net(trained.preprocess(image))
        probs.append(scores.mean(dim=(2, 3)).float().softmax(1)[0].cpu())
        maps.append(list(scores.shape[2:]))
    return probs, maps


def run(args) -> int:
    import torch

    from cnnlab.errors import UserError
    from cnnlab.train.inference import load_image, load_trained

    if args.top_k < 1:
        raise UserError("--top-k must be at least 1")
    trained = load_trained(args.run_dir, args.checkpoint, args.device)
    if args.size and not args.sliding:
        raise UserError("--size goes with --sliding (without it images are resized to the training size)")
    maps = None
    if args.sliding:
        rows, maps = sliding_probabilities(trained, args.images, _size(args.size) if args.size else None)
        probs = torch.stack(rows)
    else:
        batch = torch.cat([load_image(path, trained.input_shape) for path in args.images])
        probs = trained.predict_proba(batch)
    k = min(args.top_k, len(trained.classes))
    top = probs.topk(k, dim=1)
    results = [
        {"image": path, "top": [{"class": trained.classes[int(i)], "probability": float(p)}
                                for p, i in zip(values, indices)]}
        for path, values, indices in zip(args.images, top.values, top.indices)
    ]
    for r, positions in zip(results, maps or []):
        r["positions"] = positions  # rows x cols of the score map that was averaged
    if args.json:
        emit_json(results)
    else:
        for r in results:
            where = f" (mean of {r['positions'][0]}x{r['positions'][1]} positions)" if "positions" in r else ""
            print(r["image"] + where + ": " + ", ".join(f"{t['class']} {100 * t['probability']:.1f}%" for t in r["top"]))
    return 0
