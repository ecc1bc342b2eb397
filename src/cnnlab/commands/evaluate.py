"""Evaluate a trained run on its test split: test error, per-class accuracy, confusion matrix."""

from __future__ import annotations

from cnnlab.cli import emit_json
from cnnlab.physics.metrics import format_report

NAME = "evaluate"
HELP = "test error, per-class accuracy and confusion matrix of a run"


def add_arguments(p) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--device", default="auto")
    p.add_argument("--tta", nargs="?", const="flip_translate", default=None,
                   choices=["none", "flip", "flip_translate"],
                   help="test-time augmentation: logits averaged over flipped and 1-pixel translated views "
                        "(airbench94; --tta alone = flip_translate); default: the run's train.tta")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def evaluate_run(run_dir: str, checkpoint: str = "best", device: str = "auto", tta: str | None = None) -> dict:
    """:func:`cnnlab.train.inference.evaluate_run` (imported when called: --help stays torch-free)."""
    from cnnlab.train.inference import evaluate_run as evaluate

    return evaluate(run_dir, checkpoint, device, tta)


def run(args) -> int:
    result = evaluate_run(args.run_dir, args.checkpoint, args.device, args.tta)
    if args.json:
        emit_json(result)
        return 0
    tta = "" if result["tta"] == "none" else f", test-time augmentation {result['tta']}"
    print(f"{result['run_dir']} ({result['checkpoint']} checkpoint, epoch {result['epoch']}{tta})")
    print(f"test error {100 * result['test_error']:.2f}%  accuracy {100 * result['test_accuracy']:.2f}%  "
          f"loss {result['test_loss']:.4f}  on {result['test_examples']} images")
    width = max(len(c) for c in result["classes"])
    print("per-class accuracy:")
    for name, acc in result["per_class_accuracy"].items():
        print(f"  {name:>{width}}  {100 * acc:6.2f}%")
    print("confusion matrix (rows: true class, columns: predicted):")
    for name, row in zip(result["classes"], result["confusion_matrix"]):
        print(f"  {name:>{width}} " + " ".join(f"{v:5d}" for v in row))
    if "physics" in result:  # two classes: ROC/AUC/rejection, vs classic jet discriminants
        print(format_report(result["physics"]))
    return 0
