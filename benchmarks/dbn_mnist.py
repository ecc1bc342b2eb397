"""DBN pre-training vs random init (issue 18, seeds/001): the recipe ``dbn-mnist`` (stacked RBMs
pre-train the sigmoid MLP 784-500-500-10, then SGD fine-tunes it) against the same recipe with
``pretrain.method=none`` (the same MLP, the same fine-tuning, from its Glorot init), per seed.

    python benchmarks/dbn_mnist.py --out /tmp/dbn [--seeds 0 1 2] [KEY=VALUE ...] [--json]

Every run is a normal cnnlab run directory under OUT/runs; the score is the test error of each
run's best-validation weights (what `cnnlab train` prints), mean and standard deviation over the
seeds. Overrides apply to both arms (e.g. ``train.epochs=3 pretrain.epochs=1``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

RECIPE = "dbn-mnist"
ARMS = {"pretrained": [], "random init": ["pretrain.method=none"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--json", action="store_true")
    p.add_argument("overrides", nargs="*", help="KEY=VALUE for both arms")
    args = p.parse_args()
    import cnnlab

    errors: dict[str, list[float]] = {arm: [] for arm in ARMS}
    minutes: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for seed in args.seeds:
        for arm, extra in ARMS.items():
            started = time.perf_counter()
            run = cnnlab.train(RECIPE, f"runs_dir={args.out / 'runs'}", f"seed={seed}", *args.overrides, *extra,
                               progress=False, quiet=True)
            errors[arm].append(100 * run.test_error)
            minutes[arm].append((time.perf_counter() - started) / 60)
            print(f"seed {seed} {arm:<11}: test error {errors[arm][-1]:.2f}%  "
                  f"({minutes[arm][-1]:.1f} min, {run.path})", flush=True)
    summary = {arm: {"test_error_percent": v, "mean": statistics.mean(v),
                     "std": statistics.stdev(v) if len(v) > 1 else 0.0,
                     "minutes_per_run": statistics.mean(minutes[arm])} for arm, v in errors.items()}
    if args.json:
        print(json.dumps({"recipe": RECIPE, "seeds": args.seeds, "overrides": args.overrides, **summary}))
    for arm, s in summary.items():
        print(f"{arm:<11}: test error {s['mean']:.2f}% +- {s['std']:.2f} over seeds {args.seeds} "
              f"({s['minutes_per_run']:.1f} min per run)")


if __name__ == "__main__":
    main()
