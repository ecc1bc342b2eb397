"""Random vs grid vs TPE on the same budget (seeds/002, Bergstra & Bengio 2012): the bundled
``samplers-mnist`` search (softmax regression on MNIST, lr and L2 on log scales, 9 trials each)
repeated with 3 study seeds per sampler; the table gives the best validation accuracy per
repeat, its mean, and how many distinct learning rates each sampler tried (a 3 x 3 grid tries 3).

    python benchmarks/search_samplers.py [--repeats 3] [--samplers random grid tpe] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run(sampler: str, seed: int, folder: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "cnnlab", "search", "samplers-mnist", "--sampler", sampler,
                          "--seed", str(seed), "--study", f"{sampler}-{seed}", "--dir", str(folder / f"{sampler}-{seed}"),
                          "--json", "--quiet"], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout)
    trials = [t for t in result["stages"][-1]["trials"] if t["state"] == "complete"]
    return {"best": max(t["value"] for t in trials), "trials": len(trials),
            "distinct_lr": len({round(t["values"]["optim.lr"], 12) for t in trials})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samplers", nargs="+", default=["random", "grid", "tpe"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    table = {}
    with tempfile.TemporaryDirectory() as tmp:
        for sampler in args.samplers:
            table[sampler] = [run(sampler, seed, Path(tmp)) for seed in range(args.repeats)]
    if args.json:
        print(json.dumps(table, indent=2))
        return
    print("| sampler | best val_acc per repeat | mean | distinct lr values per repeat |")
    print("|---|---|---|---|")
    for sampler, rows in table.items():
        bests = [r["best"] for r in rows]
        print(f"| {sampler} | {', '.join(f'{b:.4f}' for b in bests)} | {statistics.mean(bests):.4f} | "
              f"{', '.join(str(r['distinct_lr']) for r in rows)} |")


if __name__ == "__main__":
    main()
