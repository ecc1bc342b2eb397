"""``cnnlab results table``: RESULTS.md from the finished run directories of ``cnnlab results run``.

Every number in the table is read from a run's ``test.json`` (the test error of its
best-validation checkpoint, written when training finished) or a row's ``ensemble.json``; a
flavour with no finished run says so. Nothing here imports torch.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from cnnlab.results.rows import TABLE, ResultRow
from cnnlab.results.runner import ENSEMBLE_FILE, read_summary

NEEDS = {"gpu": "not yet run (a GPU job: hours on a CPU)",
         "jets": "not yet run (needs the 100k-jet sample: `cnnlab data jets`, see README)",
         "cpu": "not yet run"}


@dataclass
class Flavour:
    """The finished runs of one recipe."""

    recipe: str
    runs: list[dict]  # test.json contents, with "seed"

    @property
    def errors(self) -> list[float]:
        return [100 * r["test_error"] for r in self.runs]

    def error_text(self) -> str:
        e = self.errors
        if not e:
            return ""
        if len(e) == 1:
            return f"{e[0]:.2f}% (1 seed)"
        return f"{statistics.mean(e):.2f} ± {statistics.stdev(e):.2f}% ({len(e)} seeds)"

    def epochs_text(self) -> str:
        return "/".join(sorted({str(r["epochs"]) for r in self.runs}))

    def minutes_text(self) -> str:
        return f"{statistics.mean(r['train_seconds'] for r in self.runs) / 60:.1f} min"

    def hardware(self) -> set[str]:
        return {str(r.get("hardware", "?")) for r in self.runs}


def collect(results_dir: str | Path, recipe: str | None) -> Flavour | None:
    """The finished runs under ``results_dir/recipe/seed*`` (unfinished ones are left out)."""
    if recipe is None:
        return None
    runs = []
    for path in sorted(Path(results_dir, recipe).glob("seed*"), key=lambda p: p.name):
        if (path / "test.json").is_file() and path.name[4:].isdigit():
            runs.append({**read_summary(path), "seed": int(path.name[4:])})
    return Flavour(recipe, runs)


def ensemble_text(row: ResultRow, results_dir: str | Path) -> str:
    if not row.ensemble or row.best_recipe is None:
        return ""
    path = Path(results_dir, row.best_recipe, ENSEMBLE_FILE)
    if not path.is_file():
        return ""
    data = json.loads(path.read_text(encoding="utf-8"))
    return f"; ensemble of {len(data['members'])}: **{100 * data['test_error']:.2f}%**"


def cell(flavour: Flavour | None, row: ResultRow, extra: str = "") -> str:
    if flavour is None:
        return "—"
    if not flavour.runs:
        return f"{NEEDS[row.needs_of(flavour.recipe)]}: `cnnlab results run {flavour.recipe}`"
    return f"{flavour.error_text()}, {flavour.epochs_text()} ep, {flavour.minutes_text()}{extra}"


def render(results_dir: str | Path = "results") -> str:
    """The whole RESULTS.md."""
    lines = [
        "# Results: the seeds' experiments, reproduced and beaten",
        "",
        "Written by `cnnlab results table` from the runs that `cnnlab results run` made under "
        f"`{results_dir}/` (one run directory per recipe and seed). Each cnnlab cell: test error of the "
        "best-validation checkpoint, mean ± sample standard deviation over seeds, the epochs trained, and "
        "the mean training time per run. *as the seed did it*: the `-seed` recipe, the seed's settings as "
        "written (each recipe's comment states its deviations); *cnnlab best*: the same network trained "
        "the way cnnlab would (better optimiser, schedule, preprocessing, augmentation). Recipes: "
        "`cnnlab train RECIPE seed=K` trains one; `cnnlab results run ROW` trains a row.",
        "",
        "| experiment | seed | seed's result | reference | cnnlab, as the seed did it | cnnlab best | row command |",
        "|---|---|---|---|---|---|---|",
    ]
    hardware: set[str] = set()
    detail: list[str] = []
    for row in TABLE:
        seed_flavour, best_flavour = collect(results_dir, row.seed_recipe), collect(results_dir, row.best_recipe)
        for flavour in (seed_flavour, best_flavour):
            if flavour is None:
                continue
            hardware |= flavour.hardware()
            for r in flavour.runs:
                detail.append(f"| `{flavour.recipe}` | {r['seed']} | {100 * r['test_error']:.2f}% | {r['best_epoch']} "
                              f"| {r['epochs']} | {r['train_seconds'] / 60:.1f} | {r.get('hardware', '?')} "
                              f"| {r.get('finished', '?')} |")
        lines.append(f"| {row.experiment} | {row.source} | {row.seed_result} | {row.reference or '—'} "
                     f"| {cell(seed_flavour, row)} | {cell(best_flavour, row, ensemble_text(row, results_dir))} "
                     f"| `cnnlab results run {row.key}` |")
    lines += ["", f"Hardware of the runs: {', '.join(sorted(hardware)) or 'none yet'}.", "",
              "## Every run", "",
              "| recipe | seed | test error | best epoch | epochs | train minutes | hardware | finished |",
              "|---|---|---|---|---|---|---|---|", *detail, ""]
    return "\n".join(lines)
