"""Loader throughput on CIFAR-10: images/s of load + normalise + augment (crop, flip).

Two contenders, same data, same work, same run:

- **cnnlab**: :class:`cnnlab.data.DeviceLoader` -- the training split stored on the device as
  uint8, a batch is an index gather, standardised on the fly (per-channel mean/std fitted on
  train) and augmented as a whole batch (random crop after 4-pixel reflect padding, random
  horizontal flip);
- **DataLoader**: the conventional ``torch.utils.data.DataLoader`` over a ``Dataset`` whose
  ``__getitem__`` converts one uint8 image to float, standardises it, pads, crops and flips it
  (what ``torchvision.transforms`` do, written with torch ops), default collate, then
  ``.to(device)``.

Passes alternate (DataLoader, cnnlab, DataLoader, cnnlab, ...) so background load hits both
alike; the best pass of each is reported, with the ratio cnnlab / DataLoader (goal: >= 5x on
CPU, >= 20x on a GPU). The data is the image-folder archive of CIFAR-10 (decoded once, then
cached) or, with ``--source cifar10``, the official batches.

    python benchmarks/loader.py [--data ../shared/datasets/cifar10-jpeg.tar.gz] [--images 10000]
        [--batch-size 512] [--workers 0] [--passes 2] [--device auto] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab.config import load_config
from cnnlab.data import load_data
from cnnlab.train.device import resolve_device
from cnnlab.train.experiment import build_experiment

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpeg.tar.gz"


class PerImageDataset(torch.utils.data.Dataset):
    """The conventional pipeline: one image at a time, transforms in ``__getitem__``."""

    def __init__(self, images, labels, mean, std, padding=4):
        self.images, self.labels = images, labels
        self.mean, self.std, self.padding = mean.view(-1, 1, 1), std.view(-1, 1, 1), padding

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = (self.images[i].float() - self.mean) / self.std
        p = self.padding
        x = F.pad(x[None], (p, p, p, p), mode="reflect")[0]
        dy, dx = torch.randint(0, 2 * p + 1, (2,)).tolist()
        x = x[:, dy:dy + self.images.shape[2], dx:dx + self.images.shape[3]]
        if torch.rand(()) < 0.5:
            x = x.flip(2)
        return x, self.labels[i]


def time_pass(batches, device) -> tuple[float, float]:
    """(wall, CPU) seconds to draw every batch (synchronised on a GPU, so the work is done).

    CPU seconds are this process's: comparable between contenders only without DataLoader
    workers, but robust to other jobs on a shared machine, unlike wall time."""
    started, cpu = time.perf_counter(), time.process_time()
    checksum = torch.zeros((), device=device)
    for x, _ in batches:
        checksum += x[0, 0, 0, 0]  # touch each batch, as a training step would
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="CIFAR-10 image-folder archive or folder")
    parser.add_argument("--source", default="folder", help="data source (folder, cifar10, ...)")
    parser.add_argument("--images", type=int, default=10_000, help="training images per pass")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--passes", type=int, default=2, help="timed passes per contender")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: per-image ops only lose from more)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    # cnnlab's loader as training builds it (the one assembly path): the images beyond --images
    # are carved off as the validation split, so the experiment's train split has exactly those.
    overrides = [f"data.source={args.source}", f"data.path={args.data}", "data.normalize=standardize",
                 "data.augment=[{crop: {padding: 4, mode: reflect}}, flip]", f"train.batch_size={args.batch_size}",
                 f"device={device}", "model=logreg"]
    total = len(load_data(load_config(None, [*overrides, "data.val_size=0"]).data).train)
    cfg = load_config(None, [*overrides, f"data.val_size={max(0, total - args.images)}"])
    experiment = build_experiment(cfg, [])
    train, preprocess, cnnlab_loader = experiment.splits.train, experiment.preprocess, experiment.loader
    mean, std = preprocess.steps[0].mean.flatten().cpu(), preprocess.steps[0].std.flatten().cpu()
    torch_loader = torch.utils.data.DataLoader(
        PerImageDataset(train.images.cpu(), train.labels.cpu(), mean, std), batch_size=args.batch_size, shuffle=True,
        num_workers=args.workers, persistent_workers=args.workers > 0)

    def torch_batches():
        for x, y in torch_loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    times = {"dataloader": [], "cnnlab": []}
    time_pass(cnnlab_loader.iterate(torch.Generator().manual_seed(0)), device)  # warm-up
    for p in range(args.passes):
        times["dataloader"].append(time_pass(torch_batches(), device))
        times["cnnlab"].append(time_pass(cnnlab_loader.iterate(torch.Generator().manual_seed(p)), device))
    rate = {k: len(train) / min(wall for wall, _ in v) for k, v in times.items()}
    cpu_rate = {k: len(train) / min(cpu for _, cpu in v) for k, v in times.items()}
    result = {
        "images": len(train), "batch_size": args.batch_size, "device": str(device),
        "threads": args.threads, "workers": args.workers, "passes": args.passes,
        "cnnlab_images_per_s": rate["cnnlab"], "dataloader_images_per_s": rate["dataloader"],
        "ratio": rate["cnnlab"] / rate["dataloader"],
        "cpu_ratio": cpu_rate["cnnlab"] / cpu_rate["dataloader"] if args.workers == 0 else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__, "machine": platform.machine(), "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{len(train)} CIFAR-10 images, batch {args.batch_size}, {device}, {args.threads} threads")
        print(f"  cnnlab DeviceLoader       {rate['cnnlab']:12,.0f} images/s")
        print(f"  torch DataLoader ({args.workers} wkr) {rate['dataloader']:12,.0f} images/s")
        print(f"  ratio                     {result['ratio']:12.1f}x")
        if result["cpu_ratio"] is not None:
            print(f"  ratio of CPU time per image {result['cpu_ratio']:10.1f}x (robust to other jobs)")
        if result["load_average"]:
            print(f"  load average during the run: {result['load_average'][0]:.1f}")


if __name__ == "__main__":
    main()
