"""Training callbacks of the monitor, registered in :data:`cnnlab.train.callbacks.CALLBACKS`:

- ``sanity``: before the first epoch, the probe checks of :mod:`cnnlab.monitor.sanity` on a copy
  of the untrained network (one forward/backward/step); problems are printed and logged as
  warnings, and every finding goes to ``RUN_DIR/sanity.json``. Training goes on regardless.
- ``monitor``: per-layer statistics into ``RUN_DIR/layers.csv`` every epoch (and TensorBoard
  when ``monitor.tensorboard``). Off the hot path: gradient norms are summed on the device at
  each ``log_every`` interval, the update ratio is measured on the step right after it, and the
  activation statistics come from one probe batch at epoch end; one host sync per epoch.
"""

from __future__ import annotations

import json
import math

import torch

from cnnlab.monitor.layerlog import FILENAME, read_layers, write_layers
from cnnlab.monitor.layers import parametric_layers
from cnnlab.monitor.stats import ActivationRecorder, grad_norms, snapshot, update_ratios, weight_norms
from cnnlab.train.callbacks import CALLBACKS, Callback


def _probe_batch(trainer, n: int):
    data = trainer.train_data
    return trainer.preprocess(data.images[:n]), data.labels[:n]


class SanityAtStart(Callback):
    """Cheap sanity checks when a run starts (not on resume)."""

    def __init__(self, examples: int):
        self.examples = examples

    def on_train_start(self, trainer) -> None:
        from cnnlab.monitor.sanity import SanityReport, check_probe, probe_network

        if trainer.epoch > 0:
            return
        x, y = _probe_batch(trainer, self.examples)
        probe = probe_network(trainer.cfg, trainer.model, x, y, trainer.loss)
        report = SanityReport(check_probe(probe), probe)
        (trainer.run.path / "sanity.json").write_text(json.dumps(report.to_dict(), indent=1, default=str))
        for finding in report.findings:
            if not finding.ok:
                trainer.say(f"sanity {finding.level}: {finding.message}")
        problems = sum(not f.ok for f in report.findings)
        summary = (f"sanity: initial loss {probe.loss:.3f} (ln {probe.num_classes} = {probe.expected_loss:.3f}), "
                   f"max update/weight ratio {max(probe.update_ratios, default=float('nan')):.1e}; ")
        trainer.say(summary + (f"{problems} problem(s) above; `cnnlab sanity` explains more" if problems
                               else f"{len(report.findings)} checks ok"))


class LayerMonitor(Callback):
    """Per-layer gradient norms, update ratios, dead/saturated fractions -> layers.csv."""

    def __init__(self, probe_examples: int, write_csv: bool = True, tensorboard: bool = False):
        self.probe_examples = probe_examples
        self.write_csv = write_csv
        self.tensorboard = tensorboard
        self.rows: list[dict] = []
        self.tb = None
        self._before = None

    def on_train_start(self, trainer) -> None:
        self.layers = parametric_layers(trainer.model)
        self.path = trainer.run.path / FILENAME
        # After a resume, rows of epochs past the checkpoint are dropped (as metrics.csv's).
        self.rows = [r for r in read_layers(self.path) if r["epoch"] <= trainer.epoch]
        self._reset(trainer.device)
        trainer.optimizer.register_step_post_hook(self._after_step)
        if self.tensorboard:
            from cnnlab.monitor.tensorboard import TensorBoardWriter

            self.tb = TensorBoardWriter(trainer.run.path / "tensorboard", purge_step=trainer.step)

    def _reset(self, device) -> None:
        n = len(self.layers)
        self.grad_sum = torch.zeros(n, device=device)
        self.ratio_sum = torch.zeros(n, device=device)
        self.intervals = 0
        self.ratio_steps = 0

    def on_interval(self, trainer) -> None:
        self.grad_sum += grad_norms(self.layers)
        self.intervals += 1
        self._before = snapshot(self.layers)  # the next step's update is measured against this

    def _after_step(self, optimizer, args, kwargs) -> None:
        if self._before is not None:
            self.ratio_sum += update_ratios(self.layers, self._before)
            self.ratio_steps += 1
            self._before = None

    def on_epoch_end(self, trainer, row: dict) -> bool:
        model = trainer.model
        was_training = model.training
        model.eval()
        with torch.no_grad(), ActivationRecorder(model) as recorder:
            model(_probe_batch(trainer, self.probe_examples)[0])
        model.train(was_training)
        activations = recorder.stats()
        grads = (self.grad_sum / max(self.intervals, 1)).tolist()
        ratios = (self.ratio_sum / self.ratio_steps).tolist() if self.ratio_steps else [None] * len(self.layers)
        weights = weight_norms(self.layers).tolist()
        base = {"epoch": row["epoch"], "step": row["step"]}
        new = [{**base, "layer": l.name, "kind": l.kind, "grad_norm": g, "weight_norm": w,
                "update_ratio": r if r is None or math.isfinite(r) else None}
               for l, g, w, r in zip(self.layers, grads, weights, ratios)]
        new += [{**base, "layer": a.name, "kind": a.kind, "dead_fraction": a.dead_fraction,
                 "saturated_fraction": a.saturated_fraction, "act_mean": a.mean, "act_std": a.std}
                for a in activations]
        self.rows += new
        if self.write_csv:
            write_layers(self.path, self.rows)
        if self.tb is not None:
            self.tb.log_epoch(model, trainer.preprocess.output_shape(tuple(trainer.splits.input_shape)), row, new)
        self._reset(trainer.device)
        return False

    def on_train_end(self, trainer, result) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None


@CALLBACKS.register("sanity")
def _sanity(cfg):
    return SanityAtStart(cfg.monitor.sanity_examples) if cfg.monitor.sanity_at_start else None


@CALLBACKS.register("monitor")
def _monitor(cfg):
    mc = cfg.monitor
    if mc.tensorboard:
        from cnnlab.monitor.tensorboard import require_tensorboard

        require_tensorboard()  # fail before any training, not after the first epoch
    if not (mc.layer_stats or mc.tensorboard):
        return None
    return LayerMonitor(mc.probe_examples, write_csv=mc.layer_stats, tensorboard=mc.tensorboard)
