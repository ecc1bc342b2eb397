"""The ``cnnlab`` command. Each subcommand is a module in :mod:`cnnlab.commands` defining
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; they are discovered,
so adding a command never edits this file.

Exit codes: 0 success, 2 bad input or config (a message, no traceback), 1 other failure.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys

from cnnlab import __version__
from cnnlab.errors import CnnlabError

EXAMPLES = """examples:
  cnnlab train                                   LeNet-5 on MNIST (the main job)
  cnnlab train recipe.yaml optim.lr=0.05 train.epochs=5
  cnnlab train --print-config                    show the fully resolved config
  cnnlab train --resume runs/lenet5-mnist-20261123-101500
  cnnlab evaluate runs/lenet5-mnist-20261123-101500 --json
  cnnlab predict runs/lenet5-mnist-20261123-101500 digit.png
"""


def command_modules():
    import cnnlab.commands as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"cnnlab.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab", description="Build, train, babysit and judge convolutional networks.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in command_modules():
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(cmd)
        # argparse fills a trailing nargs="*" positional only before the first option; a command
        # names it in TRAILING_POSITIONAL to take the words that come after options too
        cmd.set_defaults(handler=module.run, _trailing=getattr(module, "TRAILING_POSITIONAL", None))
    return parser


def emit_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # KEY=VALUE overrides may come after options (`train --quiet optim.lr=0.1`): argparse
    # leaves those as extras; commands with a ``config`` list take them.
    args, extra = parser.parse_known_args(argv)
    if extra:
        trailing = getattr(args, "_trailing", None)
        if hasattr(args, "config") and all("=" in e and not e.startswith("-") for e in extra):
            args.config.extend(extra)
        elif trailing and all(not e.startswith("-") for e in extra[extra[0] == "--":]):
            setattr(args, trailing, list(getattr(args, trailing) or []) + extra[extra[0] == "--":])
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except CnnlabError as exc:
        print(f"cnnlab {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        # a command may say how to continue (train: the --resume line)
        print(f"cnnlab {args.command}: interrupted" + (f"; {exc}" if str(exc) else ""), file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `cnnlab ... | head`: the reader left; silence the flush at exit, as Unix tools do.
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a fault of the machine (full disk, read-only or missing folder)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cnnlab {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
