"""Sanity checks of a config before spending hours on it (seeds/002 "Babysitting the Learning
Process"): initial loss with regularisation off vs -ln(1/C); per-layer gradient norms, the
update/weight ratio of one step (~1e-3 is healthy), dead ReLUs, saturated tanh/sigmoid units,
identical units (symmetry never broken); then overfit a few training examples to 100% accuracy
within a budget (monitor.overfit_examples, monitor.overfit_steps).

Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed, 2 for a bad config.
"""

from __future__ import annotations

from cnnlab.cli import emit_json

NAME = "sanity"
HELP = "check a config before training: initial loss, gradients, update ratio, overfit a tiny subset"

MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def add_arguments(p) -> None:
    p.add_argument("config", nargs="*", metavar="CONFIG|KEY=VALUE",
                   help="a YAML config or recipe name, then dotted overrides (as for train)")
    p.add_argument("--no-overfit", action="store_true", help="skip the overfit check (probe only)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N (overrides the config's device)")
    p.add_argument("--json", action="store_true", help="machine-readable findings on stdout")


def print_layer_table(probe) -> None:
    """Per-layer numbers of the probe (one step at the base lr on the untrained network)."""
    print(f"  {'layer':<12} {'||dL/dW||':>10} {'||W||':>10} {'||dW||/||W||':>13}")
    for name, g, w, r in zip(probe.layers, probe.grad_norms, probe.weight_norms, probe.update_ratios):
        print(f"  {name:<12} {g:>10.3g} {w:>10.3g} {r:>13.2e}")
    for a in probe.activations:
        what = (f"{100 * a.dead_fraction:.1f}% dead" if a.dead_fraction is not None
                else f"{100 * a.saturated_fraction:.1f}% saturated" if a.saturated_fraction is not None else "")
        print(f"  {a.name:<12} mean {a.mean:+.3f} std {a.std:.3f}  {what}")


def run(args) -> int:
    from cnnlab.commands.train import split_args
    from cnnlab.config import load_config
    from cnnlab.monitor.sanity import run_sanity

    source, overrides = split_args(args.config)
    if args.device:
        overrides.append(f"device={args.device}")
    cfg = load_config(source, overrides)
    report = run_sanity(cfg, overfit=not args.no_overfit, show_progress=True)
    if args.json:
        emit_json({"config": source or "defaults", "overrides": overrides, **report.to_dict()})
    else:
        print(f"sanity checks of {source or 'the default config'}"
              + (f" with {' '.join(overrides)}" if overrides else ""))
        for finding in report.findings:
            print(f"  {MARKS[finding.level]}  {finding.check:<13} {finding.message}")
        print_layer_table(report.probe)
        verdict = "passed" if report.clean else ("passed with warnings" if report.passed else "FAILED")
        print(f"sanity {verdict}")
    return 0 if report.passed else 1
