"""The Python API, for notebooks and scripts: the same config rules and run directories as the
command line (``cnnlab train`` is a thin layer over :func:`train`).

>>> import cnnlab
>>> run = cnnlab.train("lenet5-mnist", optim={"lr": 0.1}, train={"epochs": 1})   # doctest: +SKIP
>>> run.test_error, run.metrics[-1]["val_acc"]                                   # doctest: +SKIP
>>> run.evaluate()["per_class_accuracy"]; run.predict(images); run.report()      # doctest: +SKIP
>>> cnnlab.load_run("runs/lenet5-mnist-20261201-101500").resume(train={"epochs": 3})  # doctest: +SKIP

Overrides are given as dotted strings (``"optim.lr=0.1"``) or as nested mappings per section
(``optim={"lr": 0.1}``); both deep-merge onto the recipe exactly as on the command line.
Progress bars use ``tqdm.auto``, so they render as widgets in Jupyter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from cnnlab.config import ExperimentConfig, build_config, load_config


def _echo(quiet: bool) -> Callable[[str], None]:
    return (lambda line: None) if quiet else print


class Run:
    """A run directory: its config, its metrics, and what can be done with its checkpoints."""

    def __init__(self, path: str | Path, result=None):
        from cnnlab.train.rundir import RunDir

        self._run = RunDir.open(path)
        self.path = self._run.path
        self.result = result  # the TrainResult when this object came from train()/resume()

    @property
    def config(self) -> ExperimentConfig:
        return build_config(self._run.read_config(), str(self._run.config_path))

    @property
    def metrics(self) -> list[dict]:
        """metrics.csv, one dict per epoch (read afresh each time)."""
        return self._run.read_metrics()

    @property
    def test_error(self) -> float | None:
        return self.result.test_error if self.result is not None else None

    def evaluate(self, checkpoint: str = "best", device: str = "auto", tta: str | None = None) -> dict:
        """What ``cnnlab evaluate --json`` prints: test error, per-class accuracy, confusion matrix.
        ``tta``: none | flip | flip_translate (test-time augmentation; None = the run's train.tta)."""
        from cnnlab.train.inference import evaluate_run

        return evaluate_run(self.path, checkpoint, device, tta)

    def predict(self, images, checkpoint: str = "best", device: str = "auto"):
        """Class probabilities (N x classes, a CPU tensor) for ``images``: a uint8 tensor or array
        N x C x H x W in the dataset's stored format, or a list of image file paths."""
        import numpy as np
        import torch

        from cnnlab.train.inference import load_image, load_trained

        trained = load_trained(self.path, checkpoint, device)
        if isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, Path)):
            batch = torch.cat([load_image(p, trained.input_shape) for p in images])
        else:
            batch = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
        return trained.predict_proba(batch)

    def report(self, path: str | Path | None = None, checkpoint: str = "best") -> Path:
        """Write the HTML report of this run (default ``RUN_DIR/report.html``); returns its path."""
        from cnnlab.report import build_report

        out = Path(path) if path is not None else self.path / "report.html"
        return build_report([self.path], out, checkpoint=checkpoint).path

    def resume(self, *overrides: str, progress: bool = True, quiet: bool = False, callbacks=(),
               **sections: Any) -> "Run":
        """Continue training (see :mod:`cnnlab.train.resume` for what may change)."""
        from cnnlab.config import overrides_to_dict
        from cnnlab.train.resume import resume_run

        dotted = list(overrides) + _dotted(sections)
        overrides_to_dict(dotted)  # fail early on malformed overrides
        trainer = resume_run(self.path, dotted, show_progress=progress, echo=_echo(quiet),
                             callbacks=list(callbacks))
        return Run(self.path, trainer.fit())

    def __repr__(self) -> str:
        done = f", test error {100 * self.test_error:.2f}%" if self.test_error is not None else ""
        return f"Run({str(self.path)!r}{done})"


def _dotted(sections: dict, prefix: str = "") -> list[str]:
    """``{"optim": {"lr": 0.1}}`` as ``["optim.lr=0.1"]`` (values as YAML/JSON)."""
    import json

    out = []
    for key, value in sections.items():
        if isinstance(value, dict) and value:
            out += _dotted(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={json.dumps(value)}")
    return out


def train(config: str | ExperimentConfig | None = None, *overrides: str, progress: bool = True,
          quiet: bool = False, callbacks=(), **sections: Any) -> Run:
    """Train ``config`` (a recipe name, a YAML file, an ExperimentConfig; default the main job)
    with overrides, and return the finished :class:`Run`."""
    from cnnlab.train.trainer import start_run

    if isinstance(config, ExperimentConfig):
        if overrides or sections:
            raise TypeError("give overrides with a recipe or file name, or apply them to the "
                            "ExperimentConfig yourself (model_copy), not both")
        cfg = config
    else:
        cfg = load_config(config, overrides, **sections)
    trainer = start_run(cfg, show_progress=progress, echo=_echo(quiet), callbacks=list(callbacks))
    result = trainer.fit()
    return Run(result.run_dir, result)


def load_run(path: str | Path) -> Run:
    """An existing run directory, to evaluate, predict with, report or resume."""
    return Run(path)
