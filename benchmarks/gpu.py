"""The GPU benchmark, ready to run in a few minutes on one H100/H200 (issue 15):

1. time to 99% validation accuracy, LeNet-5 on MNIST (the main job's recipe, data on the device,
   bf16 autocast, channels_last), against the anchor of 0.76 s (MNIST to 99% on a GTX 1660 Ti);
2. images/s (training steps: forward, backward, update) and peak memory of every zoo model at
   bf16 on its dataset's input shape, synthetic batches;
3. CIFAR-10 to 94%: the ``cifar10-fast`` recipe (airbench94 in cnnlab's terms) on the JPEG copy
   of CIFAR-10, bf16, ``--seeds`` runs: wall time from the first step to the test accuracy
   with test-time augmentation (data loading and decoding excluded, as airbench94 excludes
   them), mean over the seeds, against airbench94's 3.09 s on an A100 (its compiled variant).

    python benchmarks/gpu.py [--device auto|cuda|cpu] [--smoke] [--seeds 3] [--cifar PATH] [--json]

``--smoke`` (run in CI on the CPU) shrinks every part to seconds: it checks the script, not the
machine (the CIFAR-10 part then trains a narrow cifar10-fast on a generated 20-image folder). The device's Python may lack cnnlab's dependencies: the script names what is missing
and how to carry it (wheels) instead of failing with a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
from pathlib import Path

# run from a checkout without installing cnnlab (the device machine): use the repository's src/
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

NEEDED = ("torch", "numpy", "pydantic", "yaml", "tqdm", "PIL", "h5py", "optuna")
ANCHORS = {"mnist_99_s": 0.76, "cifar10_94_s_airbench94_a100": 3.09}
#: zoo model -> input shape (C, H, W) and classes of the dataset it is meant for
SHAPES = {"logreg": (1, 28, 28), "mlp": (1, 28, 28), "lenet5": (1, 28, 28), "network3": (1, 28, 28),
          "convnet": (3, 32, 32), "maxout-convnet": (3, 32, 32), "maxout-net": (3, 32, 32),
          "maxout-goodfellow": (3, 32, 32), "resnet9": (3, 32, 32), "jetnet": (1, 33, 33)}


def missing_modules() -> list[str]:
    out = []
    for name in NEEDED:
        try:
            importlib.import_module(name)
        except ImportError:
            out.append(name)
    return out


def time_to_accuracy(device: str, smoke: bool) -> dict:
    """Train the main job until the validation accuracy reaches the target; wall time from the
    first step (data already on the device, as every cnnlab run)."""
    import cnnlab
    from cnnlab.train.callbacks import Callback

    target = 0.5 if smoke else 0.99

    class StopAtTarget(Callback):
        name = "stop_at_target"

        def __init__(self):
            self.started, self.reached = None, None

        def on_train_start(self, trainer):
            if device.startswith("cuda"):
                import torch
                torch.cuda.synchronize()
            self.started = time.perf_counter()

        def on_epoch_end(self, trainer, row):
            if row["val_acc"] >= target and self.reached is None:
                self.reached = (time.perf_counter() - self.started, row["epoch"])
                return True
            return False

    stop = StopAtTarget()
    overrides = [f"device={device}", "monitor.sanity_at_start=false", "monitor.layer_stats=false",
                 "train.epochs=1" if smoke else "train.epochs=10",
                 "train.precision=bf16" if device.startswith("cuda") else "train.precision=fp32"]
    if smoke:
        overrides += ["data.val_size=55000"]  # 5,000 training images: seconds on a CPU
    with tempfile.TemporaryDirectory() as runs:
        run = cnnlab.train("lenet5-mnist", *overrides, f"runs_dir={runs}", progress=False, quiet=True,
                           callbacks=[stop])
    seconds, epoch = stop.reached or (None, None)
    return {"target": target, "seconds": seconds, "epoch": epoch, "test_error": run.test_error,
            "anchor_s": ANCHORS["mnist_99_s"]}


def run_timer(device: str):
    """A callback timing a run from its first step to its test result (CUDA synchronised)."""
    from cnnlab.train.callbacks import Callback

    def now() -> float:
        if device.startswith("cuda"):
            import torch
            torch.cuda.synchronize()
        return time.perf_counter()

    class RunTimer(Callback):
        name = "benchmark_timer"
        started = seconds = None

        def on_train_start(self, trainer):
            self.started = now()

        def on_train_end(self, trainer, result):
            self.seconds = now() - self.started

    return RunTimer()


def tiny_image_folder(root: Path) -> Path:
    """A 2-class train/test folder of 32x32 PNGs (the smoke run's CIFAR-10 stand-in)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("test", 2)):
        for label in ("a", "b"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def cifar_time_to_94(device: str, smoke: bool, seeds: int, path: str | None) -> dict:
    """cifar10-fast, ``seeds`` runs: seconds from the first step to the TTA test accuracy."""
    import cnnlab

    overrides = [f"device={device}", "monitor.sanity_at_start=false", "monitor.layer_stats=false",
                 "train.precision=bf16" if device.startswith("cuda") else "train.precision=fp32"]
    with tempfile.TemporaryDirectory() as tmp:
        if smoke:  # a narrow network on 20 generated images: seconds on a CPU
            path = str(tiny_image_folder(Path(tmp) / "images"))
            overrides += ["train.epochs=2", "train.batch_size=8", "train.lookahead.start_epochs=1",
                          "model.arch=gelu conv3-8p1 pool2:floor bn:frozen:eps1e-12:m0.4 gelu gap fc scale0.111111"]
        if path:
            overrides.append(f"data.path={path}")
        runs = []
        for seed in range(seeds):
            timer = run_timer(device)
            run = cnnlab.train("cifar10-fast", *overrides, f"seed={seed}", f"runs_dir={tmp}/runs", progress=False,
                               quiet=True, callbacks=[timer])
            runs.append({"seed": seed, "seconds": timer.seconds, "test_acc_tta": run.result.test_acc})
    mean = lambda key: sum(r[key] for r in runs) / len(runs)
    return {"runs": runs, "mean_seconds": mean("seconds"), "mean_test_acc_tta": mean("test_acc_tta"),
            "target": 0.94, "anchor_s": ANCHORS["cifar10_94_s_airbench94_a100"]}


def throughput(device: str, smoke: bool) -> list[dict]:
    """Training images/s and peak memory of each zoo model (synthetic data, bf16 on CUDA)."""
    import torch
    import torch.nn.functional as F

    from cnnlab.models import ModelConfig, build_model
    from cnnlab.train.speed import resolve_memory_format

    dev = torch.device(device)
    batch, steps = (8, 2) if smoke else (512, 30)
    rows = []
    for name, shape in SHAPES.items():
        torch.manual_seed(0)
        model = build_model(ModelConfig(arch=name), shape, 10).to(dev)
        layout = resolve_memory_format("auto", dev, model)
        model = model.to(memory_format=layout)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(batch, *shape, device=dev).contiguous(memory_format=layout)
        y = torch.randint(0, 10, (batch,), device=dev)
        dtype = torch.bfloat16 if dev.type == "cuda" else None

        def step():
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        step()  # warm-up (cuDNN autotuning, allocations)
        if dev.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        for _ in range(steps):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
        rows.append({"model": name, "input": list(shape), "batch": batch,
                     "images_per_s": batch * steps / seconds, "peak_mib": peak})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true", help="seconds-long version (CI, CPU)")
    parser.add_argument("--seeds", type=int, default=None, help="cifar10-fast runs (default 3; smoke 1)")
    parser.add_argument("--cifar", default=None, help="CIFAR-10 folder or archive (default: the recipe's data.path)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    missing = missing_modules()
    if missing:
        print(f"benchmarks/gpu.py: missing Python packages: {', '.join(missing)}. On a machine without "
              f"internet, build wheels elsewhere (pip wheel cnnlab -w wheels/) and install them there "
              f"(pip install --no-index --find-links wheels/ {' '.join(missing)})", file=sys.stderr)
        return 2
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    result = {"device": device, "gpu": gpu, "torch": torch.__version__, "smoke": args.smoke,
              "mnist": time_to_accuracy(device, args.smoke), "models": throughput(device, args.smoke),
              "cifar10_94": cifar_time_to_94(device, args.smoke, args.seeds or (1 if args.smoke else 3),
                                             args.cifar)}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    m = result["mnist"]
    print(f"device {device} ({gpu or 'CPU'}), torch {torch.__version__}{', SMOKE' if args.smoke else ''}")
    reached = f"{m['seconds']:.2f} s (epoch {m['epoch']})" if m["seconds"] is not None else "not reached"
    print(f"LeNet-5/MNIST to {100 * m['target']:.0f}% val acc: {reached}; anchor {m['anchor_s']} s")
    for row in result["models"]:
        peak = f", peak {row['peak_mib']:.0f} MiB" if row["peak_mib"] is not None else ""
        print(f"  {row['model']:18s} {row['images_per_s']:12,.0f} images/s (batch {row['batch']}){peak}")
    c = result["cifar10_94"]
    reached = "reached" if c["mean_test_acc_tta"] >= c["target"] else "NOT reached"
    print(f"CIFAR-10 cifar10-fast over {len(c['runs'])} seed(s): {c['mean_seconds']:.2f} s, test acc with TTA "
          f"{100 * c['mean_test_acc_tta']:.2f}% (94% {reached}); anchor {c['anchor_s']} s (airbench94, A100)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
