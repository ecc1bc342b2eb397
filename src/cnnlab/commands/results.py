"""The seeds' results table: train its rows, then write RESULTS.md from the finished runs.

  cnnlab results list                           the rows, their recipes and how many runs are done
  cnnlab results run                            every row this CPU can do, each recipe at its seeds
  cnnlab results run lenet5-mnist convnet-cifar10-seed --seeds 0 1 2
  cnnlab results table [--out RESULTS.md]       the table, from RESULTS_DIR/<recipe>/seed<k>/test.json

`run` skips finished runs, resumes interrupted ones, and (for rows with an ensemble) evaluates
the ensemble once its members are done. Names are row keys or recipe names. Rows that need a GPU
or the jet sample run only when named (or with --include gpu,jets).
"""

from __future__ import annotations

from cnnlab.cli import emit_json

NAME = "results"
TRAILING_POSITIONAL = "names"  # `results run --seeds 0 1 -- lenet5-mnist`, `results run --quiet lenet5-mnist`
HELP = "run the seeds' experiments (recipes x seeds) and write RESULTS.md"


def add_arguments(p) -> None:
    p.add_argument("action", choices=["list", "run", "table"])
    p.add_argument("names", nargs="*", metavar="ROW_OR_RECIPE",
                   help="rows (cnnlab results list) or recipes; default: every CPU row")
    p.add_argument("--seeds", type=int, nargs="+", help="run seeds (default: each row's own)")
    p.add_argument("--dir", default="results", help="where the runs live (default: results)")
    p.add_argument("--include", default="cpu",
                   help="with no names: the rows to run by what they need, from cpu,gpu,jets (default cpu)")
    p.add_argument("--out", default="RESULTS.md", help="table: the Markdown file to write")
    p.add_argument("--quiet", action="store_true", help="run: no per-epoch lines")
    p.add_argument("--json", action="store_true", help="list: machine-readable")


def run(args) -> int:
    from cnnlab.errors import ConfigError
    from cnnlab.results.runner import jobs_for, select_rows

    include = {w.strip() for w in args.include.split(",") if w.strip()}
    if not include <= {"cpu", "gpu", "jets"}:
        raise ConfigError(f"--include {args.include}: choose from cpu, gpu, jets")
    rows = select_rows(args.names, include)
    named_recipes = {n for n in args.names if all(n != r.key for r in rows)} or None
    # named rows or recipes run whatever they need; the default set only what --include allows
    jobs = jobs_for(rows, args.seeds, named_recipes, None if args.names else include)
    if args.action == "list":
        return _list(rows, args)
    if args.action == "table":
        return _table(args)
    return _run(rows, jobs, args)


def _list(rows, args) -> int:
    from cnnlab.results.runner import jobs_for

    listing = []
    for row in rows:
        jobs = jobs_for([row], args.seeds)
        done = sum(j.state(args.dir) == "done" for j in jobs)
        listing.append({"row": row.key, "experiment": row.experiment, "needs": row.needs,
                        "seed_recipe": row.seed_recipe, "best_recipe": row.best_recipe,
                        "runs": len(jobs), "done": done})
    if args.json:
        emit_json(listing)
        return 0
    for item in listing:
        recipes = " + ".join(r for r in (item["seed_recipe"], item["best_recipe"]) if r)
        print(f"{item['row']:<24} {item['done']}/{item['runs']} runs done  [{item['needs']}]  {recipes}")
    return 0


def _run(rows, jobs, args) -> int:
    from cnnlab.results.runner import run_job, write_ensemble

    echo = (lambda line: None) if args.quiet else print
    todo = [j for j in jobs if j.state(args.dir) != "done"]
    print(f"{len(jobs)} runs, {len(jobs) - len(todo)} already done, {len(todo)} to train (in {args.dir}/)")
    for i, job in enumerate(todo, start=1):
        state = job.state(args.dir)
        print(f"[{i}/{len(todo)}] {job.recipe} seed={job.seed}: {'resuming' if state == 'interrupted' else 'training'}"
              f" -> {job.path(args.dir)}")
        summary = run_job(job, args.dir, progress=not args.quiet, echo=echo)
        print(f"[{i}/{len(todo)}] {job.recipe} seed={job.seed}: test error {100 * summary['test_error']:.2f}% "
              f"({summary['train_seconds'] / 60:.1f} min)")
    for row in rows:
        result = write_ensemble(row, args.dir)
        if result is not None:
            print(f"{row.key}: ensemble of {len(result['members'])} {row.best_recipe} runs: test error "
                  f"{100 * result['test_error']:.2f}%")
    print(f"now: cnnlab results table --dir {args.dir}")
    return 0


def _table(args) -> int:
    from pathlib import Path

    from cnnlab.atomic import atomic_write
    from cnnlab.results.table import render

    text = render(args.dir)
    with atomic_write(Path(args.out), "w") as f:
        f.write(text)
    print(f"wrote {args.out}")
    return 0
