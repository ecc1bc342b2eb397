"""What a search shows while it runs: the seed's line per finished trial under a progress bar,
each stage's best and border warnings, the top-trials table."""

from __future__ import annotations

import sys
from typing import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from cnnlab.search.ranges import border_warnings
from cnnlab.search.spec import Param, SearchSpec
from cnnlab.search.study import FINISHED, Search, counted, finished, ranked_trials

def short_names(keys: list[str]) -> dict[str, str]:
    """``optim.lr`` -> ``lr`` when the last part is unique among the keys, else the full key."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _format_value(value) -> str:
    return f"{value:e}" if isinstance(value, float) else str(value)


def trial_line(spec: SearchSpec, trial: FrozenTrial, done: int, needed: int) -> str:
    """The seed's line: ``val_acc: 0.412000, lr: 1.405206e-04, reg: 4.793564e-01, (1 / 100)``."""
    names = short_names(list(spec.space))
    values = trial.user_attrs.get("values", trial.params)
    shown = ", ".join(f"{names.get(k, k)}: {_format_value(v)}" for k, v in values.items())
    if trial.state == TrialState.COMPLETE:
        head = f"{spec.metric}: {trial.value:.6f}"
    else:
        head = f"{spec.metric}: {trial.user_attrs.get('reason', trial.state.name.lower())}"
    return f"{head}, {shown}, ({done} / {needed})  [trial {trial.number}]"


class Display:
    """Lines and a progress bar for the stages of one search (in the process that shows them)."""

    def __init__(self, search: Search, echo: Callable[[str], None], progress: bool):
        from tqdm.auto import tqdm

        self.search, self.echo, self.progress, self._tqdm = search, echo, progress, tqdm
        self.bar = None
        self.shown: set[int] = set()
        self.stage = -1
        self.summaries: list[dict] = []

    def start_stage(self, i: int, study: optuna.Study) -> None:
        if self.stage == i:
            return
        self.stage = i
        stage = self.search.spec.stages[i]
        params, notes = self.search.stage_params(i)
        self.say(f"stage {i + 1}/{len(self.search.spec.stages)}: {stage.trials} trials"
                 + (f" ({', '.join(stage.overrides)})" if stage.overrides else ""))
        for note in notes:
            self.say(f"  narrowed {note}")
        trials = finished(study.get_trials(deepcopy=False))
        self.shown = {t.number for t in trials}
        if trials:
            self.say(f"  {len(trials)} trials already finished (continuing the study)")
        if self.progress:
            self.bar = self._tqdm(total=stage.trials, initial=len(trials), desc=f"stage {i + 1}", unit="trial",
                                  leave=False, file=sys.stderr, dynamic_ncols=True)

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.clear()
        self.echo(line)
        if self.bar is not None:
            self.bar.refresh()

    def trial_finished(self, i: int, study: optuna.Study, trial: FrozenTrial) -> None:
        self.start_stage(i, study)
        if trial.number in self.shown or trial.state not in FINISHED:
            return
        self.shown.add(trial.number)
        needed = self.search.spec.stages[i].trials
        self.say(trial_line(self.search.spec, trial, len(self.shown), needed))
        if self.bar is not None:
            self.bar.update(1)
            best = ranked_trials(study, self.search.spec.maximize)
            if best:
                self.bar.set_postfix_str(f"best {self.search.spec.metric} {best[0].value:.4f}")

    def poll(self, i: int, study: optuna.Study) -> None:
        self.start_stage(i, study)
        for t in sorted(finished(study.get_trials(deepcopy=False)), key=lambda t: t.datetime_complete):
            self.trial_finished(i, study, t)

    def stage_end(self, i: int, study: optuna.Study, params: list[Param]) -> None:
        self.poll(i, study)
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        spec = self.search.spec
        ranked = ranked_trials(study, spec.maximize)
        warnings = border_warnings(params, [t.user_attrs.get("values", t.params) for t in ranked])
        if ranked:
            self.say(f"stage {i + 1} best: {trial_line(spec, ranked[0], len(finished(study.trials)), spec.stages[i].trials)}")
        for w in warnings:
            self.say(w.message())
        self.summaries.append({
            "stage": i + 1, "study": study.study_name, "space": {p.key: p.to_data() for p in params},
            "warnings": [w.message() for w in warnings],
            "trials": [trial_record(t) for t in sorted(counted(study.trials), key=lambda t: t.number)]})


def trial_record(t: FrozenTrial) -> dict:
    return {"number": t.number, "state": t.state.name.lower(), "value": t.value,
            "values": t.user_attrs.get("values", t.params), "run_dir": t.user_attrs.get("run_dir"),
            "reason": t.user_attrs.get("reason"), "test_error": t.user_attrs.get("test_error")}


def top_table(spec: SearchSpec, study: optuna.Study, k: int = 10) -> list[str]:
    ranked = ranked_trials(study, spec.maximize)[:k]
    if not ranked:
        return []
    names = short_names(list(spec.space))
    header = ["rank", "trial", spec.metric, *(names[key] for key in spec.space)]
    rows = [[str(r + 1), str(t.number), f"{t.value:.6f}",
             *(_format_value(t.user_attrs.get("values", {}).get(key, "")) for key in spec.space)]
            for r, t in enumerate(ranked)]
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    return ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in [header, *rows]]
