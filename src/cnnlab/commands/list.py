"""List what a config can name: models, optimizers, schedules, dataset sources, recipes, and the
bundled search files (`cnnlab search NAME`), samplers and pruners, and the results table's rows
(`cnnlab results run ROW`)."""

from __future__ import annotations

from cnnlab.cli import emit_json

NAME = "list"
HELP = "list registered models, optimizers, schedules, sources, recipes"


def registries() -> dict:
    from cnnlab.config import list_recipes
    from cnnlab.data import AUGMENTATIONS, PREPROCESSORS, SOURCES
    from cnnlab.models import MODELS
    from cnnlab.optim import OPTIMIZERS, SCHEDULES
    from cnnlab.results.rows import ROWS
    from cnnlab.search.engine import PRUNERS, SAMPLERS
    from cnnlab.search.spec import list_searches

    return {"models": MODELS.names(), "optimizers": OPTIMIZERS.names(),
            "schedules": SCHEDULES.names(), "sources": SOURCES.names(), "preprocessing": PREPROCESSORS.names(),
            "augmentations": AUGMENTATIONS.names(), "recipes": list_recipes(), "searches": list_searches(),
            "samplers": SAMPLERS.names(), "pruners": PRUNERS.names(), "results": ROWS.names()}


def add_arguments(p) -> None:
    p.add_argument("what", nargs="?", choices=["models", "optimizers", "schedules", "sources", "preprocessing",
                                                "augmentations", "recipes", "searches", "samplers", "pruners", "results"],
                   help="one kind (default: all)")
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    found = registries()
    if args.what:
        found = {args.what: found[args.what]}
    if args.json:
        emit_json(found)
    else:
        for kind, names in found.items():
            print(f"{kind}: {', '.join(names) if names else '(none)'}")
    return 0
