"""A search worker process (started by ``cnnlab search --workers N``): runs trials until every
stage has its count, quietly; the parent shows them. Ctrl-C (forwarded by the parent) stops it at
the end of the running trial."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    import optuna
    import torch

    from cnnlab.search.runner import Search, Stopping, work
    from cnnlab.search.spec import SearchSpec

    torch.set_num_threads(int(job["threads"]))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    spec = SearchSpec.model_validate(job["spec"])
    search = Search(spec, job["name"], Path(job["dir"]), job["storage"], job["heartbeat"])
    stopping = Stopping(lambda line: print(line, file=sys.stderr))
    stopping.install()
    try:
        work(search, stopping)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
