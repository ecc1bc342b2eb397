"""Write one self-contained HTML report (plots embedded, no server) for one or more runs:
loss curves (data and total loss), train vs validation error, learning rate, per-layer gradient
norms and update ratios, dead/saturated units, first-layer filters, feature maps, confusion
matrix, most confidently wrong test images, ROC/AUC for two classes; with several runs an
overlaid error plot and a table of final numbers. The test split is evaluated with the run's
best checkpoint (--checkpoint last for the last one).

Default output: RUN_DIR/report.html for one run, ./report.html for several.

Given a search's study directory (`cnnlab search`), the page is the search's: per stage, the
scatter of each pair of log-scale parameters coloured by the metric, the metric against each
parameter, best so far per trial, border warnings, the top-10 trials linking to their runs, and
parameter importances. A study kept in a database needs --storage URL.
"""

from __future__ import annotations

from pathlib import Path

from cnnlab.cli import emit_json

NAME = "report"
HELP = "HTML report of one or more runs (plots, filters, confusion matrix, comparison table)"


def add_arguments(p) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", help="output HTML file (default: RUN_DIR/report.html, or ./report.html "
                                 "for several runs)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print the output path and final numbers as JSON")
    p.add_argument("--storage", help="a search study kept in a database: its Optuna storage URL")
    p.add_argument("--figures", metavar="DIR", help="a search's report: also write each plot as a PNG in DIR")


def run(args) -> int:
    from cnnlab.report import build_report

    if any((Path(d) / "search.yaml").is_file() for d in args.run_dirs):
        return _search_report(args)

    out = args.out or (Path(args.run_dirs[0]) / "report.html" if len(args.run_dirs) == 1 else "report.html")
    report = build_report(args.run_dirs, out, checkpoint=args.checkpoint, device=args.device,
                          show_progress=True)
    if args.json:
        emit_json(report.to_dict())
        return 0
    for row in report.results:
        print(f"{row['run']}: test error {100 * row['test_error']:.2f}%  "
              f"(epoch {row['checkpoint_epoch']} of {row['epochs']})")
    print(f"wrote {report.path} ({report.figures} plots)")
    return 0


def _search_report(args) -> int:
    from cnnlab.errors import UserError
    from cnnlab.report.search import build_search_report

    if len(args.run_dirs) != 1:
        raise UserError("a search's study directory is reported on its own: give one STUDY_DIR")
    report = build_search_report(args.run_dirs[0], args.out, storage=args.storage, figures_dir=args.figures)
    if args.json:
        emit_json(report.to_dict())
    else:
        print(f"wrote {report.path} ({report.stages} stage(s), {report.figures} plots)")
    return 0
