"""Fill a jets file with N jets: K worker processes make blocks, the parent writes them in order.

Block b is seeded by ``block_seed(seed, b)`` alone, and blocks are committed to the file in
index order (out-of-order results wait in memory), so the file is the same whatever K, and an
interrupted run resumed with the same command continues at the first missing block: no event
is generated twice into the file, none is skipped. Asking for more jets than a file holds
appends blocks after the last one.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
import time
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from cnnlab.physics.deps import require, versions
from cnnlab.physics.generate import JetGenerator
from cnnlab.physics.settings import JetSettings
from cnnlab.physics.store import JetFile

_WORKER: JetGenerator | None = None


def _init_worker(settings_json: str, seed: int) -> None:
    global _WORKER
    # Ctrl-C reaches the whole process group; only the parent (the file's writer) reacts.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER = JetGenerator(JetSettings.model_validate_json(settings_json), seed)


def _make_block(index: int):
    return _WORKER.block(index)


@contextmanager
def _terminate_as_interrupt():
    """SIGTERM (kill, a batch system's time limit) stops like Ctrl-C: the file is closed at a
    block boundary. (A job started with `&` from a script ignores SIGINT; SIGTERM still works.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def generate_file(path: str | Path, n_jets: int, settings: JetSettings, seed: int = 0,
                  workers: int = 1, progress: bool = True) -> dict:
    """Generate until ``path`` holds at least ``n_jets`` jets (whole blocks). Returns a summary."""
    require("pythia8mc"), require("fastjet")  # fail before creating the file
    from tqdm import tqdm

    started = time.perf_counter()
    with JetFile.open(path, settings, seed, versions()) as out:
        before_jets, before_blocks = out.n_jets, out.n_blocks
        bar = tqdm(total=n_jets, initial=min(before_jets, n_jets), unit="jet", disable=not progress,
                   desc=f"jets -> {Path(path).name}", dynamic_ncols=True)
        try:
            with _terminate_as_interrupt():
                if out.n_jets < n_jets:
                    if workers <= 1:
                        _serial(out, n_jets, settings, seed, bar)
                    else:
                        _parallel(out, n_jets, settings, seed, workers, bar)
            bar.close()
        except KeyboardInterrupt:
            bar.close()
            print(f"{path}: stopped with {out.n_jets} jets in {out.n_blocks} complete blocks; "
                  "run the same command again to resume", file=sys.stderr)
            raise
        except BaseException:
            bar.close()
            if out.n_blocks == 0:  # e.g. a bad --pythia setting: leave no empty file behind
                out.close()
                Path(path).unlink(missing_ok=True)
            raise
        seconds = time.perf_counter() - started
        made = out.n_jets - before_jets
        attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in out.h5.attrs.items()}
    return {"path": str(path), "jets": int(attrs["n_jets"]), "blocks": int(attrs["n_blocks"]),
            "new_jets": made, "new_blocks": int(attrs["n_blocks"]) - before_blocks,
            "resumed_from_jets": before_jets, "seconds": seconds,
            "jets_per_second": made / seconds if seconds > 0 else 0.0, "workers": workers,
            "counts": {k: int(attrs[k]) for k in ("events", "failed_events", "jets_in_window",
                                                   "unmatched", "quark", "gluon")}}


def _serial(out: JetFile, n_jets: int, settings: JetSettings, seed: int, bar) -> None:
    generator = JetGenerator(settings, seed)
    while out.n_jets < n_jets:
        block = generator.block(out.n_blocks)
        out.append(block)
        bar.update(min(len(block), n_jets - bar.n))


def _parallel(out: JetFile, n_jets: int, settings: JetSettings, seed: int, workers: int, bar) -> None:
    # spawn, not fork: the parent may hold torch/OpenMP threads that fork would copy half-alive.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                               initargs=(settings.model_dump_json(), seed))
    in_flight: dict = {}
    finished: dict = {}
    next_index = out.n_blocks
    per_block = out.n_jets / out.n_blocks if out.n_blocks else settings.block_events * 0.5
    try:
        while out.n_jets < n_jets:
            # Keep the workers busy, but do not start blocks the target will not need.
            expected = out.n_jets + sum(len(b) for b in finished.values()) + per_block * len(in_flight)
            while len(in_flight) < 2 * workers and (expected < n_jets or not in_flight):
                in_flight[pool.submit(_make_block, next_index)] = next_index
                next_index += 1
                expected += per_block
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                in_flight.pop(future)
                block = future.result()
                finished[block.index] = block
            while out.n_blocks in finished and out.n_jets < n_jets:
                block = finished.pop(out.n_blocks)
                out.append(block)
                bar.update(min(len(block), n_jets - bar.n))
                per_block = out.n_jets / max(out.n_blocks, 1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
