"""Reading a finished stage: which best values sit on the border of their range, and the
narrower ranges of the next stage (seeds/002: "careful with best values on border";
"coarse-to-fine: cross validation in stages").

Both work in *units* of the range: ``u = (x - lo) / (hi - lo)``, in log units for log ranges
(``u = (ln x - ln lo) / (ln hi - ln lo)``), so "the outer 10%" means the same thing for a
learning rate searched over three decades as for a keep probability in [0.5, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnnlab.search.spec import Param

#: a best value within this fraction of either end of its range is "on the border"
BORDER = 0.10
#: narrowing widens the top K's span by this factor (in log units for log ranges)
WIDEN = 2.0


@dataclass(frozen=True)
class BorderWarning:
    key: str
    side: str  # "low" or "high"
    best: float
    low: float
    high: float
    log: bool
    share: float  # fraction of the top trials on that side

    def message(self) -> str:
        scale = "log scale" if self.log else "linear scale"
        bound = self.low if self.side == "low" else self.high
        suggestion = (bound / 10 if self.side == "low" else bound * 10) if self.log else \
            (bound - (self.high - self.low) / 2 if self.side == "low" else bound + (self.high - self.low) / 2)
        return (f"border: {self.key} best {self.best:.6g} lies in the {'lowest' if self.side == 'low' else 'highest'} "
                f"{BORDER:.0%} of its range [{self.low:g}, {self.high:g}] ({scale}; {self.share:.0%} of the top "
                f"trials there): the optimum may lie beyond it; widen the {'lower' if self.side == 'low' else 'upper'} "
                f"bound (e.g. to {suggestion:.3g})")


def _side(p: Param, value: float) -> str | None:
    u = p.to_unit(value)
    return "low" if u < BORDER else "high" if u > 1 - BORDER else None


def border_warnings(params: list[Param], ranked: list[dict]) -> list[BorderWarning]:
    """``ranked``: the stage's finished trials' params, best first. A numeric parameter warns
    when its best value lies in the outer 10% of its range, or when most (> half) of the top
    10% of trials do."""
    if not ranked:
        return []
    top = ranked[:max(1, math.ceil(len(ranked) / 10))]
    out = []
    for p in params:
        if not p.numeric or p.key not in ranked[0]:
            continue
        sides = [_side(p, t[p.key]) for t in top if p.key in t]
        best_side = _side(p, ranked[0][p.key])
        for side in ("low", "high"):
            share = sides.count(side) / len(sides)
            if best_side == side or share > 0.5:
                out.append(BorderWarning(p.key, side, ranked[0][p.key], p.low, p.high, p.log, share))
    return out


@dataclass(frozen=True)
class Narrowed:
    param: Param
    note: str  # one line saying what was done


def narrow(params: list[Param], ranked: list[dict], k: int, warnings: list[BorderWarning]) -> list[Narrowed]:
    """The next stage's space: each numeric range becomes the span of the top ``k`` trials'
    values, widened x2 about its centre (in log units for log ranges), kept inside the original
    range, except on a side where the border warning fired: there the range may grow past the
    old bound (the widened span), and the note says so. Choices stay as they are."""
    top = ranked[:k]
    out = []
    for p in params:
        values = [t[p.key] for t in top if p.key in t]
        if not p.numeric or not values:
            out.append(Narrowed(p, f"{p.key}: {p.describe()} (kept)"))
            continue
        to, back = (math.log, math.exp) if p.log else (float, float)
        lo, hi = to(min(values)), to(max(values))
        centre, half = (lo + hi) / 2, (hi - lo) / 2 * WIDEN
        if half == 0:  # one value, or all equal: a tenth of the old range on each side
            half = (to(p.high) - to(p.low)) / 10
        new_lo, new_hi = back(centre - half), back(centre + half)
        sides = {w.side for w in warnings if w.key == p.key}
        notes = []
        if new_lo < p.low:
            if "low" in sides:
                notes.append(f"extended below the old bound {p.low:g} (best values were on that border)")
            else:
                new_lo = p.low
        if new_hi > p.high:
            if "high" in sides:
                notes.append(f"extended above the old bound {p.high:g} (best values were on that border)")
            else:
                new_hi = p.high
        if p.kind == "int":
            new_lo, new_hi = math.floor(new_lo), math.ceil(new_hi)
        elif p.kind == "int_log2":
            new_lo, new_hi = 2 ** math.floor(math.log2(new_lo)), 2 ** math.ceil(math.log2(new_hi))
        if new_lo <= 0 and p.kind == "int_log2":
            new_lo = 1
        if not new_lo < new_hi:  # an integer range that collapsed: keep one step
            new_hi = new_lo + 1 if p.kind == "int" else new_lo * 2
        narrowed = p.model_copy(update={"low": float(new_lo), "high": float(new_hi)})
        text = f"{p.key}: [{p.low:g}, {p.high:g}] -> [{new_lo:.4g}, {new_hi:.4g}] (top {len(values)}, widened x{WIDEN:g})"
        out.append(Narrowed(narrowed, text + ("; " + "; ".join(notes) if notes else "")))
    return out
