"""One training epoch of cnnlab vs a plain hand-written PyTorch loop (LeNet-5 on MNIST by default).

Same model (cnnlab's builder for the recipe's arch), same data (the recipe's training split),
same batch size, same optimizer (SGD, Nesterov momentum 0.9) and the same per-step work (forward,
cross-entropy, backward, step; augmentation and weight decay off on both sides). The plain loop
is what one writes by hand: the whole training set as a normalised float tensor in the default
NCHW layout, fp32, a random permutation per epoch, index slices, no per-step host sync. cnnlab
runs with its defaults for the device (``train.memory_format: auto`` = channels_last for conv
nets on the CPU). Epochs alternate between the two (plain, cnnlab, plain, cnnlab, ...) so that
background load hits both alike; the median epoch time of each is reported with the ratio
cnnlab / plain (goal: <= 0.75 on this CPU: the framework picks what the hand-written loop does not).

    python benchmarks/lenet_cpu.py [--recipe NAME] [--epochs 3] [--batch-size 64] [--threads 2] [--json] [KEY=VALUE...]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from cnnlab.config import load_config
from cnnlab.models import build_model
from cnnlab.train import start_run
from cnnlab.train.callbacks import call_hook


def plain_epoch(model, optimizer, images, labels, batch_size, generator) -> None:
    model.train()
    order = torch.randperm(len(labels), generator=generator)
    for start in range(0, len(labels), batch_size):
        index = order[start:start + batch_size]
        loss = F.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def main(recipe: str | None = None, batch_size: int = 64, defaults: tuple[str, ...] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default=recipe, help="recipe or config (default: the main job, LeNet-5/MNIST)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per contender")
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", action="store_true")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="extra cnnlab config overrides, e.g. monitor.layer_stats=false")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as runs:
        cfg = load_config(args.recipe, [*defaults, f"runs_dir={runs}", "device=cpu", f"train.batch_size={args.batch_size}",
                                        "optim=sgd", "optim.momentum=0.9", "optim.nesterov=true", "schedule=constant",
                                        "optim.l2=0", "data.augment=[]", f"train.epochs={args.epochs}", *args.overrides])
        trainer = start_run(cfg, show_progress=False, echo=lambda line: None)
        # cnnlab as a user gets it: the default callbacks (sanity probe, layer monitor) included.
        call_hook(trainer.callbacks, "on_train_start", trainer)

        # The plain loop's data: the same training images, normalised once, as float32.
        images = trainer.preprocess(trainer.train_data.images).contiguous()
        labels = trainer.train_data.labels.clone()
        torch.manual_seed(0)
        model = build_model(cfg.model, trainer.splits.input_shape, trainer.splits.num_classes)
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.optim.lr, momentum=0.9, nesterov=True)
        generator = torch.Generator().manual_seed(0)

        plain_times, cnnlab_times = [], []
        plain_epoch(model, optimizer, images[:2048], labels[:2048], args.batch_size, generator)  # warm-up
        for _ in range(args.epochs):
            started = time.perf_counter()
            plain_epoch(model, optimizer, images, labels, args.batch_size, generator)
            plain_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            trainer.train_epoch()
            trainer.epoch += 1
            cnnlab_times.append(time.perf_counter() - started)

    plain, ours = statistics.median(plain_times), statistics.median(cnnlab_times)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "recipe": cfg.name, "memory_format": str(trainer.speed.memory_format), "batch_size": args.batch_size, "epochs": args.epochs, "train_images": len(labels),
        "plain_s_per_epoch": plain, "cnnlab_s_per_epoch": ours, "ratio_cnnlab_over_plain": ours / plain,
        "plain_epochs_s": plain_times, "cnnlab_epochs_s": cnnlab_times,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"machine: {result['machine']}")
        print(f"{cfg.name} ({cfg.model.arch}, memory format {trainer.speed.memory_format}), {len(labels)} images "
              f"per epoch, batch {args.batch_size}, median of {args.epochs} epochs")
        print(f"  plain PyTorch loop : {plain:6.2f} s/epoch  ({len(labels) / plain:,.0f} images/s)")
        print(f"  cnnlab             : {ours:6.2f} s/epoch  ({len(labels) / ours:,.0f} images/s)")
        print(f"  ratio cnnlab/plain : {ours / plain:.3f}  (goal <= 0.75)")


if __name__ == "__main__":
    main()
