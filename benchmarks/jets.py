"""Jet generation speed: jets/s per worker, scaling from 1 to K workers, and what the Python
side costs per event compared with the bare ``pythia.next()`` loop.

Per event, four costs are timed on one generator (same settings, same seeded events):
  bare       pythia.next() alone (Pythia's own C++ time),
  + extract  ... and copying the visible final particles into NumPy (Python, one call per
             particle attribute: the dominant Python cost),
  full       the whole block: FastJet clustering, parton matching, images and features.
Then ``generate_file`` fills a temporary file with K = 1, 2, ... workers (--jets jets each).

    python benchmarks/jets.py [--events 300] [--jets 1000] [--workers 1 2] [--json]

Run it on an idle machine: generation is CPU-bound and shares cores with everything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from cnnlab.physics.generate import JetGenerator, block_seed
from cnnlab.physics.produce import generate_file
from cnnlab.physics.settings import JetSettings


def per_event_costs(events: int, seed: int = 0) -> dict:
    settings = JetSettings(block_events=events)
    gen = JetGenerator(settings, seed)
    gen.pythia.rndm.init(block_seed(seed, 0))
    started = time.perf_counter()
    for _ in range(events):
        gen.pythia.next()
    bare = time.perf_counter() - started

    gen.pythia.rndm.init(block_seed(seed, 0))
    started = time.perf_counter()
    particles = 0
    for _ in range(events):
        gen.pythia.next()
        particles += len(gen.particles())
    extract = time.perf_counter() - started

    started = time.perf_counter()
    block = gen.block(0)
    full = time.perf_counter() - started
    ms = 1000.0 / events
    return {"events": events, "jets": len(block), "particles_per_event": particles / events,
            "bare_ms_per_event": bare * ms, "extract_ms_per_event": extract * ms,
            "full_ms_per_event": full * ms,
            "python_share_of_full": (full - bare) / full,
            "jets_per_second_one_worker": len(block) / full}


def scaling(jets: int, workers: list[int], seed: int = 0) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in workers:
            path = Path(tmp) / f"jets-{k}.h5"
            summary = generate_file(path, jets, JetSettings(), seed, workers=k, progress=False)
            rows.append({"workers": k, "jets": summary["jets"], "seconds": summary["seconds"],
                         "jets_per_second": summary["jets_per_second"]})
    base = rows[0]["jets_per_second"]
    for row in rows:
        row["speedup"] = row["jets_per_second"] / base
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=300, help="events for the per-event costs")
    p.add_argument("--jets", type=int, default=1000, help="jets per scaling point")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    result = {"cpus": os.cpu_count(), "load_average": os.getloadavg(),
              "per_event": per_event_costs(args.events), "scaling": scaling(args.jets, args.workers)}
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    e = result["per_event"]
    print(f"per event ({e['events']} events, {e['particles_per_event']:.0f} visible particles within reach):")
    print(f"  bare pythia.next()       {e['bare_ms_per_event']:7.2f} ms")
    print(f"  + particles -> NumPy     {e['extract_ms_per_event']:7.2f} ms")
    print(f"  full (cluster, images)   {e['full_ms_per_event']:7.2f} ms   "
          f"Python share {100 * e['python_share_of_full']:.0f}%")
    print(f"  one worker: {e['jets_per_second_one_worker']:.1f} jets/s")
    print("scaling:")
    for row in result["scaling"]:
        print(f"  {row['workers']} worker(s): {row['jets_per_second']:7.1f} jets/s  x{row['speedup']:.2f}  "
              f"({row['jets']} jets in {row['seconds']:.1f}s)")
    print(f"(cpus {result['cpus']}, load average {result['load_average'][0]:.1f})")


if __name__ == "__main__":
    main()
