"""Run directories: ``runs/<name>-<timestamp>/`` holding everything a run produced.

    config.yaml        the resolved config (plain YAML; `cnnlab train config.yaml` reruns it)
    metrics.csv        one row per epoch; the source of truth for reports
    train.log          the lines printed during training
    checkpoints/last.pt, checkpoints/best.pt
    test.json          written when training finishes: test error of the best checkpoint, epochs,
                       training seconds, hardware (results tables read it)
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

from cnnlab.atomic import atomic_write
from cnnlab.errors import CheckpointError, ConfigError
from cnnlab.runfiles import MAX_METRICS_BYTES, parse_cell, read_table, read_text
from cnnlab.train.checkpoint import save_checkpoint  # noqa: F401  (re-exported for callers)
from cnnlab.yamlio import read_yaml_file

TEST_SUMMARY = "test.json"
#: the sections every run's config.yaml holds
SECTIONS = ("data", "model", "optim", "schedule", "train", "monitor")
METRIC_COLUMNS = ["epoch", "step", "train_loss", "train_total_loss", "train_acc",
                  "val_loss", "val_acc", "lr", "seconds"]


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)

    # -- layout ---------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    def checkpoint(self, which: str = "last") -> Path:
        return self.path / "checkpoints" / f"{which}.pt"

    # -- creation / opening ---------------------------------------------------------------
    @classmethod
    def create(cls, runs_dir: str | Path, name: str, config_yaml: str) -> "RunDir":
        runs = Path(runs_dir)
        if runs.exists() and not runs.is_dir():
            raise ConfigError(f"runs_dir={runs_dir}: is a file, not a folder; give runs_dir=FOLDER")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = runs / f"{name}-{stamp}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        return cls.create_at(path, config_yaml)

    @classmethod
    def create_at(cls, path: str | Path, config_yaml: str) -> "RunDir":
        """A new run directory at exactly ``path`` (a search's ``trials/0007``); it must not exist."""
        path = Path(path)
        (path / "checkpoints").mkdir(parents=True)
        run = cls(path)
        run.config_path.write_text(config_yaml)
        return run

    def discard_if_untouched(self) -> None:
        """Remove a run directory that training never wrote to (a setup error right after
        ``create``), so that failed starts leave no empty runs behind; anything else is kept."""
        contents = {p.relative_to(self.path).as_posix() for p in self.path.rglob("*")}
        if contents <= {"config.yaml", "checkpoints"}:
            shutil.rmtree(self.path, ignore_errors=True)

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        run = cls(Path(path))
        if not run.path.is_dir():
            raise CheckpointError(f"{path}: no such run directory")
        if not run.config_path.is_file():
            raise CheckpointError(f"{path}: not a cnnlab run directory (no config.yaml)")
        return run

    def read_config(self) -> dict:
        """config.yaml, the run's whole resolved config: one cut short is refused (no base is
        applied to it, so a missing section would silently fall back to the defaults)."""
        data = read_yaml_file(self.config_path, CheckpointError)
        if not isinstance(data, dict):
            raise CheckpointError(f"{self.config_path}: not a config mapping")
        missing = [k for k in SECTIONS if k not in data]
        if missing or not self.config_path.read_bytes().endswith(b"\n"):
            what = f"lacks {', '.join(missing)}" if missing else "does not end with a line end"
            raise CheckpointError(f"{self.config_path}: {what}; a run's config.yaml holds its whole config, "
                                  "so the file was cut short or edited. Restore it (the checkpoints hold a "
                                  "copy under 'config')")
        return data

    # -- metrics --------------------------------------------------------------------------
    def read_metrics(self) -> list[dict]:
        """metrics.csv's rows; a CheckpointError naming the file (and line) if it is damaged."""
        if not self.metrics_path.is_file():
            return []
        return read_table(self.metrics_path, METRIC_COLUMNS, integers=("epoch", "step"), max_bytes=MAX_METRICS_BYTES)

    def read_csv(self, name: str) -> list[dict]:
        """The rows of the run's table ``name`` (numbers parsed; [] if it is absent)."""
        path = self.path / name
        if not path.is_file():
            return []
        try:
            return [{k: parse_cell(v) for k, v in row.items()}
                    for row in csv.DictReader(read_text(path).splitlines(keepends=True))]
        except csv.Error as exc:
            raise CheckpointError(f"{path}: not CSV ({exc}); the file is damaged") from None

    def write_metrics(self, rows: list[dict]) -> None:
        """Rewrite metrics.csv (rows may carry extra columns after the standard ones)."""
        self.write_csv(self.metrics_path.name, rows, METRIC_COLUMNS)

    def write_csv(self, name: str, rows: list[dict], columns=()) -> None:
        """Rewrite the table ``name`` of the run (``columns`` first, then any others the rows have)."""
        columns = list(columns)
        for row in rows:
            columns += [k for k in row if k not in columns]
        with atomic_write(self.path / name, "w") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _format(row.get(k)) for k in columns})

    def log(self, line: str) -> None:
        with self.log_path.open("a") as f:
            f.write(line + "\n")


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)
