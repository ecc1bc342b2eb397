"""``cnnlab search --workers N``: N worker processes on this machine sharing the study's storage,
each with ``cores // N`` torch threads, each in its own session (so Ctrl-C reaches them once, from
the parent), their stderr in ``STUDY_DIR/workers/``. ``python -m cnnlab.search.workers JOB`` is
one worker: it runs trials until every stage has its count, quietly; the parent shows them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.search.display import Display
from cnnlab.search.study import POLL_SECONDS, Search, Stopping, stage_status, work

def worker_threads(workers: int) -> int:
    """Torch threads per worker: the cores shared out (oversubscribed threads make every trial
    many times slower)."""
    return max(1, (os.cpu_count() or 1) // workers)


def supervise(search: Search, workers: int, stopping: Stopping, display: Display) -> bool:
    """Start ``workers`` processes (each its own session, so Ctrl-C reaches them once, from
    here), show their trials as they finish, and stop them on Ctrl-C."""
    threads = worker_threads(workers)
    job = json.dumps({"spec": search.spec.model_dump(mode="json"), "name": search.name,
                      "dir": str(search.dir), "storage": search.storage_url, "threads": threads,
                      "heartbeat": search.heartbeat})
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    logs = search.dir / "workers"
    logs.mkdir(exist_ok=True)
    procs = []
    for n in range(workers):  # stderr to a file: a pipe nobody reads would block the worker
        with open(logs / f"{socket.gethostname()}-{n}.log", "ab") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "cnnlab.search.workers", job], env=env,
                                          stdout=subprocess.DEVNULL, stderr=log, start_new_session=True))
    forwarded = False
    try:
        for i in range(len(search.spec.stages)):
            while True:
                params, _ = search.stage_params(i) if _stage_ready(search, i) else (None, None)
                if params is not None:
                    study = search.study(i, params)
                    display.poll(i, study)
                    if stage_status(study, search.spec.stages[i].trials)["done"]:
                        display.stage_end(i, study, params)
                        break
                if stopping.requested and not forwarded:
                    for p in procs:
                        p.send_signal(signal.SIGINT)
                    forwarded = True
                if all(p.poll() is not None for p in procs):
                    if stopping.requested:
                        return False
                    return _workers_gone(search, procs)
                time.sleep(POLL_SECONDS)
        return all(p.wait() == 0 for p in procs) or _workers_gone(search, procs)
    except KeyboardInterrupt:
        for p in procs:
            p.send_signal(signal.SIGINT)
        raise
    finally:
        for p in procs:
            try:
                p.wait(timeout=60 if stopping.requested else 5)
            except subprocess.TimeoutExpired:
                p.kill()


def _stage_ready(search: Search, i: int) -> bool:
    """Stage ``i``'s space is known: it does not narrow, or its previous stage is done."""
    if i == 0 or not search.spec.stages[i].narrow:
        return True
    prev, _ = search.stage_params(i - 1)
    return stage_status(search.study(i - 1, prev), search.spec.stages[i - 1].trials)["done"]


def _workers_gone(search: Search, procs: list[subprocess.Popen]) -> bool:
    codes = [p.returncode for p in procs]
    if all(c == 0 for c in codes):
        return True
    logs = sorted((search.dir / "workers").glob("*.log"))
    tail = logs[-1].read_text(errors="replace").strip().splitlines()[-5:] if logs else []
    raise CnnlabError(f"every search worker exited (exit codes {codes}) before the search finished; "
                      f"their logs are in {search.dir / 'workers'}:\n" + "\n".join(tail))


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    import optuna
    import torch

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
