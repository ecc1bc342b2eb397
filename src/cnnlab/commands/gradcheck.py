"""Numerical gradient check (float64, centred differences; seeds/003) of every layer type, a
layer spec or a zoo model: the max relative error per parameter, which must stay below the
tolerance (1e-6). Dropout masks are held fixed and batch norm uses batch statistics.

  cnnlab gradcheck                          every layer type on a small input
  cnnlab gradcheck "conv3-8p1 bn maxout2" --input 3x6x6
  cnnlab gradcheck lenet5 --input 1x28x28 --samples 10

Exit code 0 when every check passes, 1 when one does not.
"""

from __future__ import annotations

from cnnlab.cli import emit_json
from cnnlab.errors import ConfigError

NAME = "gradcheck"
HELP = "numerical gradient check of every layer type, a layer spec or a zoo model"


def add_arguments(p) -> None:
    p.add_argument("target", nargs="?", metavar="MODEL_OR_LAYER",
                   help="a zoo model or a spec of layers (default: every layer type)")
    p.add_argument("--input", metavar="CxHxW", help="input volume (default: a small one per layer; 1x28x28 for models)")
    p.add_argument("--classes", type=int, default=10, help="classes, for zoo models and a bare fc (default 10)")
    p.add_argument("--batch", type=int, default=4, help="examples in the random batch (default 4; batch norm needs 2+)")
    p.add_argument("--samples", type=int, default=None,
                   help="check at most this many random entries per tensor (default: all for layers, 10 for models)")
    p.add_argument("--seed", type=int, default=0, help="seed for the input, weights and dropout masks")
    p.add_argument("--tol", type=float, default=None, help="largest passing relative error (default 1e-6)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _checks(args) -> list[tuple[str, object]]:
    """(label, thunk) pairs to run."""
    from cnnlab.commands.summary import parse_input_shape
    from cnnlab.models import MODELS, ModelConfig, build_model, parse_spec
    from cnnlab.models.gradcheck import LAYER_CHECKS, check_layers, check_module, default_input_shape, describe

    opts = {"batch": args.batch, "seed": args.seed}
    if args.target is None:
        return [(f"{spec} on {describe(shape)}", lambda spec=spec, shape=shape: check_layers(spec, shape, **opts))
                for spec, shape in LAYER_CHECKS]
    if args.target in MODELS:
        shape = parse_input_shape(args.input or "1x28x28")
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            model = build_model(ModelConfig(arch=args.target), shape, args.classes)
        samples = 10 if args.samples is None else args.samples
        return [(f"{args.target} on {describe(shape)}",
                 lambda: check_module(model, shape, samples=samples, progress=True, **opts))]
    parse_spec(args.target, "gradcheck")  # a clear error before anything runs
    shape = parse_input_shape(args.input) if args.input else default_input_shape(args.target)
    return [(f"{args.target} on {describe(shape)}",
             lambda: check_layers(args.target, shape, samples=args.samples, **opts))]


def run(args) -> int:
    from tqdm import tqdm

    from cnnlab.models.gradcheck import TOLERANCE, worst

    tol = TOLERANCE if args.tol is None else args.tol
    if args.batch < 1 or (args.samples is not None and args.samples < 1) or not 0 < tol < float("inf"):
        raise ConfigError("--batch, --samples and --tol must be positive (and --tol finite)")
    results = []
    checks = _checks(args)
    for label, thunk in tqdm(checks, desc="gradcheck", unit="check", leave=False, disable=len(checks) == 1):
        records = thunk()
        results.append({"check": label, "max_rel_error": worst(records), "passed": worst(records) < tol,
                        "parameters": records})
    overall = max(r["max_rel_error"] for r in results)
    passed = all(r["passed"] for r in results)
    if args.json:
        emit_json({"tolerance": tol, "passed": passed, "max_rel_error": overall, "checks": results})
    else:
        rows = [("check", "tensor", "shape", "entries", "max rel error", "")]
        for r in results:
            for p in r["parameters"]:
                rows.append((r["check"], p["name"], "x".join(map(str, p["shape"])), str(p["checked"]),
                             f"{p['max_rel_error']:.1e}", "ok" if p["max_rel_error"] < tol else "FAIL"))
        widths = [max(len(row[i]) for row in rows) for i in range(6)]
        for row in rows:
            print("  ".join(c.rjust(w) if i in (3, 4) else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        verdict = "pass" if passed else "FAIL"
        print(f"{sum(r['passed'] for r in results)}/{len(results)} checks {verdict}: worst relative error "
              f"{overall:.1e} (tolerance {tol:g})")
    return 0 if passed else 1
