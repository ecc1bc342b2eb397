"""Make datasets. ``cnnlab data jets``: simulate quark/gluon jet images (issue 7, seeds/000 s.3).

    cnnlab data jets --jets 100000 --out data_cache/jets.h5 --workers 2 --seed 1
    cnnlab data jets --jets 1000 --out small.h5 channels=komiske pixels=32 jet_pt_min=250
    cnnlab data info data_cache/jets.h5

Pythia 8 HardQCD at 13 TeV -> visible final particles -> FastJet anti-kT R=0.4 -> jets in the pT
and |eta| window, labelled by the matched hard-process parton -> 32x32 images and per-jet
features in one HDF5 file. Settings are KEY=VALUE (see `--list-settings`). Rerunning the same
command on an interrupted file resumes it; a larger --jets appends. Needs `pip install cnnlab[jets]`.
"""

from __future__ import annotations

import sys

from cnnlab.cli import emit_json

NAME = "data"
HELP = "make datasets (jets: simulated quark/gluon jet images) and describe them"


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    jets = sub.add_parser("jets", help="simulate quark/gluon jet images into an HDF5 file",
                          description=__doc__, formatter_class=p.formatter_class)
    jets.add_argument("config", nargs="*", metavar="KEY=VALUE",
                      help="generator settings, e.g. channels=komiske pthat_min=250")
    jets.add_argument("--jets", type=int, default=None, help="number of labelled jets wanted (at least)")
    jets.add_argument("--out", help="the HDF5 file (created, resumed or appended to)")
    jets.add_argument("--workers", type=int, default=1, help="generator processes (default 1)")
    jets.add_argument("--seed", type=int, default=0, help="base seed; block b uses an independent "
                                                         "seed derived from (seed, b)")
    jets.add_argument("--pythia", action="append", default=[], metavar="'KEY = VALUE'",
                      help="extra Pythia setting (repeatable), e.g. --pythia 'PartonLevel:MPI = off'")
    jets.add_argument("--list-settings", action="store_true", help="print the settings and exit")
    jets.add_argument("--json", action="store_true", help="print the summary as JSON")
    jets.add_argument("--quiet", action="store_true", help="no progress bar")
    info = sub.add_parser("info", help="settings, versions and counts of a jets file")
    info.add_argument("path", metavar="FILE")
    info.add_argument("--json", action="store_true")


def parse_settings(items: list[str], pythia: list[str]):
    """KEY=VALUE pairs (values parsed as YAML) -> validated JetSettings; ConfigError on typos."""
    import yaml
    from pydantic import ValidationError

    from cnnlab.errors import ConfigError
    from cnnlab.physics.settings import JetSettings
    from cnnlab.registry import did_you_mean

    values: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"'{item}': settings must be KEY=VALUE, e.g. pixels=32")
        if key not in JetSettings.model_fields:
            raise ConfigError(f"unknown jets setting '{key}'.{did_you_mean(key, list(JetSettings.model_fields))} "
                              f"Settings: {', '.join(JetSettings.model_fields)}")
        values[key] = yaml.safe_load(raw) if raw else ""
    if pythia:
        values["pythia"] = list(values.get("pythia") or []) + pythia
    try:
        return JetSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid jets settings: {problems}") from None


def run(args) -> int:
    from cnnlab.errors import UserError

    if args.dataset == "info":
        return show_info(args)
    settings = parse_settings(args.config, args.pythia)
    if args.list_settings:
        from cnnlab.physics.settings import JetSettings

        for name, f in JetSettings.model_fields.items():
            print(f"{name:14s} = {getattr(settings, name)!r:10}  {f.description}")
        return 0
    if args.jets is None or args.out is None:
        raise UserError("cnnlab data jets needs --jets N and --out FILE.h5")
    if args.jets < 1 or args.workers < 1:
        raise UserError("--jets and --workers must be at least 1")
    from cnnlab.physics.produce import generate_file

    summary = generate_file(args.out, args.jets, settings, args.seed, args.workers,
                            progress=not args.quiet)
    if args.json:
        emit_json(summary)
        return 0
    c = summary["counts"]
    print(f"{summary['path']}: {summary['jets']} jets ({c['quark']} quark, {c['gluon']} gluon) from "
          f"{c['events']} events in {summary['blocks']} blocks; {c['unmatched']} of "
          f"{c['jets_in_window']} jets in the window unmatched and dropped")
    print(f"this run: {summary['new_jets']} new jets in {summary['seconds']:.1f}s "
          f"({summary['jets_per_second']:.1f} jets/s with {summary['workers']} worker(s))",
          file=sys.stderr)
    return 0


def show_info(args) -> int:
    from cnnlab.physics.store import read_summary

    summary = read_summary(args.path)
    if args.json:
        emit_json(summary)
        return 0
    for key, value in summary.items():
        print(f"{key}: {value}")
    return 0
