"""The search's cost per trial, side by side with running the same configs one after another.

1. ``cnnlab search`` runs N trials (1 worker) in a fresh study directory;
2. the reference: ``cnnlab train TRIAL/config.yaml`` for each of those trials' configs, one after
   another (what a user's shell loop does), each in a fresh run directory;
3. the search again in another fresh directory (the same trials: the random sampler draws trial
   k's values from (seed, k)), so background load hits both sides alike;
4. ``cnnlab search --workers 2`` in a third directory: throughput of 2 workers vs 1 on this
   machine (each worker gets cores // 2 torch threads).

Reported: wall time of each, search / reference (goal <= 1.05: the search costs at most 5%
more than the loop it replaces) and 1-worker / 2-worker time.

    python benchmarks/search.py [--trials 6] [--json] [KEY=VALUE...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

SEARCH = """
base: lenet5-mnist
overrides: [model=logreg, monitor.sanity_at_start=false, device=cpu]
seed: 0
space:
  optim.lr: {log_uniform: [1.0e-3, 1.0e-1]}
  optim.l2: {log_uniform: [1.0e-6, 1.0e-3]}
stages: [{trials: TRIALS, train.epochs: 1}]
"""


def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def search(folder: Path, spec: Path, overrides: list[str], env: dict, workers: int = 1) -> float:
    return timed([sys.executable, "-m", "cnnlab", "search", str(spec), "--dir", str(folder), "--quiet",
                  "--workers", str(workers), *overrides], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="extra overrides for every trial")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = tmp / "bench.yaml"
        spec.write_text(SEARCH.replace("TRIALS", str(args.trials)))
        first = search(tmp / "a", spec, args.overrides, env)
        configs = sorted((tmp / "a" / "stage1" / "trials").glob("*/config.yaml"))
        started = time.perf_counter()
        for i, config in enumerate(configs):
            data = yaml.safe_load(config.read_text())
            data["runs_dir"] = str(tmp / "loop")
            loop_config = tmp / f"loop-{i}.yaml"
            loop_config.write_text(yaml.safe_dump({"base": "none", **data}))
            subprocess.run([sys.executable, "-m", "cnnlab", "train", str(loop_config), "--quiet"], check=True,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        loop = time.perf_counter() - started
        second = search(tmp / "b", spec, args.overrides, env)
        two = search(tmp / "c", spec, args.overrides, env, workers=2)
    one = (first + second) / 2
    result = {"trials": args.trials, "search_1_worker_s": [round(first, 2), round(second, 2)],
              "train_loop_s": round(loop, 2), "search_over_loop": round(one / loop, 3),
              "search_2_workers_s": round(two, 2), "one_over_two_workers": round(one / two, 3),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.trials} trials: search {first:.1f} s / {second:.1f} s, `cnnlab train` loop {loop:.1f} s: "
          f"search / loop = {one / loop:.3f} (goal <= 1.05)")
    print(f"2 workers {two:.1f} s: 1-worker / 2-worker time = {one / two:.3f}")


if __name__ == "__main__":
    main()
