"""Combine trained runs into an ensemble and evaluate it on their shared test split.

  cnnlab ensemble runs/network3-a runs/network3-b runs/network3-c       mean of the softmax outputs
  cnnlab ensemble RUN... --method vote --json                           majority vote, machine-readable

Each member's test error is shown beside the ensemble's. The members must have the same test
images and classes (their data sections may differ in preprocessing and augmentation).
"""

from __future__ import annotations

from cnnlab.cli import emit_json

NAME = "ensemble"
HELP = "test error of an ensemble of runs (mean softmax or majority vote) beside each member's"


def add_arguments(p) -> None:
    p.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="run directories (members)")
    p.add_argument("--method", default="mean", choices=["mean", "vote"],
                   help="mean: average the members' class probabilities (default); vote: majority vote")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from cnnlab.train.ensemble import ensemble_runs

    result = ensemble_runs(args.run_dirs, args.method, args.checkpoint, args.device)
    if args.json:
        emit_json(result)
        return 0
    width = max(len(m["run_dir"]) for m in result["members"])
    for m in result["members"]:
        print(f"  {m['run_dir']:<{width}}  test error {100 * m['test_error']:6.2f}%")
    errors = [m["test_error"] for m in result["members"]]
    print(f"ensemble of {len(errors)} ({result['method']}): test error {100 * result['test_error']:.2f}% "
          f"on {result['test_examples']} images (members: best {100 * min(errors):.2f}%, "
          f"mean {100 * sum(errors) / len(errors):.2f}%)")
    return 0
