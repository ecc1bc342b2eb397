"""Fine-tuning vs training from scratch (issue 17, seeds/004 "don't be a hero"):

    pretrain   the cs231n ConvNet (recipe convnet-cifar10) on CIFAR-10 classes 0-4
               (airplane automobile bird cat deer; 25,000 images, 2,500 of them for validation)
    task       classes 5-9 (dog frog horse ship truck) with 500 training images per class
               (600 per class drawn with a fixed seed, 500 of them carved off for validation),
               tested on all 5,000 test images of those classes
    scratch    the same network and recipe from random weights, FREEZE + EPOCHS epochs
    fine-tune  fastai's fine_tune(EPOCHS, base_lr, freeze_epochs=FREEZE, lr_mult=100) as two runs:
               1. model.init_from=PRETRAINED model.freeze=[body]: only the new 5-class head trains,
                  FREEZE epochs of one-cycle at base_lr
               2. model.init_from=PHASE1, nothing frozen: EPOCHS epochs of one-cycle at base_lr/2,
                  with per-layer rates spread geometrically from 1/lr_mult (first layer) to 1
                  (the head), fastai's slice(base_lr/lr_mult, base_lr) as optim.layer_lr

Every run is a normal cnnlab run directory under OUT/runs; the scores are the test accuracy
of each run's best-validation weights, mean and standard deviation over the seeds.

    python benchmarks/finetune_cifar.py --out /tmp/finetune [--archive ../shared/datasets/cifar10-jpeg.tar.gz]
        [--pretrain-epochs 10] [--epochs 12] [--freeze-epochs 3] [--seeds 0 1 2] [--dry-run] [--json]

``--dry-run`` prints the ``cnnlab train`` commands instead (the same runs, by hand).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

RECIPE = "convnet-cifar10"
LOW, HIGH = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
PER_CLASS, VAL = 600, 500  # task: 600 per class drawn, 500 of the 3,000 for validation -> ~500/class


def prepare(archive: str, out: Path) -> tuple[Path, Path]:
    """OUT/cifar-0-4.npz (all of classes 0-4) and OUT/cifar-5-9-600.npz (600 per class of 5-9)."""
    low, high = out / "cifar-0-4.npz", out / f"cifar-5-9-{PER_CLASS}.npz"
    if low.is_file() and high.is_file():
        return low, high
    from cnnlab.config import load_config
    from cnnlab.data import load_data

    cfg = load_config(RECIPE, [f"data.path={archive}", "data.val_size=0"])
    splits = load_data(cfg.data, 0)
    classes = list(splits.classes)
    rng = np.random.default_rng(0)
    for path, digits, per_class in ((low, LOW, None), (high, HIGH, PER_CLASS)):
        arrays = {}
        for split, data in (("train", splits.train), ("test", splits.test)):
            labels = data.labels.numpy()
            keep = []
            for c in digits:
                idx = np.flatnonzero(labels == c)
                if split == "train" and per_class is not None:
                    idx = np.sort(rng.choice(idx, per_class, replace=False))
                keep.append(idx)
            keep = np.sort(np.concatenate(keep))
            arrays[f"x_{split}"] = data.images.numpy()[keep]
            arrays[f"y_{split}"] = np.searchsorted(np.array(digits), labels[keep]).astype(np.int64)
        np.savez(path, **arrays, classes=np.array([classes[c] for c in digits]))
    return low, high


def even_mults(n: int, lr_mult: float) -> dict[int, float]:
    """fastai's even_mults(lr/lr_mult, lr, n) as multipliers of lr: geometric, last = 1."""
    return {i: round(lr_mult ** (-(n - 1 - i) / (n - 1)), 6) for i in range(n - 1)} if n > 1 else {}


def plan(args, low: Path, high: Path) -> list[dict]:
    """Every run as (name, overrides); PRE and PHASE1 stand for those runs' directories."""
    runs_dir = f"runs_dir={args.out / 'runs'}"
    task = [f"data.source=npz", f"data.path={high}", f"data.val_size={VAL}", runs_dir]
    lr = args.lr
    mults = json.dumps(even_mults(4, args.lr_mult)).replace('"', "")  # convnet: conv1-3, fc
    steps = [{"name": "pretrain", "seed": 0, "overrides": [
        "name=pretrain-0-4", "data.source=npz", f"data.path={low}", "data.val_size=2500", runs_dir,
        f"train.epochs={args.pretrain_epochs}"]}]
    for seed in args.seeds:
        steps += [
            {"name": "scratch", "seed": seed, "overrides": [
                f"name=scratch-s{seed}", f"seed={seed}", *task, f"train.epochs={args.freeze_epochs + args.epochs}"]},
            {"name": "phase1", "seed": seed, "overrides": [
                f"name=head-s{seed}", f"seed={seed}", *task, "model.init_from=PRE", "model.freeze=[body]",
                f"optim.lr={lr}", f"train.epochs={args.freeze_epochs}"]},
            {"name": "finetune", "seed": seed, "overrides": [
                f"name=finetune-s{seed}", f"seed={seed}", *task, "model.init_from=PHASE1",
                f"optim.lr={lr / 2}", f"optim.layer_lr={mults}", f"train.epochs={args.epochs}"]},
        ]
    return steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archive", default="../shared/datasets/cifar10-jpeg.tar.gz")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pretrain-epochs", type=int, default=10)
    p.add_argument("--epochs", type=int, default=12, help="fine-tuning epochs after the head-only ones")
    p.add_argument("--freeze-epochs", type=int, default=3, help="head-only epochs (fastai: freeze_epochs)")
    p.add_argument("--lr", type=float, default=0.04, help="base lr (the recipe's)")
    p.add_argument("--lr-mult", type=float, default=100.0, help="fastai lr_mult: head lr / first-layer lr")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--dry-run", action="store_true", help="print the cnnlab train commands")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    low, high = (args.out / "cifar-0-4.npz", args.out / f"cifar-5-9-{PER_CLASS}.npz") if args.dry_run \
        else prepare(args.archive, args.out)
    steps = plan(args, low, high)
    if args.dry_run:
        print(f"# the data: python benchmarks/finetune_cifar.py --out {args.out} (writes {low.name}, {high.name})")
        for s in steps:
            print(f"cnnlab train {RECIPE} " + " ".join(f"'{o}'" if "{" in o or "[" in o else o for o in s["overrides"]))
        return

    import cnnlab

    done: dict[tuple[str, int], object] = {}
    started = time.perf_counter()
    for s in steps:
        pre = done[("pretrain", 0)].path if ("pretrain", 0) in done else None
        phase1 = done.get(("phase1", s["seed"]))
        overrides = [o.replace("=PRE", f"={pre}").replace("=PHASE1", f"={phase1.path if phase1 else ''}")
                     for o in s["overrides"]]
        t = time.perf_counter()
        run = cnnlab.train(RECIPE, *overrides, progress=False, quiet=True)
        done[(s["name"], s["seed"])] = run
        print(f"{s['name']:<9} seed {s['seed']}: test accuracy {100 * (1 - run.test_error):.2f}%  "
              f"({time.perf_counter() - t:.0f} s, {run.path})", flush=True)
    scores = {kind: [1 - done[(kind, seed)].test_error for seed in args.seeds] for kind in ("scratch", "finetune")}
    result = {"seeds": args.seeds, "pretrain_test_accuracy": 1 - done[("pretrain", 0)].test_error,
              "minutes": (time.perf_counter() - started) / 60,
              **{kind: {"test_accuracy": v, "mean": statistics.mean(v),
                        "std": statistics.stdev(v) if len(v) > 1 else 0.0} for kind, v in scores.items()}}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for kind in ("scratch", "finetune"):
            r = result[kind]
            print(f"{kind:<9} mean test accuracy {100 * r['mean']:.2f}% +- {100 * r['std']:.2f} over seeds "
                  f"{args.seeds} ({', '.join(f'{100 * a:.2f}' for a in r['test_accuracy'])})")
        print(f"in {result['minutes']:.1f} min")


if __name__ == "__main__":
    main()
