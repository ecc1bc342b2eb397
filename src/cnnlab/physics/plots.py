"""ROC curves of a physics report: gluon rejection 1/eps_g against quark efficiency eps_q,
the way quark/gluon taggers are shown (log scale), one line per tagger.

    cnnlab evaluate RUN_DIR --json > eval.json
    python -m cnnlab.physics.plots eval.json roc.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def plot_roc(report: dict, path: str | Path) -> Path:
    """Write the ROC curves of ``report`` (from physics_report) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=120)
    for name, m in report["taggers"].items():
        eps_q = np.array(m["roc"]["quark_efficiency"])
        eps_g = np.array(m["roc"]["gluon_efficiency"])
        keep = eps_g > 0
        ax.plot(eps_q[keep], 1 / eps_g[keep], marker="o", ms=3,
                label=f"{name} (AUC {m['auc']:.3f})", lw=2 if name == "CNN" else 1)
    ax.set_yscale("log")
    ax.set_xlabel(f"{report['signal_class']} efficiency")
    ax.set_ylabel(f"{report['background_class']} rejection (1 / efficiency)")
    ax.set_title(f"{report['test_examples']} test jets")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m cnnlab.physics.plots EVALUATE.json OUT.png", file=sys.stderr)
        return 2
    data = json.loads(Path(args[0]).read_text())
    if "physics" not in data:
        print(f"{args[0]}: no 'physics' section (not a two-class `cnnlab evaluate --json`)", file=sys.stderr)
        return 2
    print(plot_roc(data["physics"], args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
