"""Console output: a live progress bar per epoch and one summary line per epoch."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


class Progress:
    """A tqdm bar over an epoch's steps, showing loss, accuracy and images/s."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar = None

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        if self.enabled:
            self.bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", unit="step",
                            leave=False, file=sys.stderr, dynamic_ncols=True)

    def update(self, steps: int, loss: float, acc: float, images_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(steps)
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{100 * acc:.2f}%",
                                 img_s=f"{images_per_s:,.0f}", refresh=False)

    def end_epoch(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
