"""Training reports: one self-contained HTML page for one or several run directories.

    out = build_report(["runs/a", "runs/b"], "report.html")

Per run: loss curves (data and total loss), train vs validation error, learning rate,
per-layer gradient norms and update ratios, dead/saturated units, first-layer filters,
feature maps of one test image, confusion matrix, most confidently wrong test images, ROC/AUC
for two classes, and the sanity findings of its start. With several runs: an overlaid error
plot and the table of final numbers (seeds/000 fig. 2.8, "All results").
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path

from tqdm.auto import tqdm

from cnnlab.atomic import atomic_write, check_output
from cnnlab.report.collect import RunData, collect_run
from cnnlab.report.figures import RUN_FIGURES, error_comparison
from cnnlab.report.html import figure_html, findings_html, page, results_table


@dataclass
class Report:
    path: Path
    results: list[dict]
    figures: int

    def to_dict(self) -> dict:
        return {"out": str(self.path), "figures": self.figures, "runs": self.results}


def run_section(run: RunData) -> tuple[str, int]:
    """HTML of one run and the number of plots in it."""
    cfg = run.cfg
    parts = [f'<h2 id="{escape(run.name)}">{escape(run.name)}</h2>',
             f"<p><code>{escape(str(run.path))}</code> — model <b>{escape(str(cfg.model.arch))}</b>, "
             f"{escape(cfg.optim.name)} lr {cfg.optim.lr:g}, data {escape(cfg.data.source)}, "
             f"{len(run.classes)} classes, checkpoint of epoch {run.trained.checkpoint_epoch}.</p>",
             "<h3>Sanity checks at the start</h3>", findings_html(run.sanity)]
    shown = 0
    for spec in RUN_FIGURES:
        fig = spec.make(run)
        shown += fig is not None
        parts.append(f"<h3>{escape(spec.title)}</h3>")
        parts.append(figure_html(spec.title, fig, (spec.make.__doc__ or "").strip().replace("\n    ", " "),
                                 spec.missing))
    return "\n".join(parts), shown


def build_report(run_dirs: list[str | Path], out: str | Path, *, checkpoint: str = "best",
                 device: str = "auto", show_progress: bool = False) -> Report:
    out = Path(out)
    check_output(out, "the report", "give --out FILE.html elsewhere", runs=run_dirs,
                 own=[Path(p) / "report.html" for p in run_dirs])
    runs = []
    for path in tqdm(run_dirs, desc="evaluating runs", unit="run", file=sys.stderr, disable=not show_progress):
        runs.append(collect_run(path, checkpoint, device))
    sections, figures = [], 0
    for run in tqdm(runs, desc="plotting", unit="run", file=sys.stderr, disable=not show_progress):
        html, shown = run_section(run)
        sections.append(html)
        figures += shown
    results = [{**run.final_numbers(), **run.extra} for run in runs]
    body = ["<h2>All results</h2>", results_table(results)]
    if len(runs) > 1:
        body.append(figure_html("Error per epoch, all runs", error_comparison(runs),
                                "Validation (solid) and training (dashed) error of every run."))
        figures += 1
    body.append("<p>Runs: " + ", ".join(f'<a href="#{escape(r.name)}">{escape(r.name)}</a>' for r in runs) + "</p>")
    title = f"cnnlab report: {runs[0].name}" if len(runs) == 1 else f"cnnlab report: {len(runs)} runs"
    with atomic_write(out, "w") as f:  # a failure leaves an earlier report as it was
        f.write(page(title, body + sections))
    return Report(out, results, figures)


__all__ = ["Report", "RunData", "build_report", "collect_run"]
