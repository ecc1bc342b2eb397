"""Train a network. With no arguments: LeNet-5 on MNIST (seeds/000 s.1).

CONFIG is a YAML file or a bundled recipe name (default: lenet5-mnist, the base of every
config that names no other `base:`); KEY=VALUE pairs deep-merge onto it with dotted keys
(optim.lr=0.05 train.epochs=5 optim=adam): each changes that key only, and switching the rule
(optim=adam) resets the rule's own keys and lr, keeping l2, l1, clipping, max-norm, label
smoothing and layer_lr. A run directory runs/<name>-<time>/ receives the resolved config,
metrics.csv, train.log and checkpoints.

--resume RUN [KEY=VALUE...] continues a run exactly. Overrides may add epochs, change the
learning rate, the optimizer's hyperparameters, the schedule and callbacks; data, model,
optim.name, batch size and seed are refused (exit 2, nothing written). Changes are recorded in
RUN/resumes.yaml.
"""

from __future__ import annotations

import sys

from cnnlab.cli import emit_json
from cnnlab.config import load_config
from cnnlab.errors import ConfigError

NAME = "train"
HELP = "train a network (default: LeNet-5 on MNIST)"


def add_arguments(p) -> None:
    p.add_argument("config", nargs="*", metavar="CONFIG|KEY=VALUE",
                   help="a YAML config or recipe name, then dotted overrides")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N (overrides the config's device)")
    p.add_argument("--json", action="store_true", help="print the final result as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="data-parallel training on N processes of this machine (starts torchrun; "
                        "train.batch_size stays the global batch; see README 'Data-parallel training')")


def split_args(items: list[str]) -> tuple[str | None, list[str]]:
    source = None
    overrides = []
    for i, item in enumerate(items):
        if "=" in item:
            overrides.append(item)
        elif i == 0:
            source = item
        else:
            raise ConfigError(f"'{item}': only the first argument may be a config file; "
                              "the rest must be KEY=VALUE overrides")
    return source, overrides


def run(args) -> int:
    from cnnlab.train import resume_run, start_run

    if args.nproc is not None:
        return launch_torchrun(args.nproc)

    source, overrides = split_args(args.config)
    if args.device:
        overrides.append(f"device={args.device}")
    echo = (lambda line: print(line, file=sys.stderr)) if args.json else print
    options = dict(show_progress=not args.quiet, echo=echo)
    if args.resume:
        if source:
            raise ConfigError("--resume takes the run's own config; give only KEY=VALUE overrides")
        trainer = resume_run(args.resume, overrides, **options)
    else:
        cfg = load_config(source, overrides)
        if args.print_config:
            print(cfg.to_yaml(), end="")
            return 0
        from cnnlab.train.distributed import restarted_run

        restarted = restarted_run(cfg.runs_dir)  # torchrun restarted the ranks: continue the run
        trainer = resume_run(restarted, [], **options) if restarted else start_run(cfg, **options)
    try:
        result = trainer.fit()
    except KeyboardInterrupt:
        run = trainer.run
        raise KeyboardInterrupt(
            f"continue with: cnnlab train --resume {run.path}" if run.checkpoint("last").is_file() else
            f"no epoch had finished, so {run.path} has no checkpoint to resume; start the run again") from None
    from cnnlab.train.distributed import forget_run

    forget_run(trainer.cfg.runs_dir)  # under torchrun: the job is done, a restart has nothing to resume
    if args.json:
        emit_json(result.to_dict())
    return 0


def launch_torchrun(nproc: int, argv: list[str] | None = None) -> int:
    """``cnnlab train --nproc N ARGS`` = ``torchrun --nproc_per_node N -m cnnlab train ARGS``."""
    import os
    import subprocess

    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {nproc}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("--nproc is for starting torchrun; this process already runs under it")
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            rest.append(arg)
    threads = max(1, (os.cpu_count() or 1) // nproc)  # oversubscribed threads slow every rank down
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads))}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "cnnlab", *rest]
    return subprocess.call(command, env=env)
