"""The report of a search (``cnnlab report STUDY_DIR``): one self-contained HTML page per study.

Per stage: the cs231n scatter for each pair of log-scale parameters (log axes, colour = the
metric: seeds/002's picture of where the good region lies), the metric against each parameter,
the best value so far against the trial number, the border warnings, the ranges it searched,
the top-10 table linking to each trial's run directory and report, and Optuna's parameter
importances (PED-ANOVA). Read from the study's storage, so a running study can be reported too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
import optuna
import yaml
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from optuna.trial import FrozenTrial, TrialState

from cnnlab.atomic import atomic_write
from cnnlab.errors import UserError
from cnnlab.report.html import figure_html, page
from cnnlab.search.ranges import border_warnings
from cnnlab.search.display import short_names
from cnnlab.search.study import Search, counted, ranked_trials
from cnnlab.search.spec import Param, SearchSpec


def is_study_dir(path: str | Path) -> bool:
    return (Path(path) / "search.yaml").is_file()


@dataclass
class StageData:
    index: int
    params: list[Param]
    notes: list[str]
    trials: list[FrozenTrial]  # counted (no surplus), by number
    ranked: list[FrozenTrial]  # complete, best first


def open_search(study_dir: Path, storage: str | None) -> Search:
    """The search of a study directory, on its storage (its journal, or the database given)."""
    data = yaml.safe_load((study_dir / "search.yaml").read_text(encoding="utf-8")) or {}
    name = data.pop("study", None)
    if name is None:
        raise UserError(f"{study_dir / 'search.yaml'}: not written by cnnlab search (no study name)")
    if storage is None and not (study_dir / "study.journal").is_file():
        raise UserError(f"{study_dir}: no study.journal here; the study lives in a database: give --storage URL")
    return Search(SearchSpec.model_validate(data), name, study_dir, storage)


def stage_data(search: Search, i: int) -> StageData | None:
    existing = {s.study_name for s in optuna.get_all_study_summaries(search.storage)}
    if search.study_name(i) not in existing:
        return None
    params, notes = search.stage_params(i)
    study = search.study(i, params)
    trials = sorted(counted(study.get_trials(deepcopy=False)), key=lambda t: t.number)
    return StageData(i, params, notes, trials, ranked_trials(study, search.spec.maximize))


def _values(t: FrozenTrial) -> dict:
    return t.user_attrs.get("values", t.params)


def _finished(stage: StageData) -> list[FrozenTrial]:
    return [t for t in stage.trials if t.state == TrialState.COMPLETE and t.value is not None]


def pair_scatters(spec: SearchSpec, stage: StageData) -> Figure | None:
    """Every pair of log-scale parameters (all numeric pairs when fewer than two are log-scale),
    one point per complete trial, coloured by the metric; the best trial starred."""
    numeric = [p for p in stage.params if p.numeric]
    chosen = [p for p in numeric if p.log]
    chosen = chosen if len(chosen) >= 2 else numeric
    pairs = [(a, b) for i, a in enumerate(chosen) for b in chosen[i + 1:]]
    done = _finished(stage)
    if not pairs or len(done) < 2:
        return None
    fig = Figure(figsize=(5.2 * min(len(pairs), 3), 4.2 * math.ceil(len(pairs) / 3)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(math.ceil(len(pairs) / 3), min(len(pairs), 3))).ravel()
    metric = [t.value for t in done]
    names = short_names(list(spec.space))
    for ax, (a, b) in zip(axes, pairs):
        xs, ys = [_values(t)[a.key] for t in done], [_values(t)[b.key] for t in done]
        points = ax.scatter(xs, ys, c=metric, cmap="viridis", s=28, edgecolors="k", linewidths=0.3)
        best = stage.ranked[0]
        ax.plot([_values(best)[a.key]], [_values(best)[b.key]], "r*", markersize=14, label=f"best {best.value:.4f}")
        ax.set(xlabel=names.get(a.key, a.key), ylabel=names.get(b.key, b.key),
               xscale="log" if a.log else "linear", yscale="log" if b.log else "linear")
        _range_limits(ax.xaxis, a)
        _range_limits(ax.yaxis, b)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.colorbar(points, ax=ax, label=spec.metric)
    for ax in axes[len(pairs):]:
        ax.set_visible(False)
    return fig


def _range_limits(axis, p: Param) -> None:
    """The axis spans the searched range (points hugging an edge show a border problem), with
    labels on the decades only for log ranges."""
    from matplotlib.ticker import NullFormatter

    pad = (p.high / p.low) ** 0.03 if p.log else (p.high - p.low) * 0.03
    low, high = (p.low / pad, p.high * pad) if p.log else (p.low - pad, p.high + pad)
    (axis.axes.set_xlim if axis.axis_name == "x" else axis.axes.set_ylim)(low, high)
    if p.log:
        axis.set_minor_formatter(NullFormatter())


def metric_vs_params(spec: SearchSpec, stage: StageData) -> Figure | None:
    done = _finished(stage)
    if not done:
        return None
    params = stage.params
    fig = Figure(figsize=(4.2 * min(len(params), 3), 3.4 * math.ceil(len(params) / 3)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(math.ceil(len(params) / 3), min(len(params), 3))).ravel()
    names = short_names(list(spec.space))
    for ax, p in zip(axes, params):
        xs = [_values(t)[p.key] for t in done]
        if not p.numeric:
            labels = [yaml.safe_dump(c, default_flow_style=True).strip() for c in p.choices]
            xs = [labels.index(yaml.safe_dump(x, default_flow_style=True).strip()) for x in xs]
            ax.set_xticks(range(len(labels)), labels)
        ax.plot(xs, [t.value for t in done], "o")
        if p.log:
            ax.set_xscale("log")
        if p.numeric:
            _range_limits(ax.xaxis, p)
        ax.set(xlabel=names.get(p.key, p.key), ylabel=spec.metric)
        ax.grid(alpha=0.3)
    for ax in axes[len(params):]:
        ax.set_visible(False)
    return fig


def best_so_far(spec: SearchSpec, stage: StageData) -> Figure | None:
    done = _finished(stage)
    if not done:
        return None
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.subplots()
    numbers, values = [t.number for t in done], [t.value for t in done]
    best = (np.maximum if spec.maximize else np.minimum).accumulate(values)
    ax.plot(numbers, values, "o", alpha=0.5, label="trial")
    ax.step(numbers, best, where="post", color="C3", label="best so far")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="trial", ylabel=spec.metric, title=f"stage {stage.index + 1}")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def importances(stage: StageData, study: optuna.Study) -> dict[str, float] | str:
    """Optuna's PED-ANOVA importances (Watanabe et al. 2023: how much each parameter's
    distribution differs between the top trials and all of them; needs no scikit-learn, unlike
    fANOVA), or why there are none."""
    if len(_finished(stage)) < 4 or len(stage.params) < 2:
        return "needs at least 4 complete trials and 2 parameters"
    try:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        return optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError, ImportError) as exc:
        return f"not available ({exc})"


def _top_table(spec: SearchSpec, stage: StageData, study_dir: Path, out_dir: Path, k: int = 10) -> str:
    names = short_names(list(spec.space))
    head = "".join(f"<th>{escape(h)}</th>" for h in
                   ["rank", "trial", spec.metric, *(names[key] for key in spec.space), "test error %", "run"])
    rows = []
    for rank, t in enumerate(stage.ranked[:k], start=1):
        run_dir = Path(t.user_attrs.get("run_dir", ""))
        link = _relative(run_dir / "report.html" if (run_dir / "report.html").is_file() else run_dir, out_dir)
        test = t.user_attrs.get("test_error")
        cells = [str(rank), str(t.number), f"{t.value:.6f}",
                 *(_fmt(_values(t).get(key)) for key in spec.space),
                 f"{100 * test:.2f}" if test is not None else "–"]
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells)
                    + f'<td class="text"><a href="{escape(link)}">{escape(run_dir.name)}</a></td></tr>')
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _relative(path: Path, base: Path) -> str:
    import os

    try:
        return os.path.relpath(path.resolve(), base.resolve())
    except ValueError:
        return str(path)


def _fmt(value) -> str:
    return f"{value:.4e}" if isinstance(value, float) else str(value)


FIGURE_FILES = ("pairs", "metric", "best-so-far")


def stage_section(search: Search, stage: StageData, out_dir: Path,
                  figures_dir: Path | None = None) -> tuple[str, int]:
    spec = search.spec
    states = [t.state for t in stage.trials]
    parts = [f'<h2 id="stage{stage.index + 1}">Stage {stage.index + 1}</h2>',
             f"<p>{states.count(TrialState.COMPLETE)} complete, {states.count(TrialState.PRUNED)} pruned, "
             f"{states.count(TrialState.FAIL)} failed, {states.count(TrialState.RUNNING)} running of "
             f"{spec.stages[stage.index].trials} trials; overrides: <code>"
             f"{escape(' '.join(spec.stages[stage.index].overrides) or 'none')}</code>.</p>",
             "<h3>Ranges searched</h3><ul>"
             + "".join(f"<li><code>{escape(p.key)}</code>: {escape(p.describe())}</li>" for p in stage.params)
             + "</ul>"]
    if stage.notes:
        parts.append("<p>Narrowed from the previous stage:</p><ul>"
                     + "".join(f"<li>{escape(n)}</li>" for n in stage.notes) + "</ul>")
    warnings = border_warnings(stage.params, [_values(t) for t in stage.ranked])
    parts.append("<h3>Border warnings</h3>" + (
        "<ul>" + "".join(f'<li class="warn">{escape(w.message())}</li>' for w in warnings) + "</ul>"
        if warnings else '<p class="ok">No best value lies in the outer 10% of its range.</p>'))
    shown = 0
    for shown_index, (title, fig, caption) in enumerate([
            ("Pairs of parameters", pair_scatters(spec, stage),
             "One point per complete trial, colour = the metric, the best trial starred (seeds/002's scatter)."),
            (f"{spec.metric} against each parameter", metric_vs_params(spec, stage), ""),
            ("Best so far", best_so_far(spec, stage), "Each trial's metric and the best up to it.")]):
        parts.append(f"<h3>{escape(title)}</h3>")
        parts.append(figure_html(title, fig, caption, "not enough complete trials"))
        if fig is not None and figures_dir is not None:  # also as PNG files, for slides and READMEs
            figures_dir.mkdir(parents=True, exist_ok=True)
            with atomic_write(figures_dir / f"stage{stage.index + 1}-{FIGURE_FILES[shown_index]}.png") as f:
                fig.savefig(f, format="png", dpi=90, facecolor="white")
        shown += fig is not None
    parts.append("<h3>Top trials</h3>" + _top_table(spec, stage, search.dir, out_dir))
    found = importances(stage, search.study(stage.index, stage.params))
    if isinstance(found, str):
        parts.append(f'<h3>Parameter importances</h3><p class="missing">{escape(found)}</p>')
    else:
        parts.append("<h3>Parameter importances (PED-ANOVA)</h3><table><tr><th>parameter</th><th>importance</th></tr>"
                     + "".join(f'<tr><td class="text">{escape(k)}</td><td>{v:.3f}</td></tr>' for k, v in found.items())
                     + "</table>")
    return "\n".join(parts), shown


@dataclass
class SearchReport:
    path: Path
    stages: int
    figures: int

    def to_dict(self) -> dict:
        return {"out": str(self.path), "stages": self.stages, "figures": self.figures}


def build_search_report(study_dir: str | Path, out: str | Path | None = None,
                        storage: str | None = None, figures_dir: str | Path | None = None) -> SearchReport:
    """The page of the study in ``study_dir`` (default ``STUDY_DIR/report.html``); with
    ``figures_dir`` each plot is also written there as ``stageS-pairs.png`` (-metric, -best-so-far)."""
    study_dir = Path(study_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "using an existing study" per stage
    search = open_search(study_dir, storage)
    out = Path(out) if out is not None else study_dir / "report.html"
    stages = [s for s in (stage_data(search, i) for i in range(len(search.spec.stages))) if s is not None]
    if not stages:
        raise UserError(f"{study_dir}: the study has no trials yet")
    spec = search.spec
    body = [f"<p>Base <code>{escape(spec.base or 'lenet5-mnist')}</code> "
            f"{escape(' '.join(spec.overrides))}; metric <b>{escape(spec.metric)}</b> "
            f"({'maximised' if spec.maximize else 'minimised'}); sampler {escape(spec.sampler)}, pruner "
            f"{escape(spec.pruner)}, seed {spec.seed}. Watch a running study live: <code>optuna-dashboard "
            f"{escape(str(study_dir / 'study.journal') if storage is None else 'URL')}</code>.</p>"]
    if (study_dir / "best.yaml").is_file():
        body.append(f"<p>Best config: <code>{escape(str(study_dir / 'best.yaml'))}</code> "
                    f"(<code>cnnlab train {escape(str(study_dir / 'best.yaml'))}</code>).</p>")
    body.append("<p>Stages: " + ", ".join(f'<a href="#stage{s.index + 1}">stage {s.index + 1}</a>' for s in stages)
                + "</p>")
    figures = 0
    for stage in stages:
        html, shown = stage_section(search, stage, out.parent, Path(figures_dir) if figures_dir else None)
        body.append(html)
        figures += shown
    with atomic_write(out, "w") as f:
        f.write(page(f"cnnlab search report: {search.name}", body))
    return SearchReport(out, len(stages), figures)
