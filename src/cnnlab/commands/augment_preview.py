"""Preview a config's augmentation: a grid with one training image per row, the original in
the first column and augmented copies after it, exactly as the network receives them
(preprocessing fitted on the training split, then ``data.augment``), written as a PNG.

Each row is mapped to pixels with the range of its original, so copies and original share
one brightness scale; images with other than 1 or 3 channels show their first channel.
"""

from __future__ import annotations

from cnnlab.cli import emit_json

NAME = "augment-preview"
HELP = "write a grid of training images and their augmented copies (PNG)"


def add_arguments(p) -> None:
    p.add_argument("config", nargs="*", metavar="CONFIG|KEY=VALUE",
                   help="a YAML config or recipe name, then dotted overrides")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--images", type=int, default=8, help="rows: training images shown (default 8)")
    p.add_argument("--copies", type=int, default=5, help="augmented copies per image (default 5)")
    p.add_argument("--zoom", type=int, default=0, help="pixel scale factor (default: to ~96 px tiles)")
    p.add_argument("--seed", type=int, default=0, help="seed of the image choice and augmentation")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")


def preview_grid(cfg, n_images: int, copies: int, seed: int):
    """(grid H x W x C uint8 array, info) for ``cfg``'s training split."""
    import numpy as np
    import torch

    from cnnlab.train.experiment import build_experiment

    x = build_experiment(cfg, device="cpu")  # what `cnnlab train` would train on
    splits, preprocess, augment = x.splits, x.preprocess, x.loader.augment
    g = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(splits.train), generator=g)[:n_images].sort().values
    originals = preprocess(splits.train.images[index])
    columns = [originals]
    for copy in range(copies):
        torch.manual_seed(seed * 1000 + copy)
        columns.append(augment(originals.clone(), index, copy) if augment else originals.clone())
    tiles = torch.stack(columns, 1)  # images x (1 + copies) x C x H x W
    if tiles.shape[2] not in (1, 3):
        tiles = tiles[:, :, :1]
    lo = originals.flatten(1).quantile(0.01, dim=1)[:, None, None, None, None]
    hi = originals.flatten(1).quantile(0.99, dim=1)[:, None, None, None, None]
    pixels = ((tiles - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1).mul(255).round().to(torch.uint8)
    n, k, c, h, w = pixels.shape
    gap = 2
    grid = np.full((n * (h + gap) + gap, k * (w + gap) + gap + gap, c), 255, dtype=np.uint8)
    for i in range(n):
        for j in range(k):
            x0 = gap + j * (w + gap) + (gap if j else 0)  # an extra gap after the originals
            grid[gap + i * (h + gap):gap + i * (h + gap) + h, x0:x0 + w] = pixels[i, j].permute(1, 2, 0).numpy()
    info = {"images": n, "copies": k - 1, "image_shape": [c, h, w], "augment": repr(augment),
            "indices": index.tolist()}
    return grid, info


def run(args) -> int:
    from PIL import Image

    from cnnlab.commands.train import split_args
    from cnnlab.config import load_config
    from cnnlab.errors import UserError

    if args.images < 1 or args.copies < 1:
        raise UserError("--images and --copies must be at least 1")
    source, overrides = split_args(args.config)
    cfg = load_config(source, overrides)
    grid, info = preview_grid(cfg, args.images, args.copies, args.seed)
    zoom = args.zoom or max(1, 96 // max(info["image_shape"][1:]))
    image = Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid)
    image = image.resize((image.width * zoom, image.height * zoom), Image.NEAREST)
    try:
        image.save(args.out)
    except (OSError, ValueError) as exc:
        raise UserError(f"--out {args.out}: cannot write the PNG ({exc})") from None
    info.update(out=str(args.out), zoom=zoom, size=[image.width, image.height])
    if args.json:
        emit_json(info)
    else:
        print(f"wrote {args.out}: {info['images']} images x (original + {info['copies']} copies), "
              f"{info['augment']}")
    return 0
